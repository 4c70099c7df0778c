"""Finding the (input, target) pairs of a data folder, loading one pair normalised, and writing
a prediction back in the target's format and units.

Layouts, detected from what is there: a `pairs.csv` (columns input,target; paths relative to
the CSV), `input/` and `target/` subfolders paired by identical file names, or a folder of
aligned AB images (the facades/maps format: input and target side by side). "input" and
"target" in the format and normalisation flags are the network's input and target, after
--direction.
"""
import csv
import os
from dataclasses import dataclass
from typing import Optional

import numpy as np

from src.dataset.io import (EIGHT_BIT_FORMATS, OUTPUT_EXTENSIONS, has_format, is_image_file,
                            read_ab_image, read_fits_header, read_stack, stem, write_array, write_fits,
                            write_image)
from src.dataset.normalize import EIGHT_BIT, missing_mask, side_scaling, to_model, to_physical
from src.dataset.transforms import resize_chw
from src.utils.errors import UserError
from src.utils.report import write_science_figure

# The flags that decide how a sample is read and normalised (beyond channels and size); export
# records them in the model card so that inference outside train/eval reads data identically.
DATA_FLAGS = ("direction", "data_format_input", "data_format_target", "fits_hdu",
              *(f"{name}_{side}" for side in ("input", "target")
                for name in ("logscale", "saturation_lower_limit", "saturation_upper_limit",
                             "saturation_clip", "nan_fill")),
              "target_unit", "fits_mean_channels", "lead_time")
PAIRS_CSV = "pairs.csv"
# In a pairs.csv input cell, several files of one time whose channels are stacked: a.fits;b.fits
INPUT_SEPARATOR = ";"


def data_format(cfg, side):
    return getattr(cfg, f"data_format_{side}")


@dataclass(frozen=True)
class Pair:
    """One sample: its name (predictions keep it) and where its input and target are read from."""
    name: str
    input_path: str
    target_path: Optional[str]
    layout: str  # "AB": both halves of input_path; "folders": two files; "input": no target
    extra_inputs: tuple = ()  # further files whose channels follow input_path's (pairs.csv)

    @property
    def input_files(self):
        return (self.input_path, *self.extra_inputs)


def find_pairs(data_dir, flag, cfg):
    """All pairs under `data_dir` (given as `flag`), read as `cfg`'s data flags say, sorted by
    name; UserError if there are none."""
    if not data_dir:
        raise UserError(f"{flag} is required")
    if not os.path.isdir(data_dir):
        raise UserError(f"{flag} {data_dir}: no such folder")
    if os.path.isfile(os.path.join(data_dir, PAIRS_CSV)):
        return read_pairs_csv(os.path.join(data_dir, PAIRS_CSV), flag)
    if os.path.isdir(os.path.join(data_dir, "input")) and os.path.isdir(os.path.join(data_dir, "target")):
        return _folder_pairs(data_dir, flag, cfg)
    if not {data_format(cfg, "input"), data_format(cfg, "target")} <= set(EIGHT_BIT_FORMATS):
        raise UserError(f"{flag} {data_dir}: {data_format(cfg, 'input')}/{data_format(cfg, 'target')} data "
                        f"need input/ and target/ subfolders or a {PAIRS_CSV}; AB images are 8-bit only")
    names = sorted(name for name in os.listdir(data_dir)
                   if is_image_file(name) and os.path.isfile(os.path.join(data_dir, name)))
    if not names:
        raise UserError(f"{flag} {data_dir}: no AB images (.jpg, .png, ...), no input/ and target/ "
                        f"subfolders and no {PAIRS_CSV} in this folder")
    return [Pair(name, os.path.join(data_dir, name), os.path.join(data_dir, name), "AB")
            for name in names]


def _shortened(value, limit=80):
    """repr(value) cut to `limit` characters: a damaged file's header can be a megabyte of NULs."""
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + f"... ({len(text)} characters)"


def read_pairs_csv(path, flag="--train_data_dir"):
    """Pairs listed in a CSV with columns input,target (paths relative to the CSV)."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            if not reader.fieldnames or not {"input", "target"} <= set(reader.fieldnames):
                raise UserError(f"{flag}: {path} needs the columns input,target; its header is "
                                f"{_shortened(reader.fieldnames)}")
            rows = list(reader)
    except FileNotFoundError:
        raise UserError(f"{flag} {path}: no such file") from None
    except (UnicodeDecodeError, csv.Error) as err:
        raise UserError(f"{flag} {path}: not a readable CSV ({err})") from None
    pairs, names = [], set()
    for number, row in enumerate(rows, 2):
        if not row["input"] or not row["target"]:
            raise UserError(f"{path}:{number}: an input and a target path are needed, got {_shortened(row)}")
        input_paths = [os.path.join(folder, file.strip()) for file in row["input"].split(INPUT_SEPARATOR)]
        target_path = os.path.join(folder, row["target"])
        for file in (*input_paths, target_path):
            if not os.path.isfile(file):
                raise UserError(f"{path}:{number}: {file}: no such file")
        input_path = input_paths[0]
        name = os.path.basename(input_path)
        if name in names:
            raise UserError(f"{path}:{number}: a second input named {name}; predictions are named by "
                            "the input, rename one")
        names.add(name)
        pairs.append(Pair(name, input_path, target_path, "folders", tuple(input_paths[1:])))
    if not pairs:
        raise UserError(f"{flag}: {path} lists no pairs")
    return sorted(pairs, key=lambda pair: pair.name)


def _files_in(folder, data_format_name):
    accept = (lambda name: has_format(name, data_format_name)) if data_format_name != "image" else is_image_file
    return sorted(name for name in os.listdir(folder)
                  if accept(name) and os.path.isfile(os.path.join(folder, name)))


def _folder_pairs(data_dir, flag, cfg):
    """input/NAME paired with target/NAME by file name without its extension (so that a.fits
    pairs with a.npy when the two sides have different formats); a file without its partner,
    or two files of one name, is an error naming it."""
    sides = ("input", "target") if cfg.direction == "AtoB" else ("target", "input")
    formats = {folder: data_format(cfg, side) for folder, side in zip(("input", "target"), sides)}
    by_stem = {}
    for folder in ("input", "target"):
        files = _files_in(os.path.join(data_dir, folder), formats[folder])
        by_stem[folder] = {stem(name): name for name in files}
        if len(by_stem[folder]) < len(files):
            twins = sorted(set(files) - set(by_stem[folder].values()))
            raise UserError(f"{flag} {data_dir}: {folder}/{twins[0]} has the same name as another file "
                            "there but for its extension; keep one")
    inputs, targets = by_stem["input"], by_stem["target"]
    for side, missing in (("target", sorted(set(inputs) - set(targets))),
                          ("input", sorted(set(targets) - set(inputs)))):
        if missing:
            example = (inputs if side == "target" else targets)[missing[0]]
            raise UserError(f"{flag} {data_dir}: {len(missing)} file(s) have no partner in {side}/, "
                            f"e.g. {example}")
    if not inputs:
        raise UserError(f"{flag} {data_dir}: input/ and target/ hold no {formats['input']} files")
    return [Pair(inputs[key], os.path.join(data_dir, "input", inputs[key]),
                 os.path.join(data_dir, "target", targets[key]), "folders") for key in sorted(inputs)]


def find_inputs(data_dir, flag, cfg):
    """Every input file of a folder (given as `flag`), without targets (for translating new data)."""
    if not os.path.isdir(data_dir or ""):
        raise UserError(f"{flag} {data_dir}: no such folder")
    names = _files_in(data_dir, data_format(cfg, "input"))
    if not names:
        raise UserError(f"{flag} {data_dir}: no {data_format(cfg, 'input')} files in this folder")
    return [Pair(name, os.path.join(data_dir, name), None, "input") for name in names]


def _ordered_files(pair, cfg):
    """(network input files, target files) of a two-file pair, after --direction."""
    if cfg.direction == "AtoB":
        return pair.input_files, (pair.target_path,)
    return (pair.target_path,), pair.input_files


def _ordered(pair, cfg):
    """(network input file, target file) of a two-file pair, after --direction (the first of
    several stacked files: the one whose header and name stand for them)."""
    first, second = _ordered_files(pair, cfg)
    return first[0], second[0]


def read_side(paths, cfg, side):
    """One side of a pair in its own units (float32 CHW), read as its format says, from one
    file or several stacked as channels."""
    channels = cfg.input_nc if side == "input" else cfg.output_nc
    return read_stack(paths, data_format(cfg, side), channels, cfg.fits_hdu)


def load_physical(pair, cfg):
    """(input, target) in their own units (target None for an input without one)."""
    if pair.layout == "input":
        return read_side(pair.input_files, cfg, "input"), None
    if pair.layout == "AB":
        left, right = (cfg.input_nc, cfg.output_nc)[::1 if cfg.direction == "AtoB" else -1]
        halves = [np.ascontiguousarray(np.transpose(half, (2, 0, 1)))
                  for half in read_ab_image(pair.input_path, left, right)]
        return tuple(halves) if cfg.direction == "AtoB" else tuple(halves[::-1])
    first, second = _ordered_files(pair, cfg)
    return read_side(first, cfg, "input"), read_side(second, cfg, "target")


def load_pair(pair, cfg, missing_as_nan=False):
    """(input, target) as float32 CHW arrays on the network's scale, input/target chosen by
    cfg.direction; target is None for an input without one. With `missing_as_nan`, the
    target's missing pixels are NaN instead of its fill value (the training step fills them
    and leaves them out of the CC loss)."""
    source, target = load_physical(pair, cfg)
    source = to_model(source, side_scaling(cfg, "input"))
    if target is None:
        return source, None
    scaling = side_scaling(cfg, "target")
    normalised = to_model(target, scaling)
    if missing_as_nan:
        normalised[missing_mask(target, scaling)] = np.nan
    return source, normalised


def check_same_size(pair, source_shape, target_shape):
    """A pair's input and target must cover the same pixels (CHW or (height, width) shapes)."""
    (source_height, source_width), (target_height, target_width) = source_shape[-2:], target_shape[-2:]
    if (source_height, source_width) != (target_height, target_width):
        raise UserError(f"{pair.name}: input is {source_width}x{source_height}, target "
                        f"{target_width}x{target_height}; a pair must be the same size")


def load_input(pair, cfg):
    """The network's input alone, at its own size, on the network's scale (CHW float32)."""
    if pair.layout == "AB":
        physical = load_physical(pair, cfg)[0]
    else:
        physical = read_side(pair.input_files if pair.layout == "input" else _ordered_files(pair, cfg)[0],
                             cfg, "input")
    return to_model(physical, side_scaling(cfg, "input"))


def prediction_name(pair, cfg, output_format=None):
    """The input's file name, with the output format's extension (by default the target's;
    8-bit images of format "image" keep the input's own)."""
    output_format = output_format or data_format(cfg, "target")
    if output_format == "image":
        return pair.name
    return stem(pair.name) + OUTPUT_EXTENSIONS[output_format]


def write_prediction(pair, prediction, predict_dir, cfg, original_size, output_format=None, preview=True):
    """Write a CHW prediction (network scale) at the input's original size, named like the input,
    in the target's format (or `output_format`): 8-bit images as such; npy/tif/FITS in physical
    units, FITS with the header of `prediction_header`, with a PNG preview beside them unless
    `preview` is False. An array model's prediction asked for as an 8-bit image shows the
    network's scale [-1, 1] as 0..255.

    Returns (path written, the prediction resized to original size, still normalised), so that
    metrics are computed on exactly what was written.
    """
    restored = resize_chw(np.asarray(prediction, np.float32), tuple(original_size))
    os.makedirs(predict_dir, exist_ok=True)
    output_format = output_format or data_format(cfg, "target")
    path = os.path.join(predict_dir, prediction_name(pair, cfg, output_format))
    scaling = side_scaling(cfg, "target")
    physical = to_physical(restored, scaling)
    if output_format in EIGHT_BIT_FORMATS:
        pixels = physical if data_format(cfg, "target") in EIGHT_BIT_FORMATS else to_physical(restored, EIGHT_BIT)
        write_image(path, np.transpose(np.rint(np.clip(pixels, 0, 255)), (1, 2, 0)).astype(np.uint8))
        return path, restored
    unit = cfg.target_unit
    if output_format == "fits":
        if cfg.fits_mean_channels:
            physical = physical.mean(axis=0, keepdims=True)
        header = prediction_header(pair, cfg)
        unit = header.get("BUNIT")
        write_fits(path, physical, header)
    else:
        write_array(path, physical, output_format)
    if preview:
        write_science_figure(os.path.join(predict_dir, stem(os.path.basename(path)) + ".png"),
                             [(os.path.basename(path), physical.mean(axis=0), scaling, unit)])
    return path, restored


def prediction_header(pair, cfg):
    """The header of a FITS prediction (src/dataset/fits_header.py): geometry of a FITS input,
    instrument keywords and time of a FITS target when there is one, provenance."""
    from src.dataset.fits_header import prediction_header as build
    input_path, target_path = side_paths(pair, cfg)
    input_header, target_header = (side_header(path, cfg, side) for path, side in
                                   ((input_path, "input"), (target_path, "target")))
    return build(cfg, input_header, target_header, os.path.basename(input_path),
                 target_path and os.path.basename(target_path))


def side_paths(pair, cfg):
    """(network input file, target file or None) of a pair; for AB images, the image and None."""
    if pair.layout in ("input", "AB"):
        return pair.input_path, None
    return _ordered(pair, cfg)


def side_header(path, cfg, side):
    """The FITS header of one side's file, or None when it is not FITS (or there is none)."""
    if path is None or data_format(cfg, side) != "fits":
        return None
    return read_fits_header(path, cfg.fits_hdu)


def side_unit(path, cfg, side):
    """The physical unit of one side: --target_unit for the target, else the file's BUNIT."""
    if side == "target" and cfg.target_unit:
        return cfg.target_unit
    header = side_header(path, cfg, side)
    return None if header is None else header.get("BUNIT")


def load_target(pair, cfg):
    """The target alone, in its own units (None for an input without one): what eval scores
    against, read once for both the network-scale and the physical metrics."""
    if pair.target_path is None:
        return None
    if pair.layout == "AB":
        return load_physical(pair, cfg)[1]
    return read_side(_ordered_files(pair, cfg)[1], cfg, "target")
