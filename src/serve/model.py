"""The served model: an exported MINDIR or ONNX file with its model card (or a generator checkpoint), and one
uploaded file translated exactly as predict.py translates a file of its --input_dir.

An upload is saved under its own (sanitised) name in a private temporary folder, so that the
project's readers, its native-size/tiled inference and its writers see what they see in
predict.py: same decoding, normalisation from the card, tiles, output format and FITS header.
MindSpore's graph calls are serialised by one lock (a GraphCell is not known to be thread-safe);
reading, normalising and writing files run concurrently around them.
"""
import contextlib
import io
import math
import os
import re
import shutil
import tempfile
import threading
from dataclasses import dataclass, field
from functools import cached_property

import mindspore
import numpy as np
from PIL import Image

from src import checkpoint
from src.config import parse_args
from src.dataset.io import (EIGHT_BIT_FORMATS, FORMAT_EXTENSIONS, declared_shape, has_format, is_image_file, read_array,
                            read_image, write_image)
from src.dataset.normalize import model_to_image, side_scaling, to_model
from src.dataset.palette import read_legend
from src.dataset.pairs import Pair, data_format, write_prediction
from src.exported_model import exported_model
from src.inference import card_tiling, network_forward, predictions
from src.model_card import card_config, model_card
from src.models import registry
from src.trained_generator import load_generator, resolve_checkpoint_flags
from src.utils.errors import UserError

# What /translate can return; `image` and `jpg` targets are served as lossless PNG.
OUTPUT_FORMATS = ("png", "fits", "npy", "tif")
MEDIA_TYPES = {"png": "image/png", "fits": "application/fits", "npy": "application/octet-stream",
               "tif": "image/tiff"}


# Why an upload was refused, by HTTP status (the rejected-uploads metric's reason).
REASONS = {400: "empty", 413: "too_large", 415: "unsupported_type", 422: "unreadable"}


class UploadError(UserError):
    """A bad upload, with the HTTP status that says why (415: a file type the model does not
    read, 400: empty, 413: too large; other UserErrors are 422: the file is unreadable or does
    not fit the model) and a short reason for the metrics."""

    def __init__(self, message, status, reason=None):
        super().__init__(message)
        self.status, self.reason = status, reason or REASONS.get(status, f"status_{status}")


def safe_name(filename):
    """A file name that is safe to create: the upload's base name with anything but letters,
    digits, `.`, `_` and `-` replaced, no leading dot, at most 120 characters (kept from the
    end, with the extension)."""
    base = os.path.basename((filename or "").replace("\\", "/"))
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")
    return cleaned[-120:] or "upload"


@dataclass
class ServedModel:
    card: dict
    source: str  # the MINDIR or checkpoint served
    kind: str  # "mindir", "onnx" or "checkpoint"
    forward: object  # NCHW batch -> NCHW output; calls are serialised
    batch_size: int
    tiling: object
    runtime: str  # what runs the graph: MindSpore, or onnxruntime and its execution provider
    examples: dict = field(default_factory=dict)  # --examples: file name -> path, for the drawing canvas

    @cached_property
    def data_cfg(self):
        return card_config(self.card)

    def side_format(self, side):
        return data_format(self.data_cfg, side)

    @property
    def default_format(self):
        """The card's target format; 8-bit images as PNG."""
        target = self.side_format("target")
        return "png" if target in EIGHT_BIT_FORMATS else target

    @property
    def output_formats(self):
        """Every format of OUTPUT_FORMATS this model's output can be written in (PNG needs 1 or 3
        channels)."""
        pictures = self.card["output_nc"] in (1, 3)
        return tuple(name for name in OUTPUT_FORMATS if name != "png" or pictures)

    def input_extensions(self, side="input"):
        return FORMAT_EXTENSIONS[self.side_format(side)]

    def check_upload(self, name, content, limit_bytes, side="input", side_format=None):
        """An UploadError for an upload this model cannot take as `side` in `side_format`."""
        side_format = side_format or self.side_format(side)
        readable = is_image_file(name) if side_format == "image" else has_format(name, side_format)
        if not readable:
            raise UploadError(f"{name}: this model reads {side_format} files "
                              f"({', '.join(FORMAT_EXTENSIONS[side_format])}) as its {side}", 415)
        if not content:
            raise UploadError(f"{name}: empty upload (0 bytes)", 400)
        if len(content) > limit_bytes:
            raise UploadError(f"{name}: {len(content) / 1e6:.1f} MB, over this server's limit of "
                              f"{limit_bytes / 1e6:g} MB (--max_upload_mb)", 413)

    def check_pixels(self, name, content, max_pixels, side="input", side_format=None):
        """An UploadError (413) for an upload whose header declares more than `max_pixels` pixels
        (arrays: values over the model's channels), read without decoding the file."""
        side_format = side_format or self.side_format(side)
        shape = declared_shape(io.BytesIO(content), side_format, self.data_cfg.fits_hdu)
        if not shape:
            return  # the reader will say what is wrong with the file
        if side_format in EIGHT_BIT_FORMATS:
            pixels, size = shape[0] * shape[1], f"{shape[1]}x{shape[0]} pixels"
        else:
            channels = self.card["input_shape"][1] if side == "input" else self.card["output_nc"]
            pixels = math.prod(shape) // (channels if len(shape) > 2 else 1)
            size = f"an array of {'x'.join(map(str, shape))}"
        if pixels > max_pixels:
            raise UploadError(f"{name}: {size} ({pixels:,} pixels), over this server's limit of "
                              f"{max_pixels:,} pixels (--max_pixels)", 413, "too_many_pixels")

    def example_png(self, name):
        """PNG bytes of the --examples file `name` as this model reads it (its channels); None for
        a name that is not one of them."""
        path = self.examples.get(name)
        if path is None:
            return None
        pixels = read_image(path, self.data_cfg.input_nc).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(buffer, "PNG")
        return buffer.getvalue()

    def translate(self, name, content, output_format, before_batch=None):
        """(bytes of the translation in `output_format`, its file name, (width, height)) of an
        uploaded file's `content`: predict.py's reading, inference and writing; `before_batch`
        as in src.inference.forward_batched (a time budget raises there)."""
        cfg = self.data_cfg
        with saved_upload(name, content) as (folder, path):
            pair = Pair(name, path, None, "input")
            ((_, _, prediction, size),) = predictions([pair], cfg, self.forward, self.batch_size, self.tiling,
                                                      before_batch)
            written, _ = write_prediction(pair, prediction, os.path.join(folder, "out"), cfg, size,
                                          output_format, preview=False)
            with open(written, "rb") as handle:
                return handle.read(), os.path.basename(written), (int(size[1]), int(size[0]))

    def preview(self, name, content, side, side_format=None):
        """PNG bytes of an uploaded file as the network sees `side` (read in `side_format`, the
        card's by default, normalised by the card): [-1, 1] as 0..255, grey unless the file has
        three channels. For showing FITS, npy and TIFF data in a browser."""
        cfg = self.data_cfg
        side_format = side_format or self.side_format(side)
        channels = (cfg.input_nc if side == "input" else cfg.output_nc) if side_format in EIGHT_BIT_FORMATS else None
        with saved_upload(name, content) as (folder, path):
            values = to_model(read_array(path, side_format, channels, cfg.fits_hdu),
                              side_scaling(cfg, side))
            if values.shape[0] not in (1, 3):
                values = values.mean(axis=0, keepdims=True)
            picture = os.path.join(folder, "preview.png")
            write_image(picture, model_to_image(values))
            with open(picture, "rb") as handle:
                return handle.read()


@contextlib.contextmanager
def saved_upload(name, content):
    """`with saved_upload(name, content) as (folder, path)`: the upload as `folder/name` in a
    fresh private folder, removed afterwards; a UserError raised inside names the upload, not
    the folder."""
    folder = tempfile.mkdtemp(prefix="p2p_serve_")
    try:
        path = os.path.join(folder, name)
        with open(path, "wb") as handle:
            handle.write(content)
        yield folder, path
    except UserError as err:
        if folder not in str(err):
            raise
        raise UserError(str(err).replace(folder + os.sep, "").replace(folder, "")) from None
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def serialised(forward):
    """`forward` behind a lock: one graph call at a time, whichever thread calls."""
    lock = threading.Lock()

    def locked(batch):
        with lock:
            return forward(batch)
    return locked


def load_served_model(cfg):
    """The ServedModel of --mindir, --onnx or --ckpt; what cannot be served is a one-line UserError."""
    legend = read_legend(cfg.palette) if cfg.palette else None  # before the model's seconds of loading
    if cfg.mindir or cfg.onnx:
        model = exported_model(cfg)
        card, forward, batch_size, runtime = model.card, model.forward, model.batch_size, model.runtime
        source, kind = (cfg.onnx, "onnx") if cfg.onnx else (cfg.mindir, "mindir")
    else:
        card, netG = _checkpoint_generator(cfg.ckpt)
        batch_size, forward, source, kind = 1, network_forward(netG), cfg.ckpt, "checkpoint"
        runtime = f"MindSpore {mindspore.__version__} ({cfg.device_target})"
    if legend:
        card = {**card, "input_palette": legend}
    return ServedModel(card, os.path.abspath(source), kind, serialised(forward), batch_size, card_tiling(card, cfg),
                       runtime, example_inputs(cfg.examples, card))


def example_inputs(folder, card):
    """{file name: path} of the 8-bit images in --examples `folder` (none without the flag); a
    folder that is missing, or holds none, or given for a model that reads no images, is a UserError."""
    if not folder:
        return {}
    if not os.path.isdir(folder):
        raise UserError(f"--examples {folder}: no such folder")
    input_format = data_format(card_config(card), "input")
    if input_format not in EIGHT_BIT_FORMATS:
        raise UserError(f"--examples {folder}: the drawing canvas takes 8-bit images, and this model reads "
                        f"{input_format} files")
    names = sorted(name for name in os.listdir(folder) if is_image_file(name) and not name.startswith("."))
    if not names:
        raise UserError(f"--examples {folder}: no images ({', '.join(FORMAT_EXTENSIONS['image'])}) in it")
    return {name: os.path.join(folder, name) for name in names}


def _checkpoint_generator(path):
    """(model card, generator in inference mode) of a checkpoint that records its training flags."""
    export_cfg = parse_args("export", ["--ckpt", path])
    if checkpoint.read_recorded_config(path) is None:
        raise UserError(f"--ckpt {path} records no training flags (written before checkpoints did): "
                        "export it with export.py and its flags, then serve the MINDIR with --mindir")
    export_cfg = resolve_checkpoint_flags(export_cfg)
    registry.check_model_config(export_cfg)
    return model_card(export_cfg, None, checkpoint.read_recorded_palette(path)), load_generator(export_cfg)
