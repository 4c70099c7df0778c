"""pix2pixCC (Jeong et al. 2022): residual generator, multi-scale feature PatchGANs, LSGAN +
feature matching + correlation coefficients. Flag names as in pix2pixCC's own code."""
import mindspore as ms
import mindspore.nn as nn
import mindspore.ops as ops
import numpy as np
from mindspore import Tensor
from mindspore.common import dtype as mstype

from src.models.discriminators import MultiScaleDiscriminator
from src.models.generators import ResidualGenerator
from src.models.losses import MultiScaleCC, feature_matching_loss
from src.models.registry import Model, register_model
from src.utils.errors import UserError
from src.utils.flag_types import non_negative_int, positive_int, str2bool


def multiscale_cc_metrics(n_cc, concordance):
    """pix2pixCC's CC at each of its n_CC scales, by the very cell its loss uses (so the report
    and the objective cannot disagree, missing pixels left out alike): {"CC_scale0": f, ...},
    scale k pooled k times."""
    # Compiled, whatever the caller's mode: MindSpore 2.10's PyNative fails the first Tensor
    # product of a process here (an import of a NumPy-1 extension under NumPy 2).
    cell = ms.jit(MultiScaleCC(n_cc, concordance=concordance).construct)
    cache = {}

    def values(prediction, target, valid):
        key = (id(prediction), id(target), id(valid))
        if key not in cache:
            cache.clear()
            weight = Tensor(np.asarray(valid, np.float32)[None])
            cache[key] = [float(v.asnumpy()) for v in cell(Tensor(target[None]), Tensor(prediction[None]), weight)]
        return cache[key]

    return {f"CC_scale{k}": (lambda p, t, v, k=k: values(p, t, v)[k]) for k in range(n_cc)}


def _lsgan(prediction, real):
    error = prediction - (1.0 if real else 0.0)  # a product, as in losses.GANLoss (device_audit.py)
    return ops.mean(error * error)


class DiscriminatorLoss(nn.Cell):
    """sum over scales of 0.5 * (LSGAN(D(x, y), 1) + LSGAN(D(x, fake), 0)); aux: the two sums."""

    def __init__(self, netD):
        super().__init__(auto_prefix=False)
        self.netD = netD

    def construct(self, x, y, fake):
        real_features = self.netD(x, y)
        fake_features = self.netD(x, fake)
        loss_real, loss_fake = 0.0, 0.0
        for real_scale, fake_scale in zip(real_features, fake_features):
            loss_real = loss_real + 0.5 * _lsgan(real_scale[-1], True)
            loss_fake = loss_fake + 0.5 * _lsgan(fake_scale[-1], False)
        return loss_real + loss_fake, (loss_real, loss_fake)


class GeneratorLoss(nn.Cell):
    """lambda_GAN * sum_s 0.5 LSGAN(D_s(x, fake), 1) + lambda_FM * FM + lambda_CC * mean_k (1 - CC_k).

    aux: (LSGAN term, FM term, CC loss) before weighting; the CC loss is the mean over the n_CC
    scales of 1 - CC (concordance by default, as pix2pixCC's --ccc), over the target's `valid`
    pixels only (missing ones would otherwise correlate fill with fill)."""

    def __init__(self, netD, lambda_gan, lambda_fm, lambda_cc, n_cc, concordance, eps=1e-8):
        super().__init__(auto_prefix=False)
        self.netD = netD
        self.cc = MultiScaleCC(n_cc, eps, concordance)
        self.lambda_gan, self.lambda_fm, self.lambda_cc = lambda_gan, lambda_fm, lambda_cc

    def construct(self, x, y, fake, valid=None):
        fake = ops.cast(fake, mstype.float32)
        fake_features = self.netD(x, fake)
        real_features = self.netD(x, y)
        loss_gan = 0.0
        for fake_scale in fake_features:
            loss_gan = loss_gan + 0.5 * _lsgan(fake_scale[-1], True)
        loss_fm = feature_matching_loss(fake_features, real_features)
        values = self.cc(y, fake, valid)
        loss_cc = 0.0
        for value in values:
            loss_cc = loss_cc + (1.0 - value)
        loss_cc = loss_cc / len(values)
        total = self.lambda_gan * loss_gan + self.lambda_fm * loss_fm + self.lambda_cc * loss_cc
        return total, (loss_gan, loss_fm, loss_cc)


class Pix2PixCC(Model):
    name = "pix2pixcc"
    summary = ("residual generator + multi-scale feature PatchGANs, LSGAN + feature matching + "
               "correlation coefficients")
    defaults = {"norm": "instance", "padding_type": "replication", "lambda_GAN": 2.0, "ema_decay": 0.0}
    generator_arch = ("input_nc", "output_nc", "ngf", "n_downsample", "n_residual", "trans_conv",
                      "norm", "padding_type", "output_activation", "size_unit")
    discriminator_arch = ("input_nc", "output_nc", "ndf", "n_D", "ch_balance")
    loss_names = ("loss_D", "loss_G", "loss_D_real", "loss_D_fake", "loss_G_LSGAN", "loss_G_FM",
                  "loss_G_CC")

    def add_generator_flags(self, group):
        group.add_argument("--n_downsample", type=positive_int, default=4,
                           help="stride-2 convolutions (and upsamplings) of the generator; the crop size "
                                "must be a multiple of 2**n_downsample (default: %(default)s)")
        group.add_argument("--n_residual", type=non_negative_int, default=9,
                           help="residual blocks at the lowest resolution (default: %(default)s)")
        group.add_argument("--trans_conv", type=str2bool, default=True,
                           help="True: transposed convolutions upsample; False: bilinear x2 + 3x3 conv "
                                "(default: %(default)s)")
        group.add_argument("--output_activation", default="linear", choices=["linear", "tanh"],
                           help="linear lets normalised physical values leave [-1, 1] (default: %(default)s)")

    def add_training_flags(self, group):
        group.add_argument("--n_D", type=positive_int, default=1,
                           help="discriminators at successively halved scales (default: %(default)s)")
        group.add_argument("--ch_balance", type=float, default=1.0,
                           help="stack copies of the side with fewer channels so input and image weigh "
                                "alike in D; 0 turns it off (default: %(default)s)")
        group.add_argument("--lambda_FM", type=float, default=10.0,
                           help="weight of the feature-matching loss (default: %(default)s)")
        group.add_argument("--lambda_CC", type=float, default=5.0,
                           help="weight of the correlation-coefficient loss (default: %(default)s)")

    def add_metric_flags(self, group):
        group.add_argument("--n_CC", type=positive_int, default=4,
                           help="scales at which the correlation coefficient is computed, in the loss "
                                "and the CC metrics (default: %(default)s)")
        group.add_argument("--ccc", type=str2bool, default=True,
                           help="True: Lin's concordance correlation coefficient; False: Pearson's "
                                "(default: %(default)s)")

    def gan_mode(self, cfg):
        return "lsgan"

    def metrics(self, cfg):
        return multiscale_cc_metrics(cfg.n_CC, cfg.ccc)

    def derived(self, cfg):
        return {"size_unit": self.size_unit(cfg)}

    def size_unit(self, cfg):
        """Image sides must halve cleanly n_downsample times, and the coarsest discriminator needs
        at least 32 px (its five 4x4 blocks shrink 32 px to a 2x2 map)."""
        unit = 2 ** cfg.n_downsample
        if cfg.crop_size % unit:
            raise UserError(f"--crop_size {cfg.crop_size}: with --n_downsample {cfg.n_downsample} the "
                            f"size must be a multiple of {unit}")
        if cfg.crop_size < 32 * 2 ** (cfg.n_D - 1):
            raise UserError(f"--crop_size {cfg.crop_size} is too small for --n_D {cfg.n_D}: the "
                            f"discriminators need at least {32 * 2 ** (cfg.n_D - 1)} px")
        return unit

    def generator(self, cfg):
        return ResidualGenerator(cfg.input_nc, cfg.output_nc, cfg.ngf, cfg.n_downsample, cfg.n_residual,
                                 cfg.trans_conv, cfg.norm, cfg.padding_type, cfg.output_activation)

    def discriminator(self, cfg):
        return MultiScaleDiscriminator(cfg.input_nc, cfg.output_nc, cfg.ndf, cfg.n_D, cfg.ch_balance)

    def losses(self, cfg, netD):
        return (DiscriminatorLoss(netD),
                GeneratorLoss(netD, cfg.lambda_GAN, cfg.lambda_FM, cfg.lambda_CC, cfg.n_CC, cfg.ccc))


register_model(Pix2PixCC())
