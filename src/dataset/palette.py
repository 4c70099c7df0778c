"""The label colours of a label-map model's inputs (facades, cityscapes, map tiles, edges): found in
the training inputs, named by a legend file (--palette), recorded in the generator checkpoint and
the model card, and offered by the served page's drawing canvas.

A training set is a label map when a few colours, give or take JPEG's noise, cover almost all of
its input pixels. Each colour is recorded as the exact value its region holds most often, so that
a drawn input is made of the values the network saw.
"""
import re

import numpy as np
import yaml

from src.dataset.io import EIGHT_BIT_FORMATS
from src.dataset.pairs import data_format, load_physical
from src.utils.errors import UserError

# Up to this many colours make a label map (cityscapes has 34 ids, ADE20K's 150 are out of reach).
MAX_LABELS = 40
# A pixel within this many levels of a label colour in every channel is that label, JPEG's noise
# (strongest at region edges, where chroma subsampling blurs) included.
LABEL_TOLERANCE = 24
# The label colours cover this share of the input pixels within LABEL_TOLERANCE, and this share
# within NEAR levels (JPEG keeps flat regions this close): a photograph does neither.
LABEL_COVERAGE, NEAR, NEAR_COVERAGE = 0.75, 4, 0.4
# A label colour holds at least this share of the pixels exactly, and this share within NEAR levels
# (the blends JPEG makes at region edges are spread over many values, so they hold less).
MIN_LABEL_SHARE, MIN_NEAR_SHARE = 0.0005, 0.003
# ... and most of the pixels around it are near it: a region's colour is one sharp peak, an edge's
# blend a diffuse cloud.
MIN_PURITY = 0.4
# Inputs read to find the colours, evenly spread over the training set.
SAMPLED_INPUTS = 64
HEX_COLOUR = re.compile(r"^#[0-9a-fA-F]{6}$")


def hex_colour(rgb):
    return "#" + "".join(f"{int(value):02x}" for value in rgb)


def find_label_colours(pixels):
    """The label colours (hex, the most frequent first) of uint8 RGB `pixels` (N x 3), or None when a
    few colours do not cover them."""
    packed = (pixels[:, 0].astype(np.int64) << 16) | (pixels[:, 1].astype(np.int64) << 8) | pixels[:, 2]
    values, counts = np.unique(packed, return_counts=True)
    order = np.argsort(-counts, kind="stable")
    values, counts = values[order], counts[order]
    colours = np.stack([(values >> 16) & 255, (values >> 8) & 255, values & 255], axis=1)
    centres = []
    for colour, count in zip(colours, counts):
        if count < MIN_LABEL_SHARE * len(pixels) or len(centres) > MAX_LABELS:
            break
        if centres and np.abs(np.array(centres) - colour).max(axis=1).min() <= LABEL_TOLERANCE:
            continue
        distance = np.abs(colours - colour).max(axis=1)
        near, around = counts[distance <= NEAR].sum(), counts[distance <= LABEL_TOLERANCE].sum()
        if near >= MIN_NEAR_SHARE * len(pixels) and near >= MIN_PURITY * around:
            centres.append(colour)
    if not centres or len(centres) > MAX_LABELS:
        return None
    distance = np.full(len(colours), 255)
    for centre in centres:
        distance = np.minimum(distance, np.abs(colours - centre).max(axis=1))
    if (counts[distance <= LABEL_TOLERANCE].sum() < LABEL_COVERAGE * len(pixels)
            or counts[distance <= NEAR].sum() < NEAR_COVERAGE * len(pixels)):
        return None
    return [hex_colour(colour) for colour in centres]


def training_palette(pairs, cfg, legend=None):
    """The palette train.py records: [{"color": "#rrggbb", "name": ...}], the legend's if one is
    given, else the label colours found in up to SAMPLED_INPUTS of `pairs`' inputs (names None);
    None for inputs that are not 8-bit RGB images or not label maps."""
    if legend:
        return legend
    if data_format(cfg, "input") not in EIGHT_BIT_FORMATS or cfg.input_nc != 3 or not pairs:
        return None
    picked = np.unique(np.linspace(0, len(pairs) - 1, min(SAMPLED_INPUTS, len(pairs))).astype(int))
    pixels = np.concatenate([load_physical(pairs[i], cfg)[0].reshape(3, -1).T for i in picked])
    colours = find_label_colours(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    return [{"color": colour, "name": None} for colour in colours] if colours else None


def read_legend(path, flag="--palette"):
    """A legend file (YAML or JSON): a mapping of label name to colour, "#rrggbb" or [r, g, b], in
    the order the page lists them (the first is the eraser's); as a palette."""
    try:
        with open(path, encoding="utf-8") as handle:
            entries = yaml.safe_load(handle)
    except FileNotFoundError:
        raise UserError(f"{flag} {path}: no such file") from None
    except (OSError, ValueError, yaml.YAMLError) as err:  # ValueError: not UTF-8, or an escape beyond Unicode
        raise UserError(f"{flag} {path}: not a readable YAML or JSON legend ({type(err).__name__})") from None
    if not isinstance(entries, dict) or not entries:
        raise UserError(f"{flag} {path}: a legend maps label names to colours, e.g. `wall: \"#0000ff\"`")
    return [{"color": _legend_colour(value, name, path, flag), "name": str(name)} for name, value in entries.items()]


def _legend_colour(value, name, path, flag):
    if isinstance(value, str) and HEX_COLOUR.match(value):
        return value.lower()
    if (isinstance(value, list) and len(value) == 3
            and all(isinstance(part, int) and not isinstance(part, bool) and 0 <= part <= 255 for part in value)):
        return hex_colour(value)
    raise UserError(f"{flag} {path}: label {name!r} has colour {value!r}; give \"#rrggbb\" or [r, g, b] in 0..255")


def checked_palette(palette, source):
    """`palette` as read from a checkpoint or a model card: None, or a list of {"color", "name"};
    anything else is a UserError naming `source`."""
    if palette is None:
        return None
    well_formed = isinstance(palette, list) and 0 < len(palette) <= 256 and all(
        isinstance(entry, dict) and set(entry) == {"color", "name"} and isinstance(entry["color"], str)
        and HEX_COLOUR.match(entry["color"]) and (entry["name"] is None or isinstance(entry["name"], str))
        for entry in palette)
    if not well_formed:
        raise UserError(f"{source}: its input palette is not a list of {{color: \"#rrggbb\", name}} entries")
    return palette

