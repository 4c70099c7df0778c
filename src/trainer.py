"""The training loop: data, networks and the compiled step, with checkpoints, samples and logs."""
import hashlib
import math
import os
import time

import mindspore as ms
import numpy as np
from mindspore import Tensor

from src import checkpoint
from src.config import CONFIG_FILE, migrate, resolved_flags, save_resolved_config, validate
from src.dataset.collages import save_sample_grid
from src.dataset.palette import read_legend, training_palette
from src.dataset.pairs import find_pairs, load_pair
from src.dataset.pipeline import resize_chw, steps_per_epoch, train_dataset
from src.models import registry
from src.models.train_step import AverageAcrossRanks, running_statistics
from src.trained_generator import save_generator
from src.utils.device import set_context
from src.utils.errors import NoSpace, UserError
from src.utils.files import clear_stale_temporaries
from src.utils.lr import learning_rates
from src.utils.report import LossLog
from src.utils.tensorboard_log import TrainingBoard
from src.validation import Validator


def check_pairs(pairs, cfg):
    """Read every pair once before training, so a bad file stops the run before any output."""
    for number, pair in enumerate(pairs, 1):
        source, target = load_pair(pair, cfg)
        if source.shape[1:] != target.shape[1:]:
            raise UserError(f"{pair.name}: input is {source.shape[2]}x{source.shape[1]}, target "
                            f"{target.shape[2]}x{target.shape[1]}; a pair must be the same size")
        if min(source.shape[1:]) < 2:
            raise UserError(f"{pair.input_path}: image of {source.shape[2]}x{source.shape[1]} is too small")
        if number % 200 == 0:
            print(f"checked {number}/{len(pairs)} training pairs", flush=True)


def sample_batch(pairs, cfg):
    """The fixed pair drawn in every epoch's sample grid, resized to the training size."""
    source, target = load_pair(pairs[0], cfg)
    return (resize_chw(source, cfg.crop_size)[None], resize_chw(target, cfg.crop_size)[None])


class DiscriminatorWatch:
    """Warns once when D tells real from fake with confidence (each term below the loss of
    a 0.9 probability on the right side) for `patience` steps in a row: G's GAN loss then
    only rises, and G learns from the L1/CC term alone (docs/training.md, "Reading the curves")."""

    # The per-term D loss of a prediction 0.9 on the right side: -ln 0.9, or (1 - 0.9)^2.
    THRESHOLDS = {"vanilla": 0.105, "lsgan": 0.01}

    def __init__(self, gan_mode, patience=200):
        self.threshold = self.THRESHOLDS[gan_mode]
        self.patience = patience
        self.run_length = 0
        self.warned = False

    def update(self, step, loss_real, loss_fake):
        """Count a step's D terms; returns the warning the first time the run is long enough."""
        self.run_length = self.run_length + 1 if max(loss_real, loss_fake) < self.threshold else 0
        if self.warned or self.run_length < self.patience:
            return None
        self.warned = True
        return (f"warning: step {step}: the discriminator has won for {self.run_length} steps in a row "
                f"(loss_D_real and loss_D_fake below {self.threshold}); G's adversarial loss will keep "
                "rising. See 'Reading the curves' in docs/training.md (e.g. lower --lambda_D, raise "
                "--lambda_GAN or try --gan_mode lsgan)")


def _format_duration(seconds):
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class Trainer:
    def __init__(self, cfg):
        if cfg.pretrained_G or cfg.pretrained_D:
            take_pretrained_flags(cfg)
        registry.check_model_config(cfg)
        self.cfg = cfg
        self.ranks = set_context(cfg)
        ms.set_seed(cfg.seed)
        self.pairs = find_pairs(cfg.train_data_dir, "--train_data_dir", cfg)
        check_pairs(self.pairs, cfg)
        # The label colours generator checkpoints record (only the main rank writes them).
        self.input_palette = (training_palette(self.pairs, cfg, read_legend(cfg.palette) if cfg.palette else None)
                              if self.ranks.is_main else None)
        self.val_pairs = find_pairs(cfg.val_data_dir, "--val_data_dir", cfg) if cfg.val_data_dir else self.pairs
        self.steps_per_epoch = steps_per_epoch(len(self.pairs), cfg.batch_size, self.ranks.size)
        self.total_steps = self.steps_per_epoch * cfg.epoch_num
        self.netG = registry.build_generator(cfg)
        self.netD = registry.build_discriminator(cfg)
        self._load_pretrained()
        self.rates = learning_rates(cfg.lr_policy, cfg.lr, self.steps_per_epoch, cfg.n_epochs,
                                    cfg.n_epochs_decay, cfg.epoch_num)
        self.step_cell = registry.build_train_step(cfg, self.netG, self.netD, self.rates)
        self.step_cell.set_train(True)
        self.arch = {"model": cfg.model, **registry.arch(cfg, "generator"),
                     **{f"D_{k}": v for k, v in registry.arch(cfg, "discriminator").items()}}
        if self.step_cell.ema is not None:  # the resume state then holds the average too
            self.arch["ema"] = True
        self._compile()
        self.start_step = (checkpoint.load_resume_state(cfg.ckpt_dir, self.step_cell, self.arch)
                           if cfg.resume else 0)
        if self.start_step > self.total_steps:
            raise UserError(f"the resume state in {cfg.ckpt_dir} is at step {self.start_step}, past "
                            f"the {self.total_steps} steps of this run; raise --epoch_num")
        self.loss_log = LossLog(cfg.loss_show_dir, registry.loss_names(cfg))
        self.board = None
        self.interval_seconds, self.interval_steps = 0.0, 0  # the steps since the last TensorBoard point
        self.averaged_G = None
        self.validator = (Validator(cfg, self._generator_weights, self.val_pairs, self.input_palette)
                          if cfg.val_data_dir and cfg.val_interval and self.ranks.is_main else None)
        # With --ema_decay the averaged statistics are what checkpoints hold: averaged across ranks too.
        averages = [] if self.step_cell.ema is None else [self.step_cell.ema]
        statistics = running_statistics(self.netG, self.netD, *averages)
        self.average_statistics = AverageAcrossRanks(statistics) if self.ranks.size > 1 and statistics else None
        self.d_watch = DiscriminatorWatch(registry.model_of(cfg).gan_mode(cfg))

    def _load_pretrained(self):
        """--pretrained_G/--pretrained_D: their weights replace the initialisation (before the step
        and its weight average are built from them); an architecture that differs is a UserError
        naming the flags."""
        cfg = self.cfg
        for path, network, which, flag in ((cfg.pretrained_G, self.netG, "generator", "--pretrained_G"),
                                           (cfg.pretrained_D, self.netD, "discriminator", "--pretrained_D")):
            if path:
                checkpoint.load_network(network, path, {"model": cfg.model, **registry.arch(cfg, which)}, what=flag)
                print(f"{which}: starting from {path}", flush=True)

    def _compile(self):
        """Compile the step before any state is loaded: compilation settles parameter names
        (the two optimisers' counters become opt_G.* and opt_D.*) that checkpoints use."""
        cfg = self.cfg
        print("compiling the training graph...", flush=True)
        started = time.time()
        shape = (cfg.batch_size, 0, cfg.crop_size, cfg.crop_size)
        self.step_cell.compile(Tensor(np.zeros(shape[:1] + (cfg.input_nc,) + shape[2:], np.float32)),
                               Tensor(np.zeros(shape[:1] + (cfg.output_nc,) + shape[2:], np.float32)),
                               Tensor(np.zeros((cfg.batch_size, max(1, self.netG.dropout_noise_size)),
                                               np.float32)))
        print(f"compiled in {time.time() - started:.1f} s", flush=True)

    def train(self):
        try:
            return self._start_and_train()
        except NoSpace as err:
            state = checkpoint.resume_state_path(self.cfg.ckpt_dir)
            since = f"from {os.path.basename(state)}" if state and os.path.exists(state) else "from the start"
            raise NoSpace(f"{err}; training stopped: make room, then rerun with --resume True (it continues "
                          f"{since})") from None

    def _start_and_train(self):
        cfg, main = self.cfg, self.ranks.is_main
        if main:
            self.loss_log.start(self.start_step)
            clear_stale_temporaries((cfg.ckpt_dir, cfg.loss_show_dir, cfg.train_fakeimg_dir),
                                    lambda line: print(line, flush=True))
            save_resolved_config(cfg, os.path.join(cfg.ckpt_dir, CONFIG_FILE))
            if self.input_palette:
                print(f"input palette: {len(self.input_palette)} label colours "
                      f"({'from ' + cfg.palette if cfg.palette else 'found in the training inputs'}), "
                      "recorded for the served page's drawing canvas", flush=True)
            if self.validator:
                self.validator.start(self.start_step // self.steps_per_epoch)
            if cfg.tensorboard_dir:
                self.board = TrainingBoard(cfg.tensorboard_dir, self.start_step)
                self.board.start(self.start_step, resolved_flags(cfg))
        try:
            return self._train()
        finally:
            if self.board:
                self.board.close()

    def _train(self):
        cfg, main = self.cfg, self.ranks.is_main
        print(f"rank {self.ranks.rank}/{self.ranks.size}: {len(self.pairs)} pairs, "
              f"{self.steps_per_epoch} steps per epoch, {cfg.epoch_num} epochs, "
              f"starting at step {self.start_step}", flush=True)
        if self.start_step == self.total_steps:
            return self._finished_already()
        dataset = train_dataset(self.pairs, cfg, self.netG.dropout_noise_size, self.ranks.size,
                                self.ranks.rank, self.start_step)
        step, timed_from = self.start_step, None
        ready = time.perf_counter()
        for source, target, noise in dataset.create_tuple_iterator(num_epochs=1):
            values = [float(v.asnumpy()) for v in self.step_cell(source, target, noise)]
            step += 1
            self.step_cell.average_weights(step)
            self.interval_seconds += time.perf_counter() - ready  # the batch's loading included
            self.interval_steps += 1
            if timed_from is None:  # time from the second step: the first one warms up
                timed_from = (time.time(), step)
            self._check_finite(values, step)
            epoch = (step - 1) // self.steps_per_epoch + 1
            if main:
                self.loss_log.append(step, epoch, values)
                warning = self.d_watch.update(step, values[2], values[3])
                if warning:
                    print(warning, flush=True)
            if step % cfg.print_interval == 0 or step == self.total_steps:
                self._print_progress(step, epoch, values, timed_from)
                if self.board:
                    self._log_progress(step, values)
            if step % self.steps_per_epoch == 0:
                self._end_epoch(step, epoch)
            elif cfg.save_checkpoint_steps and step % cfg.save_checkpoint_steps == 0:
                self.step_cell.average_weights(step, catch_up=True)
                self._average_statistics()
                if main:
                    self._save_resume_state(step)
            ready = time.perf_counter()
        self._average_statistics()
        if self.board and step > self.start_step:
            self.board.finish(step)
        print(f"rank {self.ranks.rank}: parameter fingerprint {self._fingerprint()}", flush=True)
        if main:
            print(f"done: checkpoints in {os.path.abspath(cfg.ckpt_dir)}, samples in "
                  f"{os.path.abspath(cfg.train_fakeimg_dir)}, losses in "
                  f"{os.path.abspath(cfg.loss_show_dir)}", flush=True)
        return 0

    def _finished_already(self):
        """A resume of a run that had reached its last step: nothing to train (an empty pass of the
        data pipeline would be wasted at best), but the final checkpoints are made sure of."""
        cfg = self.cfg
        if self.ranks.is_main:
            epoch = cfg.epoch_num
            missing = [name for name in (f"Generator_{epoch}.ckpt", f"Discriminator_{epoch}.ckpt")
                       if not os.path.exists(os.path.join(cfg.ckpt_dir, name))]
            if missing:
                self._save_networks(epoch)
            print(f"nothing to train: the resume state in {cfg.ckpt_dir} is at the last step "
                  f"({self.total_steps}); " + (f"rewrote {', '.join(missing)}" if missing else
                                               "its checkpoints are in place") +
                  "; raise --epoch_num to train on", flush=True)
        print(f"rank {self.ranks.rank}: parameter fingerprint {self._fingerprint()}", flush=True)
        return 0

    def _average_statistics(self):
        """Under data parallel, every rank takes the ranks' mean batch-norm running statistics
        (a collective: all ranks call it at the same steps)."""
        if self.average_statistics is not None:
            self.average_statistics()

    def _fingerprint(self):
        """SHA-256 of every weight, batch-norm running statistic (averaged across ranks) and
        optimiser state: equal on all ranks of a healthy data-parallel run, which a user can
        check in the per-rank logs."""
        digest = hashlib.sha256()
        for name, param in sorted(self.step_cell.parameters_dict().items()):
            if not name.endswith("learning_rate"):
                digest.update(name.encode())
                digest.update(param.asnumpy().tobytes())
        return digest.hexdigest()[:16]

    def _check_finite(self, values, step):
        if not all(math.isfinite(v) for v in values):
            names = registry.loss_names(self.cfg)
            bad = ", ".join(f"{n}={v}" for n, v in zip(names, values) if not math.isfinite(v))
            raise UserError(f"training diverged at step {step}: {bad}; check the data for NaN/inf "
                            "or lower --lr (the last good checkpoint is kept)")

    def _log_progress(self, step, values):
        """Losses, both networks' learning rate (one schedule) and the mean time of the steps since the
        last point (the step with its data; not the epoch-end work) to TensorBoard."""
        seconds = self.interval_seconds / self.interval_steps
        self.interval_seconds, self.interval_steps = 0.0, 0
        rate = float(self.rates[step - 1])
        self.board.progress(step, dict(zip(registry.loss_names(self.cfg), values)), {"G": rate, "D": rate}, seconds)

    def _save_resume_state(self, step):
        """The resume state, after the TensorBoard events so far are on disk: a run resumed from it
        continues them without a gap."""
        if self.board:
            self.board.flush()
        checkpoint.save_resume_state(self.cfg.ckpt_dir, self.step_cell, step, self.arch)

    def _print_progress(self, step, epoch, values, timed_from):
        names = registry.loss_names(self.cfg)
        since, first = timed_from
        per_step = (time.time() - since) / max(1, step - first)
        eta = per_step * (self.total_steps - step)
        losses = " ".join(f"{n}={v:.4f}" for n, v in zip(names, values))
        print(f"epoch {epoch}/{self.cfg.epoch_num} step {step}/{self.total_steps} {losses} "
              f"| {per_step:.3f} s/step | ETA {_format_duration(eta)}", flush=True)

    def _end_epoch(self, step, epoch):
        """Samples, curves, validation and checkpoints, on rank 0 only: the other ranks go on
        and wait at the next step's gradient all-reduce, for as long as this takes."""
        cfg = self.cfg
        self.step_cell.average_weights(step, catch_up=True)
        self._average_statistics()
        if not self.ranks.is_main:
            return
        grid = self._save_samples(epoch)
        self.loss_log.plot(os.path.join(cfg.loss_show_dir, "loss_curve.png"))
        if self.board:
            self.board.samples(step, grid)
        if self.validator and self.validator.due(epoch):
            means = self.validator.validate(epoch, step)
            if self.board:
                self.board.validation(step, means)
        if epoch % cfg.save_checkpoint_epochs == 0 or epoch == cfg.epoch_num:
            self._save_networks(epoch)
            self._save_resume_state(step)
            print(f"epoch {epoch}: saved Generator_{epoch}.ckpt, Discriminator_{epoch}.ckpt and the "
                  f"resume state in {cfg.ckpt_dir}", flush=True)

    def _save_networks(self, epoch):
        cfg = self.cfg
        save_generator(self._generator_weights(), os.path.join(cfg.ckpt_dir, f"Generator_{epoch}.ckpt"), cfg,
                       self.input_palette)
        checkpoint.save_network(self.netD, os.path.join(cfg.ckpt_dir, f"Discriminator_{epoch}.ckpt"),
                                {"model": cfg.model, **registry.arch(cfg, "discriminator")})

    def _generator_weights(self):
        """What Generator_<epoch>.ckpt and Generator_best.ckpt hold and validation scores: G, or
        with --ema_decay a copy of G loaded with its weight average."""
        if self.step_cell.ema is None:
            return self.netG
        self.averaged_G = registry.generator_copy(
            self.cfg, {item["name"]: item["data"] for item in self.step_cell.ema.averaged()}, self.averaged_G)
        return self.averaged_G

    def _save_samples(self, epoch):
        source, target = sample_batch(self.val_pairs, self.cfg)
        self.netG.set_train(False)
        fake = self.netG(Tensor(source)).asnumpy()
        self.netG.set_train(True)
        return save_sample_grid(os.path.join(self.cfg.train_fakeimg_dir, f"epoch_{epoch:03d}.png"),
                                source, fake, target)


def take_pretrained_flags(cfg):
    """The flags --pretrained_G records (architecture, crop size, direction, data formats,
    dropout) and --pretrained_D's architecture (ndf, n_layers_D), each one not given on the
    command line or in --config_path; a checkpoint's own flags then match (load_network checks)."""
    recorded = {}
    if cfg.pretrained_D:
        arch = checkpoint.read_recorded_arch(cfg.pretrained_D, "--pretrained_D")
        recorded.update({name[len("D_"):] if name.startswith("D_") else name: value for name, value in arch.items()})
    if cfg.pretrained_G:
        recorded.update(migrate(checkpoint.read_recorded_config(cfg.pretrained_G, "--pretrained_G") or {}))
    for name, value in recorded.items():
        if hasattr(cfg, name) and name not in cfg.given_flags:
            setattr(cfg, name, value)
    cfg.given_flags = cfg.given_flags | {"crop_size"}  # now known: validate checks it against --load_size
    validate(cfg)
    return cfg


def train(cfg):
    return Trainer(cfg).train()
