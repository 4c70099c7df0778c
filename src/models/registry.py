"""The model registry: every entry point builds networks, objectives and training steps through
it, and knows no model by name.

A model is one module (src/models/pix2pix.py, src/models/pix2pixcc.py) that subclasses `Model`
and registers an instance with `register_model`: its flags, its networks, its losses, and the
flags that shape its weights (so that a checkpoint records them and a mismatch is reported by
name). Adding a model: write its module and list it in MODEL_MODULES.
"""
import abc
import importlib

import mindspore as ms
import mindspore.nn as nn
from mindspore import Tensor, amp

from src.dataset.normalize import fill_on_model_scale, side_scaling
from src.models.train_step import GANTrainOneStep
from src.models.weight_init import init_weights
from src.utils.metrics import METRICS

MODEL_MODULES = ("src.models.pix2pix", "src.models.pix2pixcc")
_MODELS = {}


class Model(abc.ABC):
    """What a model module defines. Flag methods add argparse arguments to a group; the abstract
    methods are what every model must provide (an incomplete model fails when it is registered)."""
    name = ""
    summary = ""
    # Values of the shared flags whose default depends on the model (norm, padding_type, lambda_GAN).
    defaults = {}
    # {flag: value} every run had before the flag was recorded: what a checkpoint that does not
    # record the flag was trained with (the default may have changed since).
    predates = {}
    # Flags (or derived values, see `derived`) that change each network's weights.
    generator_arch = ()
    # Generator flags that change training but not the weights (dropout): a checkpoint records
    # them too, so that a run fine-tuning it (--pretrained_G) trains as its own training did.
    generator_training_flags = ()
    discriminator_arch = ()
    loss_names = ()

    def add_generator_flags(self, group):
        """Flags of the generator alone: training, and eval/export of a checkpoint without records."""

    def add_training_flags(self, group):
        """Flags of the discriminator and the objective: training only."""

    def add_metric_flags(self, group):
        """Flags of this model's extra metrics: training (validation) and eval."""

    @abc.abstractmethod
    def gan_mode(self, cfg):
        """The adversarial loss, "vanilla" or "lsgan" (how losses of a winning D look)."""

    def metrics(self, cfg):
        """{name: function(prediction, target, valid)} of metrics eval adds for this model."""
        return {}

    def derived(self, cfg):
        """{name: value} of architecture values computed from flags (e.g. the U-Net's depth)."""
        return {}

    @abc.abstractmethod
    def size_unit(self, cfg):
        """Input heights and widths the generator takes are multiples of this."""

    @abc.abstractmethod
    def generator(self, cfg):
        """The generator network of this config."""

    @abc.abstractmethod
    def discriminator(self, cfg):
        """The discriminator network of this config."""

    @abc.abstractmethod
    def losses(self, cfg, netD):
        """(discriminator loss cell, generator loss cell) as GANTrainOneStep takes them."""


def register_model(model):
    _MODELS[model.name] = model
    return model


def models():
    """{name: Model} of every registered model, importing the model modules on first use."""
    if not _MODELS:
        for module in MODEL_MODULES:
            importlib.import_module(module)
    return _MODELS


def model_of(cfg):
    return models()[cfg.model]


def metrics_for(cfg):
    """The metrics eval reports for this model: the common five and the model's own (pix2pixCC's
    per-scale CC)."""
    return {**METRICS, **model_of(cfg).metrics(cfg)}


def metric_flags():
    """The flags of every model's metrics: export records them in the model card, so that
    inference away from eval.py scores alike."""
    import argparse
    parser = argparse.ArgumentParser(add_help=False)
    for model in models().values():
        model.add_metric_flags(parser)
    return tuple(action.dest for action in parser._actions)  # argparse keeps no public list


def arch(cfg, network):
    """{flag: value} that shape `network` ("generator" or "discriminator") under this config."""
    model = model_of(cfg)
    derived = model.derived(cfg)
    return {key: derived[key] if key in derived else getattr(cfg, key)
            for key in getattr(model, f"{network}_arch")}


def size_unit(cfg):
    return model_of(cfg).size_unit(cfg)


def check_model_config(cfg):
    """Raise UserError for flags the networks cannot take, before any file is read or written."""
    arch(cfg, "generator")


def build_generator(cfg):
    netG = model_of(cfg).generator(cfg)
    init_weights(netG, cfg.init_type, cfg.init_gain)
    # Fixed prefixes keep checkpoint keys the same however the networks are wrapped later.
    netG.update_parameters_name("netG.")
    return netG


def generator_copy(cfg, values, copy=None):
    """A generator of `cfg` (`copy`, or a new one) holding a copy of `values` ({parameter name:
    tensor}, every parameter): a network to save or score that training does not touch."""
    copy = copy or build_generator(cfg)
    ms.load_param_into_net(copy, {name: ms.Parameter(Tensor(value.asnumpy()), name=name)
                                  for name, value in values.items()}, strict_load=True)
    return copy


def build_discriminator(cfg):
    netD = model_of(cfg).discriminator(cfg)
    init_weights(netD, cfg.init_type, cfg.init_gain)
    netD.update_parameters_name("netD.")
    return netD


def loss_names(cfg):
    return model_of(cfg).loss_names


def build_train_step(cfg, netG, netD, lr_per_step):
    """The compiled D-then-G step with Adam on both networks and the given per-step rates."""
    if cfg.amp_level != "O0":
        netG = amp.auto_mixed_precision(netG, cfg.amp_level)
        netD = amp.auto_mixed_precision(netD, cfg.amp_level)
    loss_D, loss_G = model_of(cfg).losses(cfg, netD)
    lr = Tensor(lr_per_step)
    opt_G = nn.Adam(netG.trainable_params(), learning_rate=lr, beta1=cfg.beta1, beta2=cfg.beta2)
    opt_D = nn.Adam(netD.trainable_params(), learning_rate=lr, beta1=cfg.beta1, beta2=cfg.beta2)
    _name_optimizer_state(opt_G, "opt_G.", netG)
    _name_optimizer_state(opt_D, "opt_D.", netD)
    target_fill = fill_on_model_scale(side_scaling(cfg, "target"))
    return GANTrainOneStep(netG, netD, loss_D, loss_G, opt_G, opt_D, cfg.loss_scale, target_fill,
                           cfg.ema_decay, cfg.ema_every)


def _name_optimizer_state(optimizer, prefix, network):
    """Prefix the optimiser's own state (moments, step counter, rates): two Adams would both
    name their counter 'global_step', and checkpoints need unique, stable names."""
    own = {id(param) for param in network.get_parameters()}
    for param in optimizer.get_parameters():
        if id(param) not in own:
            param.name = prefix + param.name
