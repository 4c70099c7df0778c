"""The trained generator of a checkpoint, for inference: built from the flags the checkpoint
records, in inference mode everywhere (dropout off; batch norm with the running statistics, or
each forward pass's own with --bn_stats image).

The paper keeps dropout at test time as a noise source; we do not, so that a translation is
deterministic and the exported model gives exactly the checkpoint's output.
"""
import sys

from mindspore import nn

from src import checkpoint
from src.config import apply_recorded_flags
from src.dataset.pairs import DATA_FLAGS
from src.models import registry


def recorded_flags(cfg):
    """{flag: value} a generator checkpoint records: what eval and export need to build the
    generator and read data as training did (model, its architecture flags and channels, the crop
    size the U-Net's depth follows, direction, formats, normalisation, FITS settings), and the
    generator's training flags (dropout) for a run that fine-tunes it. Flags that shape only
    training (loss weights, the discriminator) or the evaluation (the CC metrics' --ccc, --n_CC),
    and run settings (batch size, folders, tiles) are free."""
    names = ("model", "crop_size", *registry.arch(cfg, "generator"),
             *registry.model_of(cfg).generator_training_flags, *DATA_FLAGS)
    return {name: getattr(cfg, name) for name in names if hasattr(cfg, name)}


def save_generator(netG, path, cfg, palette=None):
    """A generator checkpoint: its architecture, the training flags inference needs, and the label
    colours of its inputs (src/dataset/palette.py) for a label-map model."""
    checkpoint.save_network(netG, path, {"model": cfg.model, **registry.arch(cfg, "generator")},
                            config=recorded_flags(cfg), palette=palette)


def resolve_checkpoint_flags(cfg, warn=lambda line: print(line, file=sys.stderr)):
    """Take the training flags `cfg.ckpt` records (a contradicting flag is a UserError). A
    checkpoint written before checkpoints recorded them is used with the flags given, and a hint."""
    recorded = checkpoint.read_recorded_config(cfg.ckpt)
    if recorded is None:
        warn(f"note: {cfg.ckpt} records no training flags (written before checkpoints did); using the "
             "flags given here, which must repeat training's model, size, format and normalisation flags")
        return cfg
    return apply_recorded_flags(cfg, recorded, cfg.ckpt)


def load_generator(cfg):
    """The generator of `cfg.ckpt` in inference mode (dropout off; batch norm with the running
    statistics, or each forward pass's own with --bn_stats image); a checkpoint of another
    architecture is a one-line UserError naming the flags that differ."""
    netG = registry.build_generator(cfg)
    checkpoint.load_network(netG, cfg.ckpt, {"model": cfg.model, **registry.arch(cfg, "generator")})
    netG.set_train(False)
    if per_image_statistics(cfg):
        use_image_statistics(netG)
    return netG


def per_image_statistics(cfg):
    """Whether translation takes each forward pass's batch-norm statistics (--bn_stats image on a
    batch-norm generator; instance norm is per image anyway)."""
    return cfg.bn_stats == "image" and cfg.norm == "batch"


def use_image_statistics(netG):
    """Batch norm in `netG` normalises with each forward pass's own statistics (it also moves the
    running averages then: use a network whose averages are not kept)."""
    for _, cell in netG.cells_and_names():
        if isinstance(cell, nn.BatchNorm2d):
            cell.use_batch_statistics = True
    return netG


def inference_batch_size(cfg):
    """Images per forward pass: one under --bn_stats image, whose statistics are per pass."""
    return 1 if per_image_statistics(cfg) else cfg.batch_size
