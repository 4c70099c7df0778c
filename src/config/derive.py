"""Derived defaults and the checks that span several flags, in one function: `validate`.

A flag whose help says "derived" has the default None in src/config/flags.py and gets its
value here, from the other flags: the model's own values of --norm, --padding_type,
--lambda_GAN and --ema_decay (`Model.defaults`, in the model's module), --epoch_num,
--best_metric, --val_interval without validation data, --tensorboard_dir and --no_flip.
"""
import os

from src.dataset.io import EIGHT_BIT_FORMATS
from src.dataset.transforms import resolve_flip
from src.models.registry import models
from src.utils.errors import UserError

# The flags declared with the default None whose value `validate` derives (their help says
# "default (derived)"): the model's own values, then the ones computed from other flags.
DERIVED_FLAGS = ("norm", "padding_type", "lambda_GAN", "ema_decay", "epoch_num", "best_metric", "tensorboard_dir",
                 "no_flip")


def validate(cfg):
    """Fill the derived defaults (DERIVED_FLAGS) and check what spans several flags; a mistake is a
    UserError. Single-flag checks live in the flags' value types (src/utils/flag_types.py)."""
    model = models()[cfg.model]
    for name, value in model.defaults.items():
        if getattr(cfg, name) is None:
            setattr(cfg, name, value)
    # Under --pretrained_G the crop size may come from the checkpoint: checked again once it has.
    size_known = not getattr(cfg, "pretrained_G", None) or "crop_size" in cfg.given_flags
    if cfg.entry == "train" and size_known and cfg.crop_size > cfg.load_size and cfg.resize_or_crop != "crop":
        raise UserError(f"--crop_size {cfg.crop_size} is larger than --load_size {cfg.load_size}; "
                        "the crop is taken from the resized image")
    if cfg.epoch_num is None:
        cfg.epoch_num = cfg.n_epochs + cfg.n_epochs_decay
        if cfg.epoch_num == 0:
            raise UserError("--n_epochs + --n_epochs_decay is 0: nothing to train")
    if cfg.entry == "pair_files" and (cfg.key_regex is None) == (cfg.time_tolerance is None):
        raise UserError("pair_files.py pairs by name (--key_regex) or by time (--time_tolerance): give one")
    for side in ("input", "target"):
        lower, upper = getattr(cfg, f"saturation_lower_limit_{side}"), getattr(cfg, f"saturation_upper_limit_{side}")
        if lower is not None and upper is not None and not lower < upper:
            raise UserError(f"--saturation_lower_limit_{side} {lower} must be below "
                            f"--saturation_upper_limit_{side} {upper}")
    if cfg.device_target == "CPU" and cfg.amp_level != "O0":
        raise UserError(f"--amp_level {cfg.amp_level} needs GPU or Ascend; CPU trains in float32 (O0)")
    _resolve_validation(cfg)
    if cfg.tensorboard_dir is None:
        cfg.tensorboard_dir = os.path.join(os.path.dirname(os.path.normpath(cfg.loss_show_dir)), "tensorboard")
    resolve_flip(cfg)


def _resolve_validation(cfg):
    """--best_metric's default (L1 for 8-bit targets, CC for arrays); validation needs data."""
    eight_bit = cfg.data_format_target in EIGHT_BIT_FORMATS
    if cfg.best_metric is None:
        cfg.best_metric = "L1" if eight_bit else "CC"
    if eight_bit and cfg.best_metric.endswith("_phys"):
        raise UserError(f"--best_metric {cfg.best_metric}: physical metrics need array targets "
                        "(FITS, npy, tif); 8-bit images have L1, MSE, PSNR, SSIM, CC")
    if cfg.val_interval and not cfg.val_data_dir and "val_interval" in cfg.given_flags:
        raise UserError(f"--val_interval {cfg.val_interval} needs --val_data_dir (held-out pairs to validate on)")
    if not cfg.val_data_dir:
        cfg.val_interval = 0  # what the run does, and what its resolved config repeats
