"""Every reader fuzzed with hypothesis (a bounded run of bench/fuzz_readers.py, which runs the
long campaign), and what the campaign found, each as a case of its own."""
import json
import os
import struct
import subprocess
import sys

import numpy as np
import pytest
from astropy.io import fits

from conftest import REPO
from src.config import parse_args
from src.dataset.io import read_array
from src.model_card import read_model_card
from src.utils.errors import UserError

READERS = ["8-bit image", "TIFF", "npy", "FITS", "pairs.csv", "YAML config", "palette legend", "model card",
           "server upload"]


def test_every_reader_takes_or_refuses_in_one_line_what_hypothesis_makes(tmp_path):
    out = tmp_path / "fuzz.json"
    done = subprocess.run([sys.executable, os.path.join(REPO, "bench", "fuzz_readers.py"), "--examples", "60",
                           "--seed", "1", "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    readers = json.loads(out.read_text())["readers"]
    assert list(readers) == READERS
    for name, figures in readers.items():
        assert figures["failure"] is None, (name, figures)
        assert figures["cases"] >= 60, (name, figures)
        # both paths reached: files taken, and files refused with a UserError (or a 4xx)
        assert figures["accepted"] > 0 and figures["refused (UserError or 4xx)"] > 0, (name, figures)


def npy_claiming(shape, payload=b"\0" * 16):
    header = repr({"descr": "<f4", "fortran_order": False, "shape": shape}).encode()
    header += b" " * ((64 - (len(header) + 11) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header + payload


@pytest.mark.parametrize("content, message", [
    (npy_claiming((100_000, 100_000)), "not a readable .npy array"),  # was: a 40 GB allocation
    (npy_claiming((0, 5)), "an empty array (shape 1x0x5)"),
    (npy_claiming("(3,"), "not a readable .npy array"),  # was: tokenize's TokenError
])
def test_an_npy_whose_header_lies_is_refused_without_reading_what_it_claims(tmp_path, content, message):
    path = tmp_path / "x.npy"
    path.write_bytes(content)
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_array(str(path), "npy", None)


def test_a_fits_scaling_keyword_that_is_not_a_number_is_refused(tmp_path):
    path = tmp_path / "x.fits"
    hdu = fits.PrimaryHDU(np.ones((4, 4), np.int16))
    hdu.header["BSCALE"] = "text"  # was: a ValueError from float()
    hdu.writeto(path, output_verify="silentfix")
    with pytest.raises(UserError, match=r"BSCALE = 'text' is not a finite number"):
        read_array(str(path), "fits", None)


def hcompressed(path, data):
    fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(data, compression_type="HCOMPRESS_1", tile_shape=data.shape)]
                 ).writeto(path)


def test_hcompress_data_is_decoded_apart_and_a_damaged_tile_is_one_line(tmp_path):
    """astropy's HCOMPRESS_1 decoder corrupts the heap on damaged tiles: it runs in a child process."""
    data = np.arange(256, dtype=np.int16).reshape(16, 16)
    whole = tmp_path / "whole.fits"
    hcompressed(whole, data)
    assert np.array_equal(read_array(str(whole), "fits", None)[0], data)
    damaged = tmp_path / "damaged.fits"
    content = bytearray(whole.read_bytes())
    start = 2880 * 3  # the primary header, the table's header: then the tile's bytes
    content[start + 8:start + 40] = bytes(range(200, 232))
    damaged.write_bytes(bytes(content))
    try:
        values = read_array(str(damaged), "fits", None)
        assert values.shape == (1, 16, 16)  # decoded to something: this process's heap untouched
    except UserError as err:
        assert str(err).startswith(f"{damaged}: not a readable FITS file") and "\n" not in str(err)


def write_card(path, **changes):
    """A MINDIR stand-in with a card of the given field changes, its checksums made to match."""
    from conftest import copy_card_claiming
    from src.config import default_config
    from src.model_card import model_card
    path.write_bytes(b"graph")
    card = model_card(default_config(file_format="MINDIR", ckpt="G.ckpt"), None)
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            card[section][field] = value
        else:
            card[section] = value
    card_path = path.parent / (path.name + ".json")
    card_path.write_text(json.dumps(card))
    copy_card_claiming(card_path, path)


@pytest.mark.parametrize("changes, message", [
    ({"input_shape": None}, "input_shape None is not [batch, channels, size, size]"),
    ({"input_shape": [1, 3, 0, 0]}, "input_shape [1, 3, 0, 0] is not"),
    ({"size_unit": "32"}, "size_unit '32' is not a positive integer"),
    ({"data": 5}, "expected flag: value fields, got int"),
    ({"data__data_format_input": "gif"}, "data_format_input: 'gif' is not one of"),
    ({"data__logscale_input": [True]}, "logscale_input: one value expected, got a list"),
    ({"arch__ngf": "many"}, "ngf:"),
])
def test_a_card_with_fields_of_the_wrong_kind_is_refused_in_one_line(tmp_path, changes, message):
    """Fields a checksum cannot vouch for (a card edited by hand, or by another tool)."""
    path = tmp_path / "g.mindir"
    write_card(path, **changes)
    with pytest.raises(UserError) as refused:
        read_model_card(str(path))
    assert message in str(refused.value) and "\n" not in str(refused.value)




def test_a_fits_header_claiming_more_axes_than_the_standard_allows_is_refused_at_once(tmp_path):
    """astropy loops over NAXIS before checking it: NAXIS = 10**11 hung it."""
    path = tmp_path / "x.fits"
    fits.PrimaryHDU(np.ones((4, 4), np.float32)).writeto(path)
    content = bytearray(path.read_bytes())
    at = content.index(b"NAXIS   =")
    content[at + 10:at + 30] = b"99999999999".rjust(20)
    path.write_bytes(bytes(content))
    with pytest.raises(UserError, match=r"NAXIS = 99999999999: the standard allows 0 to 999 axes"):
        read_array(str(path), "fits", None)


def test_an_image_header_claiming_more_pixels_than_the_limit_is_refused_before_decoding(tmp_path, monkeypatch):
    """A few hundred bytes whose header claimed 12000 x 12000 took 2 GB while Pillow decoded them."""
    import zlib
    from PIL import Image
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 89_478_485)  # Pillow's; bench/quality.py lifts it when imported
    path = tmp_path / "x.png"
    Image.new("RGB", (4, 4)).save(path)
    content = bytearray(path.read_bytes())
    content[16:24] = struct.pack(">II", 12000, 12000)
    content[29:33] = struct.pack(">I", zlib.crc32(bytes(content[12:29])))
    path.write_bytes(bytes(content))
    with pytest.raises(UserError, match=f"12000x12000 pixels, over the {Image.MAX_IMAGE_PIXELS:,}-pixel limit"):
        read_array(str(path), "image", 3)


def test_a_line_break_brought_in_by_the_input_stays_escaped_in_the_one_line(tmp_path):
    """A pairs.csv naming a file with a line break in its name made a UserError of two lines."""
    from src.dataset.pairs import read_pairs_csv
    table = tmp_path / "pairs.csv"
    table.write_text('input,target\n"A/\nx.png",B/x.png\n')
    with pytest.raises(UserError) as refused:
        read_pairs_csv(str(table))
    assert "\n" not in str(refused.value) and "A/\\nx.png: no such file" in str(refused.value)


@pytest.mark.parametrize("line, message", [
    ("epoch_num: [1, 2]", "epoch_num: one value expected, got a list"),
    ("model: null", "model: null is not a value of this flag (drop it for its default, 'pix2pix')"),
    ("direction: 5", "direction: '5' is not one of"),
])
def test_a_config_value_of_the_wrong_kind_is_refused_in_one_line(tmp_path, line, message):
    config = tmp_path / "c.yaml"
    config.write_text(line + "\n")
    with pytest.raises(UserError) as refused:
        parse_args("train", ["--config_path", str(config), "--train_data_dir", "x"])
    assert message in str(refused.value)


def test_a_yaml_escape_beyond_unicode_is_refused_in_one_line(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text('lr: "\\U7fffffff"\n')
    with pytest.raises(UserError, match=r"not valid YAML \(chr\(\) arg not in range"):
        parse_args("train", ["--config_path", str(config), "--train_data_dir", "x"])


def test_a_tiff_page_claiming_more_strips_than_it_lists_is_refused_before_decoding(tmp_path):
    import tifffile
    path = tmp_path / "strips.tif"
    tifffile.imwrite(path, np.zeros((1000, 1), np.uint8), rowsperstrip=1)
    with tifffile.TiffFile(path) as tif:
        length = tif.pages[0].tags["ImageLength"]
        where, kind = length.valueoffset, length.dtype
    data = bytearray(path.read_bytes())
    data[where:where + 4] = struct.pack("<I", 20_000_000) if kind == 4 else struct.pack("<HH", 65535, 0)
    path.write_bytes(bytes(data))
    with pytest.raises(UserError, match="a page claims .* strips or tiles, the file lists 1,000"):
        read_array(str(path), "tif", 1)


def test_a_number_for_a_text_flag_is_taken_as_its_text(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("loss_show_dir: 7\n")
    assert parse_args("train", ["--config_path", str(config), "--train_data_dir", "x"]).loss_show_dir == "7"
