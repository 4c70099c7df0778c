"""The custom training step: one compiled graph that updates D, then G, and returns the losses.

Per step, as the PyTorch pix2pix does it:
  1. fake = G(x) is computed once, keeping G's vector-Jacobian product for later;
  2. D is updated on (x, y) as real and (x, stop_gradient(fake)) as fake;
  3. G's objective is evaluated on the same fake through the updated D; its gradient with
     respect to `fake` is pulled back through G's saved VJP into G's parameter gradients.
G's forward therefore runs once, and batch-norm running statistics are updated once per step.
Under data parallel, each optimiser's gradients are averaged across ranks by a
DistributedGradReducer. Dynamic loss scaling (for float16 on Ascend/GPU) skips the update of a
network whose gradients overflow; the one scale both networks share is adjusted once per step,
after both: halved when either overflowed, doubled after `scale_window` clean steps.
"""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore import Parameter, ParameterTuple, Tensor
from mindspore.common import dtype as mstype
from mindspore.communication import get_group_size
from mindspore.context import ParallelMode
from mindspore.nn.wrap.grad_reducer import DistributedGradReducer


class DynamicLossScale(nn.Cell):
    """Loss scale kept in Parameters, so it is checkpointed and restored on resume."""

    def __init__(self, init_scale, scale_factor=2.0, scale_window=1000):
        super().__init__()
        self.scale = Parameter(Tensor(init_scale, mstype.float32), name="loss_scale", requires_grad=False)
        self.clean_steps = Parameter(Tensor(0, mstype.int32), name="loss_scale_clean_steps",
                                     requires_grad=False)
        self.factor = scale_factor
        self.window = scale_window

    def construct(self, finite):
        """Adjust the scale after a step whose gradients were `finite` (a bool tensor)."""
        grown = self.clean_steps + 1 >= self.window
        new_scale = ops.select(finite, ops.select(grown, self.scale * self.factor, self.scale),
                               ops.maximum(self.scale / self.factor, 1.0))
        new_clean = ops.select(finite, ops.select(grown, 0, self.clean_steps + 1), 0)
        ops.assign(self.clean_steps, ops.cast(new_clean, mstype.int32))
        ops.assign(self.scale, new_scale)
        return finite


class WeightAverage(nn.Cell):
    """Exponential moving average of a network's parameters (batch-norm statistics included),
    kept in Parameters named "ema." + the parameter's name so that the resume state holds it.

    An update covering k steps decays the average by keep ** k, where keep warms up as
    min(decay, (1 + n) / (10 + n)) after n steps (as TensorFlow's ExponentialMovingAverage with
    num_updates), so the average does not carry the random initial weights for the first
    thousands of steps. With k = 1 at every step this is the plain per-step average; the training
    step updates it every `every` steps (GANTrainOneStep.average_weights). "ema.updates" counts the
    steps averaged."""

    def __init__(self, network, decay, every=1):
        super().__init__(auto_prefix=False)
        self.decay = decay
        self.every = every
        params = network.get_parameters()
        self.source = ParameterTuple(params)
        self.average = ParameterTuple([Parameter(Tensor(p.asnumpy()), name="ema." + p.name, requires_grad=False)
                                       for p in self.source])
        self.updates = Parameter(Tensor(0, mstype.float32), name="ema.updates", requires_grad=False)

    def construct(self, steps):
        n = self.updates + steps
        keep = ops.pow(ops.minimum(ops.cast(self.decay, mstype.float32), (1.0 + n) / (10.0 + n)), steps)
        for average, weight in zip(self.average, self.source):
            ops.assign_sub(average, (average - weight) * (1.0 - ops.cast(keep, average.dtype)))
        ops.assign(self.updates, n)
        return n

    def averaged(self):
        """[{"name": network parameter name, "data": its average}]: a checkpoint of the network
        with the averaged weights."""
        return [{"name": weight.name, "data": average} for weight, average in zip(self.source, self.average)]


def _grad_reducer(params):
    """Averages gradients across ranks under data parallel; None on a single device."""
    if ms.get_auto_parallel_context("parallel_mode") not in (ParallelMode.DATA_PARALLEL,
                                                               ParallelMode.HYBRID_PARALLEL):
        return None
    return DistributedGradReducer(params, ms.get_auto_parallel_context("gradients_mean"),
                                  get_group_size())


class GANTrainOneStep(nn.Cell):
    """Updates D then G in one graph. Returns (loss_D, loss_G, *aux_D, *aux_G).

    `loss_D` and `loss_G` are cells with construct(x, y, fake) and construct(x, y, fake, valid)
    -> (loss, aux tuple); the model (pix2pix, pix2pixcc) decides what they compute.
    `netG(x, noise)` makes the fake. Missing target pixels arrive as NaN (the training pipeline
    marks them): they become `target_fill` (the target's fill value on the network's scale, what
    they were before) and `valid` is 0 there, so that loss_G can leave them out.
    """

    def __init__(self, netG, netD, loss_D, loss_G, opt_G, opt_D, loss_scale=0.0, target_fill=0.0,
                 ema_decay=0.0, ema_every=1):
        super().__init__(auto_prefix=False)
        # G's weight average (WeightAverage) when ema_decay > 0, updated by `average_weights`.
        self.ema = WeightAverage(netG, ema_decay, ema_every) if ema_decay > 0 else None
        self.target_fill = target_fill
        self.netG = netG
        self.loss_D = loss_D
        self.loss_G = loss_G
        self.opt_G = opt_G
        self.opt_D = opt_D
        self.weights_G = ParameterTuple(netG.trainable_params())
        self.weights_D = ParameterTuple(netD.trainable_params())
        # D is shared by both loss cells; holding all its parameters here keeps their names
        # (compilation would otherwise rename its batch-norm statistics after a cell path).
        self.params_D = ParameterTuple(netD.get_parameters())
        self.reducer_G = _grad_reducer(self.weights_G)
        self.reducer_D = _grad_reducer(self.weights_D)
        self.use_loss_scale = loss_scale > 0
        if self.use_loss_scale:
            self.loss_scale = DynamicLossScale(loss_scale)

    def construct(self, x, y, noise):
        has_data = ops.isfinite(y)
        y, valid = ops.select(has_data, y, self.target_fill), ops.cast(has_data, mstype.float32)
        fake, pullback_G = ms.vjp(self.netG, x, noise, weights=self.weights_G)

        # vjp without has_aux: with it, MindSpore differentiates a wrapper of the loss cell and
        # cannot merge that forward with the loss's own, so D would run twice per call (and
        # update its batch-norm statistics twice). The aux terms get a zero seed instead.
        (loss_D, aux_D), pullback_D = ms.vjp(self.loss_D, x, y, ops.stop_gradient(fake),
                                             weights=self.weights_D)
        grads_D = pullback_D(self._seed(loss_D, aux_D))[1]
        loss_D, finite_D = self._apply(self.opt_D, self._finish(grads_D, self.reducer_D), loss_D)

        # G's objective sees D after its update, as in the sequential PyTorch step.
        (loss_G, aux_G), pullback_loss_G = ms.vjp(self.loss_G, x, y, ops.depend(fake, loss_D), valid)
        d_fake = pullback_loss_G(self._seed(loss_G, aux_G))[2]
        grads_G = pullback_G(ops.cast(d_fake, fake.dtype))[1]
        loss_G, finite_G = self._apply(self.opt_G, self._finish(grads_G, self.reducer_G), loss_G)
        if self.use_loss_scale:
            loss_G = ops.depend(loss_G, self.loss_scale(ops.logical_and(finite_D, finite_G)))
        return (loss_D, loss_G) + aux_D + aux_G

    def average_weights(self, steps_done, catch_up=False):
        """Brings G's weight average up to `steps_done` steps when an update is due: every
        ema_every steps, and with `catch_up` (before a checkpoint or a validation, so that they
        hold the average of every step done). It runs as a graph of its own: memory-bound over
        all of G's weights, it cost more inside the step's graph than alone, and alone it can
        skip steps."""
        if self.ema is None or not (catch_up or steps_done % self.ema.every == 0):
            return
        pending = steps_done - int(self.ema.updates.asnumpy())
        if pending > 0:
            self.ema(Tensor(pending, mstype.float32))

    def _seed(self, loss, aux):
        """The backward pass's seed for (loss, aux): 1 (or the loss scale when scaling is on)
        for the loss, 0 for the auxiliary terms it only reports."""
        scale = ops.cast(self.loss_scale.scale, loss.dtype) if self.use_loss_scale else ops.ones_like(loss)
        return scale, tuple(ops.zeros_like(term) for term in aux)

    def _finish(self, grads, reducer):
        if reducer is not None:
            grads = reducer(grads)
        if self.use_loss_scale:
            grads = tuple(g / ops.cast(self.loss_scale.scale, g.dtype) for g in grads)
        return grads

    def _apply(self, optimizer, grads, loss):
        """Update with `grads` (skipped when loss scaling finds an overflow); returns `loss`
        made to depend on the update, which orders it in the graph, and whether the gradients
        were finite (always True without loss scaling)."""
        if not self.use_loss_scale:
            return ops.depend(loss, optimizer(grads)), True
        finite = ms.amp.all_finite(grads)
        if finite:
            loss = ops.depend(loss, optimizer(grads))
        return loss, finite


def running_statistics(*cells):
    """The batch-norm running statistics held by `cells` (networks, a WeightAverage's averages),
    each once; empty under instance norm."""
    found = {}
    for cell in cells:
        for param in cell.get_parameters():
            if param.name.endswith(("moving_mean", "moving_variance")):
                found.setdefault(id(param), param)
    return list(found.values())


class AverageAcrossRanks(nn.Cell):
    """Replaces each parameter by its mean over all ranks (one AllReduce each).

    Under data parallel each rank's batch norm updates its running statistics from its own
    share of the batch (MindSpore's SyncBatchNorm is Ascend-only); averaging them before a
    checkpoint, a validation or the fingerprint makes every rank hold, and save, the
    statistics of the whole data. The running mean and variance are exponential averages,
    linear in the batches, so averaging them at any step gives the same values as averaging
    every batch's. Every rank must run it at the same point: it is a collective."""

    def __init__(self, params):
        super().__init__()
        self.params = ParameterTuple(params)
        self.all_reduce = ops.AllReduce()
        self.group_size = get_group_size()

    def construct(self):
        done = True
        for param in self.params:
            done = ops.depend(done, ops.assign(param, self.all_reduce(param) / self.group_size))
        return done
