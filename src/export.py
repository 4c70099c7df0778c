"""The trained generator for inference: from a checkpoint, to MINDIR/AIR/ONNX, and back.

Inference mode everywhere: dropout off and batch-norm running statistics. The paper keeps
dropout at test time as a noise source; we do not, so that a translation is deterministic and
the exported model gives exactly the checkpoint's output.
"""
import json
import os

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn

from src.models import registry
from src.utils import checkpoint
from src.utils.errors import UserError


def load_generator(cfg):
    """The generator of `cfg.ckpt` in inference mode; a checkpoint of another architecture is a
    one-line UserError naming the flags that differ."""
    netG = registry.build_generator(cfg)
    checkpoint.load_network(netG, cfg.ckpt, {"model": cfg.model, **registry.arch(cfg, "generator")})
    netG.set_train(False)
    return netG


def export_generator(cfg):
    """Write the generator for inputs of batch_size x input_nc x image_size x image_size."""
    if cfg.file_format == "AIR" and cfg.device_target != "Ascend":
        raise UserError("--file_format AIR is written only on Ascend (--device_target Ascend); "
                        "use MINDIR here")
    size = cfg.image_size or cfg.crop_size
    netG = load_generator(cfg)
    example = Tensor(np.zeros((cfg.batch_size, cfg.input_nc, size, size), np.float32))
    directory = os.path.dirname(os.path.abspath(cfg.file_name))
    os.makedirs(directory, exist_ok=True)
    try:
        ms.export(netG, example, file_name=cfg.file_name, file_format=cfg.file_format)
    except (RuntimeError, ValueError, TypeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"export to {cfg.file_format} failed on {cfg.device_target}: {first_line}") from None
    suffix = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}[cfg.file_format]
    path = cfg.file_name if cfg.file_name.endswith(suffix) else cfg.file_name + suffix
    write_model_card(path, cfg, size)
    return path


def write_model_card(exported_path, cfg, size):
    """`<exported file>.json`: what the exported graph expects, for predict.py and the 310 flow."""
    card = {"input_shape": [cfg.batch_size, cfg.input_nc, size, size], "output_nc": cfg.output_nc,
            "direction": getattr(cfg, "direction", "AtoB"), "checkpoint": os.path.abspath(cfg.ckpt),
            "arch": {"model": cfg.model, **registry.arch(cfg, "generator")}}
    checkpoint.atomic_write_text(exported_path + ".json", json.dumps(card, indent=1))
    return card


def load_mindir(path):
    """(GraphCell, model card) of an exported MINDIR and the card export.py wrote beside it."""
    if not os.path.isfile(path):
        raise UserError(f"--mindir {path}: no such file")
    card_path = path + ".json"
    if not os.path.isfile(card_path):
        raise UserError(f"--mindir {path}: {card_path} is missing; export.py writes it beside the model")
    with open(card_path, encoding="utf-8") as handle:
        card = json.load(handle)
    try:
        graph = ms.load(path)
    except (RuntimeError, ValueError) as err:
        raise UserError(f"--mindir {path}: not a loadable MINDIR ({str(err).strip().splitlines()[0]})") from None
    return nn.GraphCell(graph), card
