"""Builds a model's networks, objective and training step from the config: the one factory
that every entry point uses. Each model names the flags that shape its weights, so that a
checkpoint records them and a mismatch can be reported by name."""
import mindspore.nn as nn
from mindspore import Tensor, amp

from src.dataset.normalize import fill_on_model_scale, side_scaling
from src.models.discriminators import MultiScaleDiscriminator, NLayerDiscriminator
from src.models.generators import ResidualGenerator, UnetGenerator, unet_depth
from src.models.init import init_weights
from src.models.train_step import (DiscriminatorLoss, GANTrainOneStep, GeneratorLoss,
                                   Pix2PixCCDiscriminatorLoss, Pix2PixCCGeneratorLoss)
from src.utils.errors import UserError


def _pix2pix_generator(cfg):
    return UnetGenerator(cfg.input_nc, cfg.output_nc, cfg.ngf, unet_depth(cfg.crop_size), cfg.norm,
                         cfg.pad_mode, use_dropout=cfg.dropout, train_size=cfg.crop_size,
                         upsample=getattr(cfg, "upsample", "transpose"))


def _pix2pix_discriminator(cfg):
    return NLayerDiscriminator(cfg.input_nc + cfg.output_nc, cfg.ndf, cfg.n_layers_D, cfg.norm,
                               cfg.pad_mode)


def _pix2pix_losses(cfg, netD):
    return (DiscriminatorLoss(netD, cfg.gan_mode, cfg.LAMBDA_Dis),
            GeneratorLoss(netD, cfg.gan_mode, cfg.LAMBDA_GAN, cfg.LAMBDA_L1))


def _pix2pixcc_generator(cfg):
    return ResidualGenerator(cfg.input_nc, cfg.output_nc, cfg.n_gf, cfg.n_downsample, cfg.n_residual,
                             cfg.trans_conv, cfg.norm, cfg.padding_type, cfg.output_activation)


def _pix2pixcc_discriminator(cfg):
    return MultiScaleDiscriminator(cfg.input_nc, cfg.output_nc, cfg.n_df, cfg.n_D, cfg.ch_balance)


def _pix2pixcc_losses(cfg, netD):
    return (Pix2PixCCDiscriminatorLoss(netD),
            Pix2PixCCGeneratorLoss(netD, cfg.lambda_LSGAN, cfg.lambda_FM, cfg.lambda_CC, cfg.n_CC, cfg.ccc))


def _pix2pixcc_size_unit(cfg):
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


MODELS = {
    "pix2pix": {
        "generator": _pix2pix_generator,
        "discriminator": _pix2pix_discriminator,
        "losses": _pix2pix_losses,
        # Flags that change the weights' shapes or meaning, per network.
        "generator_arch": ("input_nc", "output_nc", "ngf", "norm", "pad_mode", "upsample", "unet_depth"),
        "discriminator_arch": ("input_nc", "output_nc", "ndf", "n_layers_D", "norm", "pad_mode"),
        "loss_names": ("loss_D", "loss_G", "loss_D_real", "loss_D_fake", "loss_G_GAN", "loss_G_L1"),
    },
    "pix2pixcc": {
        "generator": _pix2pixcc_generator,
        "discriminator": _pix2pixcc_discriminator,
        "losses": _pix2pixcc_losses,
        "generator_arch": ("input_nc", "output_nc", "n_gf", "n_downsample", "n_residual", "trans_conv",
                           "norm", "padding_type", "output_activation", "size_unit"),
        "discriminator_arch": ("input_nc", "output_nc", "n_df", "n_D", "ch_balance"),
        "loss_names": ("loss_D", "loss_G", "loss_D_real", "loss_D_fake", "loss_G_LSGAN", "loss_G_FM",
                       "loss_G_CC"),
    },
}


def _model(cfg):
    return MODELS[cfg.model]


def arch(cfg, network):
    """{flag: value} that shape `network` ("generator" or "discriminator") under this config."""
    derived = {"unet_depth": lambda: unet_depth(cfg.crop_size),
               "size_unit": lambda: _pix2pixcc_size_unit(cfg)}
    return {key: derived[key]() if key in derived else getattr(cfg, key)
            for key in _model(cfg)[f"{network}_arch"]}


def size_unit(cfg):
    """Input heights and widths the generator takes are multiples of this (and at least this):
    2**depth for the U-Net, whose bottleneck is then 1x1; 2**n_downsample for pix2pixCC's."""
    if cfg.model == "pix2pixcc":
        return _pix2pixcc_size_unit(cfg)
    return 2 ** unet_depth(cfg.crop_size)


def check_model_config(cfg):
    """Raise UserError for flags the networks cannot take, before any file is read or written."""
    arch(cfg, "generator")


def build_generator(cfg):
    netG = _model(cfg)["generator"](cfg)
    # eval and export have no init flags: their weights come from a checkpoint.
    init_weights(netG, getattr(cfg, "init_type", "normal"), getattr(cfg, "init_gain", 0.02))
    # Fixed prefixes keep checkpoint keys the same however the networks are wrapped later.
    netG.update_parameters_name("netG.")
    return netG


def build_discriminator(cfg):
    netD = _model(cfg)["discriminator"](cfg)
    init_weights(netD, cfg.init_type, cfg.init_gain)
    netD.update_parameters_name("netD.")
    return netD


def loss_names(cfg):
    return _model(cfg)["loss_names"]


def build_train_step(cfg, netG, netD, lr_per_step):
    """The compiled D-then-G step with Adam on both networks and the given per-step rates."""
    if cfg.amp_level != "O0":
        netG = amp.auto_mixed_precision(netG, cfg.amp_level)
        netD = amp.auto_mixed_precision(netD, cfg.amp_level)
    loss_D, loss_G = _model(cfg)["losses"](cfg, netD)
    lr = Tensor(lr_per_step)
    opt_G = nn.Adam(netG.trainable_params(), learning_rate=lr, beta1=cfg.beta1, beta2=cfg.beta2)
    opt_D = nn.Adam(netD.trainable_params(), learning_rate=lr, beta1=cfg.beta1, beta2=cfg.beta2)
    _name_optimizer_state(opt_G, "opt_G.", netG)
    _name_optimizer_state(opt_D, "opt_D.", netD)
    target_fill = fill_on_model_scale(side_scaling(cfg, "target"))
    return GANTrainOneStep(netG, netD, loss_D, loss_G, opt_G, opt_D, cfg.loss_scale, target_fill,
                           getattr(cfg, "ema_decay", 0.0))


def _name_optimizer_state(optimizer, prefix, network):
    """Prefix the optimiser's own state (moments, step counter, rates): two Adams would both
    name their counter 'global_step', and checkpoints need unique, stable names."""
    own = {id(param) for param in network.get_parameters()}
    for param in optimizer.get_parameters():
        if id(param) not in own:
            param.name = prefix + param.name
