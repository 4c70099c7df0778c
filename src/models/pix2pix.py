"""Pix2Pix (Isola et al. 2017): U-Net generator, PatchGAN discriminator, GAN + lambda_L1 * L1."""
import mindspore.nn as nn
import mindspore.ops as ops
from mindspore.common import dtype as mstype

from src.models.discriminators import NLayerDiscriminator
from src.models.generators import UnetGenerator, unet_depth
from src.models.losses import GANLoss, l1_loss
from src.models.registry import Model, register_model
from src.utils.flag_types import positive_int, str2bool


class DiscriminatorLoss(nn.Cell):
    """lambda_D * (GAN(D(x, y), real) + GAN(D(x, fake), fake)); aux: the two terms."""

    def __init__(self, netD, gan_mode, lambda_d):
        super().__init__(auto_prefix=False)
        self.netD = netD
        self.gan_loss = GANLoss(gan_mode)
        self.lambda_d = lambda_d

    def construct(self, x, y, fake):
        loss_real = self.gan_loss(ops.cast(self.netD(x, y), mstype.float32), True)
        loss_fake = self.gan_loss(ops.cast(self.netD(x, fake), mstype.float32), False)
        return self.lambda_d * (loss_real + loss_fake), (loss_real, loss_fake)


class GeneratorLoss(nn.Cell):
    """lambda_GAN * GAN(D(x, fake), real) + lambda_L1 * |fake - y|; aux: the two terms.

    A function of the generated image, so the step can differentiate it with respect to `fake`.
    """

    def __init__(self, netD, gan_mode, lambda_gan, lambda_l1):
        super().__init__(auto_prefix=False)
        self.netD = netD
        self.gan_loss = GANLoss(gan_mode)
        self.lambda_gan = lambda_gan
        self.lambda_l1 = lambda_l1

    def construct(self, x, y, fake, valid=None):
        fake = ops.cast(fake, mstype.float32)
        loss_gan = self.gan_loss(ops.cast(self.netD(x, fake), mstype.float32), True)
        loss_l1 = l1_loss(fake, y)
        return self.lambda_gan * loss_gan + self.lambda_l1 * loss_l1, (loss_gan, loss_l1)


class Pix2Pix(Model):
    name = "pix2pix"
    summary = "U-Net + PatchGAN, GAN + L1"
    defaults = {"norm": "batch", "padding_type": "zero", "lambda_GAN": 1.0, "ema_decay": 0.999}
    predates = {"upsample": "transpose"}
    generator_arch = ("input_nc", "output_nc", "ngf", "norm", "padding_type", "upsample", "unet_depth")
    generator_training_flags = ("dropout",)
    discriminator_arch = ("input_nc", "output_nc", "ndf", "n_layers_D", "norm", "padding_type")
    loss_names = ("loss_D", "loss_G", "loss_D_real", "loss_D_fake", "loss_G_GAN", "loss_G_L1")

    def add_generator_flags(self, group):
        group.add_argument("--upsample", default="resize", choices=["transpose", "resize"],
                           help="U-Net decoder upsampling: resize: nearest x2 then 3x3 convolution, free of "
                                "checkerboard artefacts and better on bench/QUALITY.md, computed at the cost "
                                "of a transposed convolution (bench/RESULTS.md); transpose: 4x4 transposed "
                                "convolution, the reference's decoder (default: %(default)s)")
        group.add_argument("--dropout", type=str2bool, default=True,
                           help="dropout 0.5 in the U-Net's innermost 512-channel decoder blocks while "
                                "training (default: %(default)s)")

    def add_training_flags(self, group):
        group.add_argument("--n_layers_D", type=positive_int, default=3,
                           help="stride-2 layers of the PatchGAN; 3 gives the 70x70 receptive field "
                                "(default: %(default)s)")
        group.add_argument("--gan_mode", default="vanilla", choices=["vanilla", "lsgan"],
                           help="vanilla: sigmoid cross-entropy on logits; lsgan: least squares "
                                "(default: %(default)s)")
        group.add_argument("--lambda_L1", "--LAMBDA_L1", type=float, default=100.0,
                           help="weight of G's L1 loss (default: %(default)s)")
        group.add_argument("--lambda_D", "--LAMBDA_Dis", type=float, default=0.5,
                           help="weight of D's loss, real + fake (default: %(default)s)")

    def gan_mode(self, cfg):
        return cfg.gan_mode

    def derived(self, cfg):
        return {"unet_depth": unet_depth(cfg.crop_size)}

    def size_unit(self, cfg):
        """2**depth: the U-Net's bottleneck is then 1x1."""
        return 2 ** unet_depth(cfg.crop_size)

    def generator(self, cfg):
        return UnetGenerator(cfg.input_nc, cfg.output_nc, cfg.ngf, unet_depth(cfg.crop_size), cfg.norm,
                             cfg.padding_type, use_dropout=cfg.dropout, train_size=cfg.crop_size,
                             upsample=cfg.upsample)

    def discriminator(self, cfg):
        return NLayerDiscriminator(cfg.input_nc + cfg.output_nc, cfg.ndf, cfg.n_layers_D, cfg.norm,
                                   cfg.padding_type)

    def losses(self, cfg, netD):
        return (DiscriminatorLoss(netD, cfg.gan_mode, cfg.lambda_D),
                GeneratorLoss(netD, cfg.gan_mode, cfg.lambda_GAN, cfg.lambda_L1))


register_model(Pix2Pix())
