"""The model card: the JSON file export.py writes beside an exported graph (`<file>.json`) with
what the graph expects (input shape, size unit, channels) and how its data are read and
normalised. It is all that predict.py, the 310 flow and the server know of the training flags;
`card_config` turns it into the cfg the data layer and the metrics read.
"""
import hashlib
import json
import os

from src import checkpoint
from src.config import checked_flag_values, default_config, flag_names
from src.dataset.pairs import DATA_FLAGS
from src.dataset.palette import checked_palette
from src.models import registry
from src.trained_generator import per_image_statistics
from src.utils.errors import UserError
from src.utils.files import atomic_write_text


def symbolic_batch(cfg):
    """Whether an ONNX export takes any batch size: not under per-image statistics, which the
    graph takes over its whole batch."""
    return cfg.file_format == "ONNX" and not per_image_statistics(cfg)


CARD_KEYS = ("input_shape", "size_unit", "output_nc", "data", "metrics", "checkpoint", "arch")


def model_card(cfg, size, palette=None):
    """What a generator exported from `cfg` expects (input_shape: null height and width for any
    size, multiples of size_unit; a null batch for any batch, of which batch_size at a time), how its
    data is read and normalised, and its inputs' label colours (`palette`, the checkpoint's record:
    null if they are not a label map): all that predict.py, the 310 flow and the server know of the training flags."""
    batch = None if symbolic_batch(cfg) else cfg.batch_size
    return {"input_shape": [batch, cfg.input_nc, size, size], "batch_size": cfg.batch_size,
            "file_format": cfg.file_format, "size_unit": registry.size_unit(cfg),
            "output_nc": cfg.output_nc,
            "data": {name: getattr(cfg, name) for name in DATA_FLAGS},
            "metrics": {name: getattr(cfg, name) for name in registry.metric_flags()},
            "checkpoint": os.path.abspath(cfg.ckpt), "bn_stats": cfg.bn_stats, "dropout_at_inference": False,
            "arch": {"model": cfg.model, **registry.arch(cfg, "generator")},
            "input_palette": palette}


def write_model_card(exported_path, cfg, size):
    """`<exported file>.json`: the model card of the exported graph (an ONNX card also holds the
    file's SHA-256, so that a card cannot be taken for another model's)."""
    card = model_card(cfg, size, checkpoint.read_recorded_palette(cfg.ckpt))
    card["sha256"] = file_sha256(exported_path)
    card["card_sha256"] = card_digest(card)
    atomic_write_text(exported_path + ".json", json.dumps(card, indent=1))
    return card


def card_digest(card):
    """SHA-256 of a card's fields but this one: a card is machine-written, so a bit flipped in it
    (which could still parse, with another normalisation) is told from a whole one."""
    fields = {key: value for key, value in card.items() if key != "card_sha256"}
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_model_card(path, flag="--mindir"):
    """The model card export.py wrote beside the exported model `path` (given as `flag`), checked
    whole and against the file: a damaged card or model, or a card beside another model's file, is
    a one-line UserError. (Cards of exports before the checksums are taken unchecked, except ONNX
    ones, which always held the file's SHA-256.)"""
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
    if "card_sha256" in card and card["card_sha256"] != card_digest(card):
        raise UserError(f"{card_path}: damaged: its fields do not match the checksum it holds (a flipped "
                        "bit, or an edit); export the checkpoint again, which writes it")
    _check_card_matches(card, path, flag)
    return _checked_fields(card, card_path)


def _is_size(value):
    return isinstance(value, int) and not isinstance(value, bool) and value > 0


def _checked_arch(arch, card_path):
    """arch: flag values (checked as flags) and values derived from them (unet_depth: scalars)."""
    flags = {name: value for name, value in arch.items() if name in flag_names()}
    derived = {name: value for name, value in arch.items() if name not in flags}
    odd = [name for name, value in arch.items() if value is None]
    odd += [name for name, value in derived.items() if not isinstance(value, (int, str)) or isinstance(value, bool)]
    if odd:
        raise UserError(f"{card_path}: arch field {odd[0]!r} is {arch[odd[0]]!r}, not what export.py writes")
    return {**checked_flag_values(flags, card_path), **derived}


def _checked_fields(card, card_path):
    """The card with its fields checked as their readers use them (flag values by the flags' own
    types and choices): a card edited by hand, or written by something else, is one line."""
    shape = card["input_shape"]
    if not (isinstance(shape, list) and len(shape) == 4 and _is_size(shape[1])
            and all(value is None or _is_size(value) for value in shape) and shape[2] == shape[3]):
        raise UserError(f"{card_path}: input_shape {shape!r} is not [batch, channels, size, size] "
                        "(positive integers; null batch or size for any)")
    for key in ("size_unit", "output_nc") + (("batch_size",) if shape[0] is None or "batch_size" in card else ()):
        if not _is_size(card.get(key)):
            raise UserError(f"{card_path}: {key} {card.get(key)!r} is not a positive integer")
    if not isinstance(card["checkpoint"], str) or not isinstance(card["arch"], dict) or "model" not in card["arch"]:
        raise UserError(f"{card_path}: its checkpoint or arch field is not what export.py writes; "
                        "export the checkpoint again")
    checked = {**card, "data": checked_flag_values(card["data"], card_path),
               "metrics": checked_flag_values(card["metrics"], card_path),
               "arch": _checked_arch(card["arch"], card_path)}
    if "bn_stats" in card:
        checked.update(checked_flag_values({"bn_stats": card["bn_stats"]}, card_path))
    checked["input_palette"] = checked_palette(card.get("input_palette"), card_path)
    return checked


def _check_card_matches(card, path, flag):
    exported_format = {"--onnx": "ONNX"}.get(flag, "MINDIR")
    card_format = card.get("file_format", exported_format)
    if card_format != exported_format:
        raise UserError(f"{flag} {path}: {path}.json is the card of a {card_format} export, not of this "
                        f"{exported_format} file; export the checkpoint with --file_format {exported_format}")
    if ("sha256" in card or exported_format == "ONNX") and card.get("sha256") != file_sha256(path):
        raise UserError(f"{flag} {path}: {path}.json does not match this file (its SHA-256 differs): the "
                        "file is damaged (a flipped bit, a partial copy) or the card is another model's; "
                        "export the checkpoint again, which writes both")


def card_config(card):
    """The settings the data layer and the metrics read (channels, direction, formats,
    normalisation, CC scales), as the model was trained with them: how predict.py and the 310
    flow read and score data exactly like eval.py."""
    return default_config(**card["data"], **card["metrics"], input_nc=card["input_shape"][1],
                    output_nc=card["output_nc"], model=card["arch"]["model"], ckpt=card["checkpoint"])
