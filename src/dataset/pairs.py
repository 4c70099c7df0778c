"""Finding the (input, target) pairs of a data folder and loading one pair, normalised.

Layouts: a folder of aligned AB images (the facades/maps format: input and target side by side),
or a folder with `input/` and `target/` subfolders whose images are paired by file name.
"""
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from src.dataset.io import is_image_file, read_ab_image, read_image, write_image
from src.dataset.normalize import image_to_model, model_to_image
from src.dataset.transforms import resize_chw
from src.utils.errors import UserError


# The flags that decide how a sample is read and normalised (beyond channels and size); export
# records them in the model card so that inference outside train/eval reads data identically.
DATA_FLAGS = ("direction",)


@dataclass(frozen=True)
class Pair:
    """One sample: its name (predictions keep it) and where its input and target are read from."""
    name: str
    input_path: str
    target_path: Optional[str]
    layout: str  # "AB": both halves of input_path; "folders": two files; "input": no target


def find_pairs(data_dir, flag="--train_data_dir"):
    """All pairs under `data_dir`, sorted by name; UserError if there are none."""
    if not data_dir:
        raise UserError(f"{flag} is required")
    if not os.path.isdir(data_dir):
        raise UserError(f"{flag} {data_dir}: no such folder")
    if os.path.isdir(os.path.join(data_dir, "input")) and os.path.isdir(os.path.join(data_dir, "target")):
        return _folder_pairs(data_dir, flag)
    names = sorted(name for name in os.listdir(data_dir)
                   if is_image_file(name) and os.path.isfile(os.path.join(data_dir, name)))
    if not names:
        raise UserError(f"{flag} {data_dir}: no AB images (.jpg, .png, ...) in this folder")
    return [Pair(name, os.path.join(data_dir, name), os.path.join(data_dir, name), "AB")
            for name in names]


def _images_in(folder):
    return sorted(name for name in os.listdir(folder)
                  if is_image_file(name) and os.path.isfile(os.path.join(folder, name)))


def _folder_pairs(data_dir, flag):
    """input/NAME paired with target/NAME; a file without its partner is an error naming it."""
    inputs, targets = (_images_in(os.path.join(data_dir, side)) for side in ("input", "target"))
    for side, missing in (("target", sorted(set(inputs) - set(targets))),
                          ("input", sorted(set(targets) - set(inputs)))):
        if missing:
            raise UserError(f"{flag} {data_dir}: {len(missing)} file(s) have no partner in {side}/, "
                            f"e.g. {missing[0]}")
    if not inputs:
        raise UserError(f"{flag} {data_dir}: input/ and target/ hold no images")
    return [Pair(name, os.path.join(data_dir, "input", name), os.path.join(data_dir, "target", name),
                 "folders") for name in inputs]


def find_inputs(data_dir, flag="--input_dir"):
    """Every image of a folder as an input without a target (for translating new images)."""
    if not os.path.isdir(data_dir or ""):
        raise UserError(f"{flag} {data_dir}: no such folder")
    names = sorted(name for name in os.listdir(data_dir) if is_image_file(name))
    if not names:
        raise UserError(f"{flag} {data_dir}: no images (.jpg, .png, ...) in this folder")
    return [Pair(name, os.path.join(data_dir, name), None, "input") for name in names]


def load_pair(pair, cfg):
    """(input, target) as float32 CHW arrays in [-1, 1], input/target chosen by cfg.direction;
    target is None for an input without one."""
    if pair.layout == "input":
        return image_to_model(read_image(pair.input_path, cfg.input_nc)), None
    if pair.layout == "folders":
        first, second = (pair.input_path, pair.target_path)[::1 if cfg.direction == "AtoB" else -1]
        return (image_to_model(read_image(first, cfg.input_nc)),
                image_to_model(read_image(second, cfg.output_nc)))
    if cfg.direction == "AtoB":
        source, target = read_ab_image(pair.input_path, cfg.input_nc, cfg.output_nc)
    else:
        target, source = read_ab_image(pair.input_path, cfg.output_nc, cfg.input_nc)
    return image_to_model(source), image_to_model(target)


def load_eval_pair(pair, cfg):
    """For evaluation: (input resized to the model's size, target at its own size or None,
    the input's original (height, width)). Both in [-1, 1], CHW float32."""
    source, target = load_pair(pair, cfg)
    original_size = source.shape[1:]
    return resize_chw(source, cfg.crop_size), target, original_size


def write_prediction(pair, prediction, predict_dir, cfg, original_size):
    """Write a CHW prediction in [-1, 1] at the input's original size, named like the input.

    Returns (path written, the prediction resized to original size, still normalised), so that
    metrics are computed on exactly what was written.
    """
    restored = resize_chw(np.asarray(prediction, np.float32), tuple(original_size))
    os.makedirs(predict_dir, exist_ok=True)
    path = os.path.join(predict_dir, pair.name)
    write_image(path, model_to_image(restored))
    return path, restored
