"""Objectives of Pix2Pix: the adversarial loss on PatchGAN logits and the L1 reconstruction loss."""
import mindspore.nn as nn
import mindspore.ops as ops


class GANLoss(nn.Cell):
    """Mean over all patches of the loss of `logits` against an all-real or all-fake target.

    vanilla: sigmoid cross-entropy on logits (the paper's log D); lsgan: least squares.
    """

    def __init__(self, gan_mode="vanilla"):
        super().__init__()
        if gan_mode not in ("vanilla", "lsgan"):
            raise ValueError(f"unknown gan_mode {gan_mode!r}")
        self.vanilla = gan_mode == "vanilla"

    def construct(self, logits, target_is_real):
        target = ops.ones_like(logits) if target_is_real else ops.zeros_like(logits)
        if self.vanilla:
            return ops.binary_cross_entropy_with_logits(logits, target, ops.ones_like(logits),
                                                        ops.ones_like(logits))
        error = logits - target  # a product: ops.square compiles to PowTensorScalar, declared for Ascend only
        return ops.mean(error * error)


def l1_loss(prediction, target):
    return ops.mean(ops.abs(prediction - target))


def correlation_coefficient(target, prediction, eps=1e-8, concordance=True, weight=None):
    """pix2pixCC's Inspector (Jeong et al. 2022, pix2pixCC_Networks.Loss.__Inspector): the Pearson
    correlation of all values of the two tensors (over the whole batch), r = sum(dt*dp) /
    (sqrt(sum dt^2) sqrt(sum dp^2) + eps); with `concordance`, Lin's concordance
    2 r s_t s_p / (s_t^2 + s_p^2 + (m_t - m_p)^2 + eps) with unbiased s.

    `weight` (broadcastable to the tensors, in [0, 1]) counts each value that much in every
    mean and sum: 0 leaves a missing pixel out; None (all 1) is pix2pixCC's formula exactly.

    eps = 1e-8 (pix2pixCC's float32 value) keeps a constant image's CC at 0 instead of NaN; the
    square roots take x + eps^2 so that their gradient is finite there too (the reference's
    sqrt(0) has an infinite derivative, which makes the gradient NaN for a constant image).
    """
    weight = ops.ones_like(target) if weight is None else weight * ops.ones_like(target)  # broadcast
    count = ops.sum(weight)
    mean_t, mean_p = ops.sum(weight * target) / count, ops.sum(weight * prediction) / count
    dt, dp = target - mean_t, prediction - mean_p
    sum_tt, sum_pp = ops.sum(weight * dt * dt), ops.sum(weight * dp * dp)
    tiny = eps * eps
    r = ops.sum(weight * dt * dp) / (ops.sqrt(sum_tt + tiny) * ops.sqrt(sum_pp + tiny) + eps)
    if not concordance:
        return r
    var_t, var_p = sum_tt / (count - 1), sum_pp / (count - 1)
    mean_gap = mean_t - mean_p
    return (2 * r * ops.sqrt(var_t + tiny) * ops.sqrt(var_p + tiny)
            / (var_t + var_p + mean_gap * mean_gap + eps))


class MultiScaleCC(nn.Cell):
    """Correlation coefficients at `n_CC` scales: full size, then repeatedly average-pooled
    (3x3, stride 2, padding 1, padding not counted), as pix2pixCC computes its CC loss.

    With `valid` (1 where the target has data, 0 where it is missing; N1HW or NCHW), each scale
    averages valid pixels only and weighs a pooled pixel by its share of valid ones."""

    def __init__(self, n_CC=4, eps=1e-8, concordance=True):
        super().__init__()
        self.n_CC = n_CC
        self.eps = eps
        self.concordance = concordance
        self.pool = nn.AvgPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1, count_include_pad=False)

    def construct(self, target, prediction, valid=None):
        values = ()
        weight = ops.ones_like(target) if valid is None else valid * ops.ones_like(target)  # N1HW -> NCHW
        for scale in range(self.n_CC):
            if scale > 0:
                pooled = self.pool(weight)
                share = ops.maximum(pooled, self.eps)
                target, prediction = self.pool(target * weight) / share, self.pool(prediction * weight) / share
                weight = pooled
            values += (correlation_coefficient(target, prediction, self.eps, self.concordance, weight),)
        return values


def feature_matching_loss(fake_features, real_features):
    """L1 between D's features of the fake and the (fixed) real pair, summed over layers and
    averaged over scales (pix2pixHD). pix2pixCC's code adds a running sum per scale, which
    equals this for its default single scale and counts early scales again for n_D > 1."""
    total = 0.0
    for fake_scale, real_scale in zip(fake_features, real_features):
        for fake, real in zip(fake_scale, real_scale):
            total = total + ops.mean(ops.abs(fake - ops.stop_gradient(real)))
    return total / len(fake_features)
