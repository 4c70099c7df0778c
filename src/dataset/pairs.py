"""Finding the (input, target) pairs of a data folder and loading one pair, normalised.

Layouts: a folder of aligned AB images (the facades/maps format: input and target side by side).
"""
import os
from dataclasses import dataclass
from typing import Optional

from src.dataset.io import is_image_file, read_ab_image
from src.dataset.normalize import image_to_model
from src.utils.errors import UserError


@dataclass(frozen=True)
class Pair:
    """One sample: its name (predictions keep it) and where its input and target are read from."""
    name: str
    input_path: str
    target_path: Optional[str]
    layout: str  # "AB": input and target are the two halves of input_path


def find_pairs(data_dir, flag="--train_data_dir"):
    """All pairs under `data_dir`, sorted by name; UserError if there are none."""
    if not data_dir:
        raise UserError(f"{flag} is required")
    if not os.path.isdir(data_dir):
        raise UserError(f"{flag} {data_dir}: no such folder")
    names = sorted(name for name in os.listdir(data_dir)
                   if is_image_file(name) and os.path.isfile(os.path.join(data_dir, name)))
    if not names:
        raise UserError(f"{flag} {data_dir}: no AB images (.jpg, .png, ...) in this folder")
    return [Pair(name, os.path.join(data_dir, name), os.path.join(data_dir, name), "AB")
            for name in names]


def load_pair(pair, cfg):
    """(input, target) as float32 CHW arrays in [-1, 1], input/target chosen by cfg.direction."""
    if cfg.direction == "AtoB":
        source, target = read_ab_image(pair.input_path, cfg.input_nc, cfg.output_nc)
    else:
        target, source = read_ab_image(pair.input_path, cfg.output_nc, cfg.input_nc)
    return image_to_model(source), image_to_model(target)
