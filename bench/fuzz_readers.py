"""Fuzz every reader of the project with hypothesis: 8-bit images, TIFF, npy, FITS, pairs.csv,
YAML configs, palette legends (--palette), model cards, and the server's upload path.

    python3 bench/fuzz_readers.py                       # 10,000 cases a reader; writes bench/faults_fuzz.json and FAULTS.md
    python3 bench/fuzz_readers.py --examples 50 --readers npy,fits --out /tmp/f.json

Each case is a file built by a strategy (a valid file of random content and layout, then perhaps
damaged: truncated, bytes flipped or spliced, header fields set to huge or foreign values) and
given to the reader the entry points use. A case passes when the reader returns what it promises
(a float32 array of the asked channels, a config, a card) or raises the project's UserError in one
line; the server's must answer 2xx or 4xx, never 5xx. Anything else fails the campaign: another
exception (a traceback for the user), a case running over --case_seconds (a hang), or memory:
the process runs under an address-space limit of its size after warm-up plus --memory_mb, so a
reader that allocates what a small damaged file's header claims fails with MemoryError instead
of taking the machine. tests/test_fuzz.py runs each reader for a bounded number of cases.
"""
import argparse
import base64
import contextlib
import datetime
import faulthandler
import io
import json
import os
import re
import resource
import shutil
import signal
import struct
import sys
import tempfile
import time
import traceback
import zlib

import numpy as np
from hypothesis import HealthCheck, Phase, given, seed, settings, strategies as st

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from src.utils.errors import UserError  # noqa: E402 (after the path set-up)
from src.utils.files import atomic_write_text  # noqa: E402
from src.utils.progress import progress_bar  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "faults_fuzz.json")
SERVER_MAX_PIXELS = 64 * 64


class Hang(BaseException):
    """Not an Exception: a reader's own `except Exception` must not take a hang for a refusal."""


# ---------------------------------------------------------------- damage
damage = st.one_of(
    st.just(("none",)), st.just(("none",)),  # whole files too: the accepting path is fuzzed as well
    st.tuples(st.just("truncate"), st.floats(0, 1)),
    st.tuples(st.just("flip"), st.lists(st.tuples(st.floats(0, 1), st.integers(1, 255)), min_size=1, max_size=6)),
    st.tuples(st.just("flip head"), st.lists(st.tuples(st.integers(0, 600), st.integers(1, 255)), min_size=1, max_size=6)),
    st.tuples(st.just("splice"), st.floats(0, 1), st.binary(max_size=48)),
)


def damaged(data, how):
    data = bytearray(data)
    kind = how[0]
    if kind == "truncate":
        return bytes(data[: int(len(data) * how[1])])
    if kind in ("flip", "flip head"):
        for where, mask in how[1]:
            index = int(where * (len(data) - 1)) if kind == "flip" else where
            if 0 <= index < len(data):
                data[index] ^= mask
    if kind == "splice":
        at = int(len(data) * how[1])
        data[at:at + len(how[2])] = how[2]
    return bytes(data)


def pixels(draw, shape, dtype):
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    stored = np.dtype(dtype)  # big-endian where FITS or the case asks; drawn in native order
    return _native_pixels(draw, rng, shape, stored.newbyteorder("=")).astype(stored)


def _native_pixels(draw, rng, shape, dtype):
    if dtype.kind == "f":
        values = rng.normal(0, draw(st.sampled_from([1.0, 1e3, 1e30])), shape).astype(dtype)
        special = draw(st.sampled_from([None, np.nan, np.inf, -np.inf]))
        if special is not None and values.size:
            values.flat[rng.integers(0, values.size, max(1, values.size // 7))] = special
        return values
    if dtype.kind == "c":
        return (rng.normal(size=shape) + 1j * rng.normal(size=shape)).astype(dtype)
    if dtype.kind == "b":
        return rng.integers(0, 2, shape).astype(bool)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)


# ---------------------------------------------------------------- 8-bit images
@st.composite
def eight_bit_files(draw):
    from PIL import Image
    height, width = draw(st.integers(1, 40)), draw(st.integers(1, 40))
    image = Image.fromarray(pixels(draw, (height, width, 3), np.uint8))
    image_format = draw(st.sampled_from(["PNG", "JPEG", "BMP", "GIF", "TIFF", "WEBP", "PPM"]))
    mode = draw(st.sampled_from(["RGB", "L", "RGBA", "P", "1", "LA", "I", "I;16", "F", "CMYK", "YCbCr"]))
    buffer = io.BytesIO()
    try:
        image.convert(mode).save(buffer, image_format)
    except (OSError, ValueError, KeyError):
        buffer = io.BytesIO()
        image.save(buffer, image_format)
    data = buffer.getvalue()
    if image_format == "PNG" and draw(st.booleans()):  # a header claiming another size, its CRC valid
        size = struct.pack(">II", draw(st.integers(0, 2 ** 31 - 1)), draw(st.integers(0, 2 ** 31 - 1)))
        chunk = data[12:16] + size + data[24:29]
        data = data[:16] + size + data[24:29] + struct.pack(">I", zlib.crc32(chunk)) + data[33:]
    suffix = {"JPEG": ".jpg", "PPM": ".ppm", "WEBP": ".webp"}.get(image_format, "." + image_format.lower())
    return draw(st.sampled_from([suffix, ".png", ".jpg"])), damaged(data, draw(damage))


def read_eight_bit(path, draw_choice):
    from src.dataset.io import declared_shape, read_ab_image, read_image
    channels = draw_choice(st.sampled_from([1, 3]))
    declared_shape(path, "image")
    if draw_choice(st.booleans()):
        left, right = read_ab_image(path, channels, channels)
        check_hwc(left, channels), check_hwc(right, channels)
    else:
        check_hwc(read_image(path, channels), channels)


def check_hwc(array, channels):
    assert array.dtype == np.float32 and array.ndim == 3 and array.shape[2] == channels, array.shape
    assert np.isfinite(array).all() and array.min() >= 0 and array.max() <= 255


# ---------------------------------------------------------------- TIFF, npy
ARRAY_DTYPES = ["uint8", "int8", "uint16", ">i2", "int32", "uint32", "int64", "float16", "float32", ">f4",
                "float64", "complex64", "bool"]


@st.composite
def tiff_files(draw):
    import tifffile
    shape = tuple(draw(st.lists(st.integers(1, 9), min_size=1, max_size=4)))
    array = pixels(draw, shape, draw(st.sampled_from([d for d in ARRAY_DTYPES if d not in ("float16", "bool")])))
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, compression=draw(st.sampled_from([None, "zlib"])),
                     bigtiff=draw(st.booleans()))
    return ".tif", damaged(buffer.getvalue(), draw(damage))


def read_tiff(path, draw_choice):
    from src.dataset.io import declared_shape, read_array
    declared_shape(path, "tif")
    channels = draw_choice(st.sampled_from([None, 1, 3]))
    check_chw(read_array(path, "tif", channels), channels)


@st.composite
def npy_files(draw):
    kind = draw(st.sampled_from(["image", "image", "array", "array", "object", "structured", "claimed shape"]))
    buffer = io.BytesIO()
    if kind == "image":  # what a user saves: (height, width) or (channels, height, width), any dtype
        shape = (*draw(st.sampled_from([(), (1,), (3,)])), draw(st.integers(1, 12)), draw(st.integers(1, 12)))
        np.lib.format.write_array(buffer, pixels(draw, shape, draw(st.sampled_from(ARRAY_DTYPES))))
    elif kind == "claimed shape":  # a header of any shape over a few bytes of data
        shape = tuple(draw(st.lists(st.integers(0, 2 ** 40), min_size=0, max_size=4)))
        header = repr({"descr": draw(st.sampled_from(["<f4", ">f8", "|u1", "<c8", "|b1", "<U4", "|O"])),
                       "fortran_order": draw(st.booleans()), "shape": shape}).encode()
        header += b" " * ((64 - (len(header) + 11) % 64) % 64) + b"\n"
        buffer.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + draw(st.binary(max_size=64)))
    else:
        shape = tuple(draw(st.lists(st.integers(0, 7), min_size=0, max_size=4)))
        if kind == "object":
            array = np.empty(shape, dtype=object)
        elif kind == "structured":
            array = np.zeros(shape, dtype=[("a", "<i4"), ("b", "<f8")])
        else:
            array = pixels(draw, shape, draw(st.sampled_from(ARRAY_DTYPES)))
            if draw(st.booleans()):
                array = np.asfortranarray(array)
        np.lib.format.write_array(buffer, array, version=draw(st.sampled_from([(1, 0), (2, 0), (3, 0)])),
                                  allow_pickle=True)
    return ".npy", damaged(buffer.getvalue(), draw(damage))


def read_npy(path, draw_choice):
    from src.dataset.io import declared_shape, read_array
    declared_shape(path, "npy")
    channels = draw_choice(st.sampled_from([None, 1, 3]))
    check_chw(read_array(path, "npy", channels), channels)


def check_chw(array, channels):
    assert array.dtype == np.float32 and array.ndim == 3, (array.dtype, array.shape)
    assert channels is None or array.shape[0] == channels, array.shape


# ---------------------------------------------------------------- FITS
BITPIX_DTYPES = {8: "uint8", 16: ">i2", 32: ">i4", 64: ">i8", -32: ">f4", -64: ">f8"}


@st.composite
def fits_image_hdu(draw, primary):
    from astropy.io import fits
    naxis = draw(st.integers(0 if primary else 1, 3))
    shape = tuple(draw(st.lists(st.integers(1, 12), min_size=naxis, max_size=naxis)))
    bitpix = draw(st.sampled_from(sorted(BITPIX_DTYPES)))
    data = pixels(draw, shape, BITPIX_DTYPES[bitpix]) if naxis else None
    hdu = (fits.PrimaryHDU if primary else fits.ImageHDU)(data, do_not_scale_image_data=True)
    if data is not None and bitpix > 0:
        if draw(st.booleans()):
            hdu.header["BLANK"] = draw(st.integers(-2 ** 63, 2 ** 63 - 1))
    for key, values in (("BZERO", [0, 32768, 2 ** 31, 2 ** 63, -128, 1.5, -1e300]),
                        ("BSCALE", [1, 0.5, -2, 0, 1e-300, 1e300])):
        if data is not None and draw(st.booleans()):
            hdu.header[key] = draw(st.sampled_from(values))
    if not primary and draw(st.booleans()):
        hdu.header["EXTNAME"] = draw(st.sampled_from(["SCI", "ERR", "image"]))
    return hdu


@st.composite
def fits_files(draw):
    from astropy.io import fits
    hdus = [draw(fits_image_hdu(True))]
    for extension in draw(st.lists(st.sampled_from(["image", "table", "compressed"]), max_size=2)):
        if extension == "image":
            hdus.append(draw(fits_image_hdu(False)))
        elif extension == "table":
            hdus.append(fits.BinTableHDU.from_columns([fits.Column("x", "E", array=np.arange(3, dtype=np.float32))]))
        else:
            # Only what astropy's encoders take (HCOMPRESS on small or 3-D images aborts the
            # process while writing): the damage comes after, on the written bytes.
            # HCOMPRESS_1 is decoded in a child process (src/dataset/io.py), a second a case: rarer
            compression = draw(st.sampled_from(["RICE_1", "GZIP_1", "GZIP_2", "PLIO_1"] * 4 + ["HCOMPRESS_1"]))
            dims = 2 if compression == "HCOMPRESS_1" else draw(st.integers(2, 3))
            shape = tuple(draw(st.lists(st.integers(4, 16), min_size=dims, max_size=dims)))
            dtype = "int16" if compression in ("HCOMPRESS_1", "PLIO_1") else draw(st.sampled_from(["int16", "int32", "float32"]))
            data = pixels(draw, shape, dtype)
            if compression == "PLIO_1":
                data = (np.abs(data.astype(np.int32)) % 4096).astype(np.int16)
            hdus.append(fits.CompImageHDU(data, compression_type=compression, tile_shape=shape))
    data = _fits_bytes(hdus)
    if draw(st.booleans()):  # a header value made huge, negative or foreign
        key = draw(st.sampled_from([b"NAXIS1", b"NAXIS2", b"NAXIS3", b"NAXIS ", b"BITPIX", b"BLANK ", b"BZERO ",
                                    b"BSCALE", b"ZNAXIS1", b"ZBITPIX", b"PCOUNT", b"GCOUNT"]))
        value = draw(st.sampled_from([b"99999999999", b"-1", b"0", b"7", b"3.5", b"'text'", b"NaN", b"T",
                                      b"999999", b"1e400"]))
        at = data.find(key.ljust(8))
        if at >= 0:
            data = data[:at + 10] + value.rjust(20) + data[at + 30:]
    return draw(st.sampled_from([".fits", ".fits", ".fits.fz"])), damaged(data, draw(damage))


def _fits_bytes(hdus):
    """The written HDUs; an HDU astropy cannot write as drawn (an encoder's limit) is left out."""
    from astropy.io import fits
    for count in range(len(hdus), 0, -1):
        buffer = io.BytesIO()
        try:
            with _quiet_warnings():
                fits.HDUList(hdus[:count]).writeto(buffer, output_verify="silentfix")
            return buffer.getvalue()
        except Exception:  # noqa: BLE001 (astropy's writers raise many types)
            continue
    return b""


@contextlib.contextmanager
def _quiet_warnings():
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def read_fits_file(path, draw_choice):
    from src.config import default_config
    from src.dataset.io import declared_shape, read_array, read_fits_header
    from src.dataset.normalize import side_scaling, to_model
    hdu = draw_choice(st.sampled_from(["auto", "auto", "0", "1", "2", "SCI", "COMPRESSED_IMAGE"]))
    declared_shape(path, "fits", hdu)
    read_fits_header(path, hdu)
    values = read_array(path, "fits", None, hdu)
    check_chw(values, None)
    cfg = default_config(data_format_input="fits", logscale_input=draw_choice(st.booleans()),
                         saturation_lower_limit_input=1.0, saturation_upper_limit_input=1000.0)
    model_values = to_model(values, side_scaling(cfg, "input"))
    assert np.isfinite(model_values).all(), "non-finite values on the network's scale"


# ---------------------------------------------------------------- pairs.csv
cell = st.one_of(st.sampled_from(["A/k.png", "B/k.png", "A/k.png|A/k.png", "", " ", "../x.png", "/abs.png",
                                  "A", "A/missing.png"]), st.text(max_size=12))


@st.composite
def pairs_csv_files(draw):
    import csv
    header = draw(st.one_of(st.sampled_from([["input", "target"]] * 4 + [["key", "input", "target"], ["target", "input"],
                                             ["input"], [], ["input", "target", "input"]]),
                            st.lists(st.text(max_size=8), max_size=4)))
    valid_row = st.builds(lambda i, j: [f"A/k{i}.png" + (f"|A/k{j}.png" if j else ""), f"B/k{i}.png"],
                          st.integers(1, 4), st.integers(0, 4))
    rows = draw(st.lists(st.one_of(valid_row, st.lists(cell, max_size=4)), max_size=6))
    if draw(st.integers(0, 2)) == 0:  # a whole table: the accepting path, with its checks of names
        header, rows = ["input", "target"], draw(st.lists(valid_row, min_size=1, max_size=4))
        return ".csv", ("\n".join(",".join(row) for row in [header, *rows]) + "\n").encode()
    text = io.StringIO()
    writer = csv.writer(text)
    if draw(st.booleans()):
        writer.writerow(header)
        for row in rows:
            writer.writerow(row)
        data = text.getvalue().encode("utf-8")
    else:
        data = ("\n".join(",".join(row) for row in [header, *rows])).encode("utf-8")
    return ".csv", damaged(data, draw(damage))


def read_pairs(path, draw_choice):
    from src.dataset.pairs import read_pairs_csv
    folder = os.path.dirname(path)
    for side in ("A", "B"):
        os.makedirs(os.path.join(folder, side), exist_ok=True)
        for name in ("k.png", "k1.png", "k2.png", "k3.png", "k4.png"):
            with open(os.path.join(folder, side, name), "wb") as handle:
                handle.write(TINY_PNG)
    pairs = read_pairs_csv(path, "--val_data_dir")
    assert isinstance(pairs, list)


# ---------------------------------------------------------------- YAML configs
yaml_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-2 ** 70, 2 ** 70), st.floats(), st.text(max_size=10),
              st.sampled_from(["AtoB", "fits", "batch", "1e3", "none", "True", "-1", "0", "auto", "image"])),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)),
    max_leaves=5)
YAML_SPECIALS = ["a: &x [*x]", "!!python/object/apply:os.system ['true']", "{", "- - -", "%YAML 9.9\n---",
                 "epoch_num: !!binary aGVsbG8=", "? [a, b]\n: c", "lr: .nan", "batch_size: 0x10",
                 "&a [&b [&c [*a]]]", "a: b: c", "\t", "--- |\n  text"]


@st.composite
def yaml_files(draw):
    import yaml
    from src.config import flag_names
    kind = draw(st.sampled_from(["flags", "flags", "special", "text"]))
    if kind == "flags":
        names = st.one_of(st.sampled_from(sorted(flag_names())), st.text(max_size=8))
        document = draw(st.dictionaries(names, yaml_value, max_size=4))
        text = yaml.safe_dump(document, allow_unicode=draw(st.booleans()))
    elif kind == "special":
        text = draw(st.sampled_from(YAML_SPECIALS))
    else:
        text = draw(st.text(max_size=60))
    return ".yaml", damaged(text.encode("utf-8"), draw(damage))


ENTRY_ARGS = {"train": ["--train_data_dir", "unused"], "eval": ["--ckpt", "unused.ckpt", "--val_data_dir", "unused"],
              "export": ["--ckpt", "unused.ckpt"], "predict": ["--ckpt", "unused.ckpt", "--input_dir", "unused"]}


def read_yaml(path, draw_choice):
    from src.config import parse_args
    entry = draw_choice(st.sampled_from(sorted(ENTRY_ARGS)))
    with contextlib.redirect_stderr(io.StringIO()):
        try:
            parse_args(entry, ["--config_path", path, *ENTRY_ARGS[entry]])
        except SystemExit as exit_:  # argparse's usage error: one line after the usage, exit 2
            assert exit_.code == 2, exit_.code


# ---------------------------------------------------------------- palette legends
legend_colour = st.one_of(
    st.builds(lambda rgb: "#%02x%02x%02x" % rgb, st.tuples(*[st.integers(0, 255)] * 3)),
    st.lists(st.integers(-2, 300), min_size=2, max_size=4), st.text(max_size=8), st.none(), st.booleans(),
    st.floats())


@st.composite
def legend_files(draw):
    import yaml
    entries = draw(st.dictionaries(st.one_of(st.text(max_size=10), st.integers()), legend_colour, max_size=8))
    if draw(st.booleans()):
        text = json.dumps({str(name): colour for name, colour in entries.items()}, allow_nan=True)
    else:
        text = yaml.safe_dump(entries, allow_unicode=draw(st.booleans()))
    return draw(st.sampled_from([".yaml", ".json"])), damaged(text.encode("utf-8"), draw(damage))


def read_legend_file(path, draw_choice):
    from src.dataset.palette import HEX_COLOUR, read_legend
    palette = read_legend(path)
    assert palette and all(HEX_COLOUR.match(entry["color"]) and isinstance(entry["name"], str) for entry in palette)


# ---------------------------------------------------------------- model cards
def valid_card():
    from src.config import default_config
    from src.model_card import model_card
    cfg = default_config(file_format="MINDIR", ckpt="Generator_1.ckpt")
    palette = [{"color": "#0000aa", "name": "background"}, {"color": "#00ffff", "name": None}]
    return json.loads(json.dumps(model_card(cfg, None, palette)))


card_value = st.one_of(st.none(), st.booleans(), st.integers(-2 ** 40, 2 ** 40), st.floats(), st.text(max_size=6),
                       st.lists(st.one_of(st.none(), st.integers(-3, 600)), max_size=5), st.builds(dict))


@st.composite
def card_files(draw):
    from src.model_card import card_digest
    card = valid_card()
    for _ in range(draw(st.integers(0, 3))):
        node = card
        path = []
        while isinstance(node, dict) and node and draw(st.booleans()):
            key = draw(st.sampled_from(sorted(node)))
            path.append(key)
            if not isinstance(node[key], dict):
                break
            node = node[key]
        parent = card
        for key in path[:-1]:
            parent = parent[key]
        if path:
            if draw(st.booleans()):
                parent[path[-1]] = draw(card_value)
            else:
                del parent[path[-1]]
        else:
            card = draw(card_value) if draw(st.integers(0, 9)) == 0 else card
    model = draw(st.binary(min_size=1, max_size=32))
    if isinstance(card, dict) and draw(st.booleans()):  # checksums kept valid: the fields themselves tested
        import hashlib
        card["sha256"] = hashlib.sha256(model).hexdigest()
        card["card_sha256"] = card_digest(card)
    text = json.dumps(card).encode()
    return ".mindir", (model, damaged(text, draw(damage)) if draw(st.booleans()) else text)


def read_card(path, draw_choice):
    from src.dataset.normalize import side_scaling
    from src.inference import card_tiling
    from src.model_card import card_config, read_model_card
    from src.config import default_config
    card = read_model_card(path, "--mindir")
    cfg = card_config(card)
    side_scaling(cfg, "input"), side_scaling(cfg, "target")
    card_tiling(card, default_config())


# ---------------------------------------------------------------- the server's upload path
@st.composite
def uploads(draw):
    kind = draw(st.sampled_from(["whole", "image", "image", "tif", "npy", "fits", "bytes"]))
    if kind == "whole":  # a picture the model takes: the answering path, at sizes up to the limit and past it
        return "upload.png", _png(draw(st.integers(1, 80)), draw(st.integers(1, 80)))
    if kind == "bytes":
        suffix, content = ".png", draw(st.binary(max_size=200))
    else:
        suffix, content = draw({"image": eight_bit_files(), "tif": tiff_files(), "npy": npy_files(),
                                "fits": fits_files()}[kind])
    name = draw(st.one_of(st.just("upload"), st.text(max_size=12))) + draw(st.sampled_from([suffix, ".png", ".exe", ""]))
    return name, content


class Server:
    """A tiny exported model behind the app, as serve.py builds it (in-process client)."""

    def __init__(self, folder):
        from fastapi.testclient import TestClient
        from src.config import parse_args
        from src.serve.app import create_app
        from src.serve.model import load_served_model
        sys.path.insert(0, os.path.join(REPO, "tests"))
        from test_serve import TINY, export_tiny
        mindir, _ = export_tiny(folder, TINY)
        cfg = parse_args("serve", ["--mindir", mindir, "--max_pixels", str(SERVER_MAX_PIXELS),
                                   "--max_upload_mb", "1", "--tile_size", "64"])
        self.client = TestClient(create_app(load_served_model(cfg), cfg), raise_server_exceptions=False)
        self.answered = {}

    def post(self, name, content, draw_choice):
        endpoint = draw_choice(st.sampled_from(["/translate", "/translate?format=npy", "/translate?format=fits",
                                                "/preview", "/preview?side=target", "/translate?format=bmp"]))
        response = self.client.post(endpoint, files={"file": (name, content, "application/octet-stream")})
        self.answered[response.status_code] = self.answered.get(response.status_code, 0) + 1
        assert response.status_code < 500, (response.status_code, response.text)
        if response.status_code >= 400:
            detail = response.json().get("detail") or response.json().get("error")
            assert isinstance(detail, str) and detail and "\n" not in detail, response.text
        else:
            width, height = map(int, response.headers.get("x-image-size", "0x0").split("x"))
            assert width * height <= SERVER_MAX_PIXELS


# ---------------------------------------------------------------- the campaign
def _png(height, width):
    from PIL import Image
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (90, 140, 200)).save(buffer, "PNG")
    return buffer.getvalue()


TINY_PNG = _png(32, 32)
READERS = {
    "8-bit image": (eight_bit_files, read_eight_bit),
    "TIFF": (tiff_files, read_tiff),
    "npy": (npy_files, read_npy),
    "FITS": (fits_files, read_fits_file),
    "pairs.csv": (pairs_csv_files, read_pairs),
    "YAML config": (yaml_files, read_yaml),
    "palette legend": (legend_files, read_legend_file),
    "model card": (card_files, read_card),
    "server upload": (uploads, None),
}


@contextlib.contextmanager
def time_limit(seconds):
    def expire(signum, frame):
        raise Hang(f"over {seconds} s")
    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def fuzz(reader, examples, run_seed, case_seconds, memory_mb, work_dir, server=None):
    """Run `examples` cases of `reader`; returns its figures (cases, outcomes, the failure if any)."""
    strategy, read = READERS[reader]
    figures = {"cases": 0, "accepted": 0, "refused (UserError or 4xx)": 0, "failure": None}
    bar = progress_bar(total=examples, desc=reader, unit="case")
    last_case = []  # after a failure: the shrunk case hypothesis ran last

    @seed(run_seed)
    @settings(max_examples=examples, deadline=None, database=None, derandomize=False,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate, Phase.shrink], report_multiple_bugs=False)
    @given(case=strategy(), data=st.data())
    def one_case(case, data):
        suffix, content = case
        last_case[:] = [suffix, content]
        figures["cases"] += 1
        bar.update()
        folder = tempfile.mkdtemp(dir=work_dir)
        try:
            choices = data.draw
            if server is not None:
                with _quiet_warnings(), time_limit(case_seconds), memory_limit(memory_mb):
                    server.post(*case, choices)
                figures["accepted"] += 1
                return
            path = os.path.join(folder, "case" + suffix)
            model, card = content if isinstance(content, tuple) else (content, None)
            with open(path, "wb") as handle:
                handle.write(model)
            if card is not None:
                with open(path + ".json", "wb") as handle:
                    handle.write(card)
            with _quiet_warnings(), time_limit(case_seconds), memory_limit(memory_mb):
                read(path, choices)
            figures["accepted"] += 1
        except UserError as err:
            message = str(err)
            assert message and "\n" not in message.strip(), f"a UserError of several lines: {message!r}"
            figures["refused (UserError or 4xx)"] += 1
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    try:
        with bar:
            one_case()
    except BaseException as err:  # noqa: B036 (a MemoryError, a Hang, an assertion: all are findings)
        if isinstance(err, KeyboardInterrupt):
            raise
        figures["failure"] = f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"[:500]
        figures["failure at"] = [f"{frame.filename}:{frame.lineno} {frame.name}"
                                 for frame in traceback.extract_tb(err.__traceback__)[-4:]]
        figures["failing case"] = failing_case(*last_case) if last_case else None
    if server is not None:
        figures["refused (UserError or 4xx)"] = sum(n for code, n in server.answered.items() if 400 <= code < 500)
        figures["accepted"] = sum(n for code, n in server.answered.items() if code < 400)
        figures["status codes"] = {str(code): n for code, n in sorted(server.answered.items())}
        server.answered.clear()
    return figures


@contextlib.contextmanager
def memory_limit(headroom_mb):
    """An address-space limit of what the process maps now plus `headroom_mb`, for one case: an
    allocation over it raises MemoryError (a finding) instead of taking the machine."""
    with open("/proc/self/status", encoding="ascii") as handle:
        mapped = int(re.search(r"VmSize:\s+(\d+) kB", handle.read()).group(1)) * 1024
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    resource.setrlimit(resource.RLIMIT_AS, (mapped + headroom_mb * (1 << 20), hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def failing_case(suffix, content):
    """The case that failed, to reproduce it: its suffix and bytes (base64; a server case's as drawn)."""
    if isinstance(content, tuple):
        content = content[0]
    if not isinstance(content, bytes):
        return {"suffix": suffix, "case": repr(content)[:2000]}
    return {"suffix": suffix, "bytes base64": base64.b64encode(content[:65536]).decode(),
            "bytes": len(content)}


def write_report(result):
    from faults_report import write_section
    lines = ["## Fuzzed readers (`python3 bench/fuzz_readers.py`)", "",
             f"{result['date']}: hypothesis {result['hypothesis']}, seed {result['seed']}, up to "
             f"{result['examples']:,} cases a reader, each within {result['case seconds']} s and under an "
             f"address-space limit of {result['memory mb']} MB over the warmed-up process "
             f"({result['seconds']:.0f} s in all). The server's cases go to the app as serve.py builds it "
             f"(a tiny exported model, --max_pixels {SERVER_MAX_PIXELS}).", "",
             "| reader | cases | accepted | refused in one line (UserError, or 4xx) | failures |",
             "| --- | --- | --- | --- | --- |"]
    for reader, figures in result["readers"].items():
        lines.append(f"| {reader} | {figures['cases']:,} | {figures['accepted']:,} | "
                     f"{figures['refused (UserError or 4xx)']:,} | {figures['failure'] or 0} |")
    if result.get("reruns"):
        lines += ["", "Run on their own (`--readers`), their rows replacing the campaign's: "
                  + "; ".join(f"{reader} ({why})" for reader, why in result["reruns"].items()) + "."]
    lines += ["", f"**Failures: {sum(bool(f['failure']) for f in result['readers'].values())}.** "
              "What the campaign found while it was built, and the fixes: [docs/faults.md](../docs/faults.md#what-fuzzing-found). "
              "Each reader's figures: [faults_fuzz.json](faults_fuzz.json).", ""]
    write_section("fuzz", lines)


def merged_rerun(rerun, why):
    """The campaign in bench/faults_fuzz.json with the rerun readers' rows replaced."""
    with open(RESULTS, encoding="utf-8") as handle:
        campaign = json.load(handle)
    for reader, figures in rerun["readers"].items():
        campaign["readers"][reader] = figures
        campaign.setdefault("reruns", {})[reader] = why
    return campaign


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--examples", type=int, default=10_000, help="cases a reader (default: %(default)s)")
    parser.add_argument("--readers", default=",".join(READERS),
                        help="comma-separated readers (default: all: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="hypothesis' seed (default: %(default)s)")
    parser.add_argument("--case_seconds", type=float, default=20.0, help="a case running longer is a hang (default: %(default)s)")
    parser.add_argument("--memory_mb", type=int, default=2048,
                        help="address space a case may add to the warmed-up process (default: %(default)s: an 8-bit "
                             "image at the readers' pixel limit, 89.5 million pixels, takes about 1.4 GB)")
    parser.add_argument("--out", default=None, help="results JSON; default bench/faults_fuzz.json and bench/FAULTS.md")
    parser.add_argument("--rerun_because", default=None,
                        help="with --readers: a rerun after a fix: those readers' rows replace theirs in "
                             "bench/faults_fuzz.json (the others kept), with this reason, e.g. 'found a hang'")
    args = parser.parse_args()
    readers = [name.strip() for name in args.readers.split(",") if name.strip()]
    unknown = [name for name in readers if name not in READERS]
    if unknown:
        parser.error(f"--readers: no reader {unknown[0]!r}; the readers are {', '.join(READERS)}")
    faulthandler.enable()  # a crash in a C extension names the Python line that called it
    started = time.time()
    result = {"date": datetime.date.today().isoformat(), "seed": args.seed, "examples": args.examples,
              "case seconds": args.case_seconds, "memory mb": args.memory_mb, "readers": {}}
    with tempfile.TemporaryDirectory(prefix="fuzz_readers_") as work_dir:
        server = Server(work_dir) if "server upload" in readers else None
        if server is not None:  # warm-up: the graph compiled for the sizes the cases use
            server.post("warm.png", TINY_PNG, lambda strategy: "/translate")
            server.answered.clear()
        import hypothesis
        result["hypothesis"] = hypothesis.__version__
        for reader in readers:
            began = time.time()
            figures = fuzz(reader, args.examples, args.seed, args.case_seconds, args.memory_mb, work_dir,
                           server if reader == "server upload" else None)
            figures["seconds"] = round(time.time() - began, 1)
            result["readers"][reader] = figures
            print(f"{reader}: {figures['cases']} cases, {figures['accepted']} accepted, "
                  f"{figures['refused (UserError or 4xx)']} refused, failure: {figures['failure']} "
                  f"({figures['seconds']} s)", flush=True)
    result["seconds"] = time.time() - started
    if args.rerun_because:
        result = merged_rerun(result, args.rerun_because)
    atomic_write_text(args.out or RESULTS, json.dumps(result, indent=1) + "\n")
    if args.out is None:
        write_report(result)
    failures = [reader for reader, figures in result["readers"].items() if figures["failure"]]
    print(f"failures: {len(failures)}" + (f" ({', '.join(failures)})" if failures else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
