"""The model card: the JSON file export.py writes beside an exported graph (`<file>.json`) with
what the graph expects (input shape, size unit, channels) and how its data are read and
normalised. It is all that predict.py, the 310 flow and the server know of the training flags;
`card_config` turns it into the cfg the data layer and the metrics read.
"""
import hashlib
import json
import os

from src.config import default_config
from src.dataset.pairs import DATA_FLAGS
from src.models import registry
from src.trained_generator import per_image_statistics
from src.utils.errors import UserError
from src.utils.files import atomic_write_text


def symbolic_batch(cfg):
    """Whether an ONNX export takes any batch size: not under per-image statistics, which the
    graph takes over its whole batch."""
    return cfg.file_format == "ONNX" and not per_image_statistics(cfg)


CARD_KEYS = ("input_shape", "size_unit", "output_nc", "data", "metrics", "checkpoint", "arch")


def model_card(cfg, size):
    """What a generator exported from `cfg` expects (input_shape: null height and width for any
    size, multiples of size_unit; a null batch for any batch, of which batch_size at a time) and how its data is read and normalised: all that predict.py,
    the 310 flow and the server know of the training flags."""
    batch = None if symbolic_batch(cfg) else cfg.batch_size
    return {"input_shape": [batch, cfg.input_nc, size, size], "batch_size": cfg.batch_size,
            "file_format": cfg.file_format, "size_unit": registry.size_unit(cfg),
            "output_nc": cfg.output_nc,
            "data": {name: getattr(cfg, name) for name in DATA_FLAGS},
            "metrics": {name: getattr(cfg, name) for name in registry.metric_flags()},
            "checkpoint": os.path.abspath(cfg.ckpt), "bn_stats": cfg.bn_stats, "dropout_at_inference": False,
            "arch": {"model": cfg.model, **registry.arch(cfg, "generator")}}


def write_model_card(exported_path, cfg, size):
    """`<exported file>.json`: the model card of the exported graph (an ONNX card also holds the
    file's SHA-256, so that a card cannot be taken for another model's)."""
    card = model_card(cfg, size)
    if cfg.file_format == "ONNX":
        card["sha256"] = file_sha256(exported_path)
    atomic_write_text(exported_path + ".json", json.dumps(card, indent=1))
    return card


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_model_card(path, flag="--mindir"):
    """The model card export.py wrote beside the exported model `path` (given as `flag`)."""
    if not os.path.isfile(path):
        raise UserError(f"{flag} {path}: no such file")
    card_path = path + ".json"
    if not os.path.isfile(card_path):
        raise UserError(f"{flag} {path}: {card_path} is missing; export.py writes it beside the model")
    try:
        with open(card_path, encoding="utf-8") as handle:
            card = json.load(handle)
    except ValueError as err:
        raise UserError(f"{card_path}: not valid JSON ({err})") from None
    missing = [key for key in CARD_KEYS if key not in card] if isinstance(card, dict) else ["fields"]
    if missing:
        raise UserError(f"{card_path}: no {', '.join(missing)}: written by an older export.py; "
                        "export the checkpoint again")
    return card


def card_config(card):
    """The settings the data layer and the metrics read (channels, direction, formats,
    normalisation, CC scales), as the model was trained with them: how predict.py and the 310
    flow read and score data exactly like eval.py."""
    return default_config(**card["data"], **card["metrics"], input_nc=card["input_shape"][1],
                    output_nc=card["output_nc"], model=card["arch"]["model"], ckpt=card["checkpoint"])
