"""Reading and writing data files. Readers return float32 arrays in the file's own units (8-bit
images: HWC in [0, 255]; scientific formats: CHW in physical units, NaN where data are missing)
or raise UserError naming the file."""
import contextlib
import io
import logging
import math
import os
import re
import struct
import subprocess
import sys
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from src.utils.errors import UserError
from src.utils.files import atomic_path

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")
# --data_format_* -> the file extensions listed for it ("image": any 8-bit image).
FORMAT_EXTENSIONS = {
    "image": IMAGE_EXTENSIONS, "png": (".png",), "jpg": (".jpg", ".jpeg"), "tif": (".tif", ".tiff"),
    "npy": (".npy",), "fits": (".fits", ".fit", ".fts", ".fits.gz", ".fits.fz", ".fz"),
}
EIGHT_BIT_FORMATS = ("image", "png", "jpg")
# The extension a prediction of each target format is written with ("image": the input's own).
OUTPUT_EXTENSIONS = {"png": ".png", "jpg": ".jpg", "tif": ".tif", "npy": ".npy", "fits": ".fits"}


def is_image_file(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def has_format(name, data_format):
    return name.lower().endswith(FORMAT_EXTENSIONS[data_format])


# Longest first, so that `a.fits.gz` loses `.fits.gz`, not `.gz`.
_KNOWN_EXTENSIONS = sorted({e for es in FORMAT_EXTENSIONS.values() for e in es}, key=len, reverse=True)


def stem(name):
    """The file name without its format's extension (`a.fits.gz` -> `a`)."""
    lowered = name.lower()
    for extension in _KNOWN_EXTENSIONS:
        if lowered.endswith(extension):
            return name[:-len(extension)]
    return os.path.splitext(name)[0]


def read_array(path, data_format, channels, fits_hdu="auto"):
    """float32 CHW with `channels` channels, in the file's units: 8-bit formats in [0, 255],
    npy/tif/FITS as stored (FITS with BSCALE/BZERO applied and BLANK pixels as NaN). A 2-D array
    is one channel; 3-D arrays are channels first (a FITS cube, an npy), or channels last for
    a tif whose last axis matches. `channels` None: any count (read_stack checks the total)."""
    if data_format in EIGHT_BIT_FORMATS:
        return np.ascontiguousarray(np.transpose(read_image(path, channels), (2, 0, 1)))
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    if data_format == "fits":
        array = read_fits(path, fits_hdu)[0]
    elif data_format == "npy":
        try:  # mapped, not read: a damaged header's shape is checked against the file's size
            array = np.array(np.load(path, mmap_mode="r", allow_pickle=False))
        except Exception as err:  # numpy raises ValueError, EOFError, tokenize's TokenError, ... for damaged headers
            raise UserError(f"{path}: not a readable .npy array ({err})") from None
    else:
        array = _read_tif(path, channels)
    return _as_chw(np.asarray(array), channels, path)


def declared_shape(source, data_format, fits_hdu="auto"):
    """The array shape a file's header declares, read without decoding its pixels: (height,
    width) of an 8-bit image, NAXISn reversed for FITS, the npy header's shape, the TIFF's first
    series; None when the header cannot be read (read_array then says why). `source`: a path or
    a binary file object."""
    try:
        if data_format in EIGHT_BIT_FORMATS:
            with Image.open(source) as image:  # lazy: the size without the pixels
                return image.height, image.width
        if data_format == "fits":
            from astropy.io import fits
            if isinstance(source, (str, os.PathLike)):
                _check_fits_file(source)
            else:
                _check_axis_counts(source.getbuffer(), "upload")
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with fits.open(source, memmap=False, lazy_load_hdus=True) as hdus:
                    header = _fits_hdu(hdus, fits_hdu, "upload").header
                    return tuple(int(header[f"NAXIS{axis}"]) for axis in range(header["NAXIS"], 0, -1))
        if data_format == "npy":
            from numpy.lib import format as npy_format
            handle = open(source, "rb") if isinstance(source, (str, os.PathLike)) else source
            with handle:
                read_header = (npy_format.read_array_header_1_0 if npy_format.read_magic(handle) == (1, 0)
                               else npy_format.read_array_header_2_0)
                return tuple(read_header(handle)[0])
        import tifffile
        with _quiet_tifffile(), tifffile.TiffFile(source) as tif:
            return tuple(tif.series[0].shape)
    except Exception:  # a damaged or foreign file: the reader's own message is clearer
        return None


def read_stack(paths, data_format, channels, fits_hdu="auto"):
    """One array from several files of one time, their channels stacked in the order given (three
    AIA wavelengths as a three-channel input); one file is read_array's."""
    if len(paths) == 1:
        return read_array(paths[0], data_format, channels, fits_hdu)
    if data_format in EIGHT_BIT_FORMATS:
        raise UserError(f"{paths[0]}: several files as channels need tif, npy or fits data, not 8-bit images")
    parts = [read_array(path, data_format, None, fits_hdu) for path in paths]
    sizes = {part.shape[1:] for part in parts}
    if len(sizes) > 1:
        raise UserError(f"{paths[0]} and {len(paths) - 1} more: the files differ in size {sorted(sizes)}; "
                        "channels must share one pixel grid")
    stack = np.concatenate(parts)
    if stack.shape[0] != channels:
        raise UserError(f"{paths[0]} and {len(paths) - 1} more: {stack.shape[0]} channel(s) together, the "
                        f"model asks for {channels} (--input_nc / --output_nc)")
    return stack


@contextlib.contextmanager
def _quiet_tifffile():
    """tifffile logs a warning per damaged tag before it raises: the UserError says it once."""
    logger = logging.getLogger("tifffile")
    level, logger.level = logger.level, logging.CRITICAL
    try:
        yield
    finally:
        logger.setLevel(level)


def _read_tif(path, channels):
    import tifffile
    try:
        with _quiet_tifffile(), tifffile.TiffFile(path) as tif:
            _check_tif_segments(tif, path)
            array = tif.asarray()
    except UserError:
        raise
    except Exception as err:  # tifffile raises many types for damaged files
        raise UserError(f"{path}: not a readable TIFF ({err})") from None
    if array.ndim == 3 and array.shape[-1] == channels and array.shape[0] != channels:
        array = np.moveaxis(array, -1, 0)
    return array


def _check_tif_segments(tif, path):
    """A damaged size field can make a page claim millions of strips or tiles over the few the
    file lists, which tifffile then walks one by one for minutes (found by fuzzing)."""
    for page in tif.pages:
        claimed, listed = math.prod(getattr(page, "chunked", ()) or (0,)), len(page.dataoffsets)
        if claimed > listed:
            raise UserError(f"{path}: not a readable TIFF (a page claims {claimed:,} strips or tiles, "
                            f"the file lists {listed:,})")


def _as_chw(array, channels, path):
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise UserError(f"{path}: holds {array.dtype} data, not real numbers")
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3:
        raise UserError(f"{path}: a {array.ndim}-D array; expected 2-D (one channel) or 3-D (channels first)")
    if array.size == 0:
        raise UserError(f"{path}: an empty array (shape {'x'.join(map(str, array.shape))}); it holds no pixels")
    if channels is not None and array.shape[0] != channels:
        raise UserError(f"{path}: {array.shape[0]} channel(s), the model asks for {channels} "
                        "(--input_nc / --output_nc)")
    return np.ascontiguousarray(array, dtype=np.float32)  # also makes big-endian data native


def _holds_image(hdu):
    return getattr(hdu, "is_image", False) and hdu.header.get("NAXIS", 0) > 0


def _fits_hdu(hdus, fits_hdu, path):
    if fits_hdu == "auto":  # the primary HDU, or the first extension with an image (compressed files)
        for hdu in hdus:
            if _holds_image(hdu):
                return hdu
        raise UserError(f"{path}: no HDU holds an image")
    key = int(fits_hdu) if str(fits_hdu).isdigit() else fits_hdu
    try:
        hdu = hdus[key]
    except (KeyError, IndexError):
        names = ", ".join(f"{i}:{h.name}" for i, h in enumerate(hdus))
        raise UserError(f"{path}: no HDU {fits_hdu!r} (--fits_hdu); it has {names}") from None
    if not _holds_image(hdu):
        raise UserError(f"{path}: HDU {fits_hdu!r} holds no image (--fits_hdu)")
    return hdu


# A header card giving the number of axes (ZNAXIS: a compressed image's own).
_AXIS_COUNT_CARD = re.compile(rb"(NAXIS   |ZNAXIS  )= *(-?\d+)")


def _check_axis_counts(content, path):
    """The FITS standard allows up to 999 axes; astropy loops over NAXIS before it checks anything,
    so a damaged NAXIS of 10**11 hangs it (found by bench/fuzz_readers.py). `content`: the file's
    bytes, or a buffer over them; cards begin at multiples of 80 bytes."""
    for match in _AXIS_COUNT_CARD.finditer(content):
        if match.start() % 80 == 0 and not 0 <= int(match.group(2)) <= 999:
            raise UserError(f"{path}: not a readable FITS file ({match.group(1).decode().strip()} = "
                            f"{int(match.group(2))}: the standard allows 0 to 999 axes)")


def _check_fits_file(path):
    import mmap
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size:
            with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as content:
                _check_axis_counts(content, path)


def _from_fits(path, fits_hdu, extract):
    """`extract(hdu)` of the chosen image HDU; a corrupt or truncated file is one UserError line."""
    from astropy.io import fits
    _check_fits_file(path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # Raw stored values: astropy's unsigned-integer path (BZERO 2**(BITPIX-1)) and signed
            # bytes (BZERO -128) ignore BLANK, so read_fits applies BLANK before the scaling.
            with fits.open(path, memmap=False, do_not_scale_image_data=True) as hdus:
                hdu = _fits_hdu(hdus, fits_hdu, path)
                return extract(hdu, hdus.index(hdu))
    except UserError:
        raise
    except Exception as err:  # astropy raises OSError, ValueError, TypeError, ... on damaged files
        truncated = [str(w.message) for w in caught if "truncated" in str(w.message)]
        reason = truncated[0] if truncated else str(err).splitlines()[0] if str(err) else type(err).__name__
        raise UserError(f"{path}: not a readable FITS file ({reason})") from None


def read_fits(path, fits_hdu="auto"):
    """(data as float64 in physical units, header) of one image HDU: BLANK pixels of integer
    data as NaN, then BSCALE/BZERO applied."""
    raw, header = _from_fits(path, fits_hdu, lambda hdu, index: (_image_data(hdu, index, path), hdu.header.copy()))
    for key in ("BSCALE", "BZERO", "BLANK"):
        value = header.get(key)
        if value is not None and (isinstance(value, (bool, str)) or not np.isfinite(float(value))):
            raise UserError(f"{path}: not a readable FITS file ({key} = {value!r} is not a finite number)")
    return physical_values(raw, header), header


def read_fits_header(path, fits_hdu="auto"):
    """The header of the image HDU read_fits would read, without reading its data."""
    return _from_fits(path, fits_hdu, lambda hdu, index: hdu.header.copy())


# astropy's HCOMPRESS_1 decoder (C, astropy 8.0) writes outside its buffers on damaged data and
# corrupts the process's heap (found by bench/fuzz_readers.py): those tiles are decoded in a child
# process, whose crash is then a one-line error.
_DECODE_IN_CHILD = """import sys, numpy as np
from astropy.io import fits
with fits.open(sys.argv[1], memmap=False, do_not_scale_image_data=True) as hdus:
    np.save(sys.stdout.buffer, np.array(hdus[int(sys.argv[2])].data), allow_pickle=False)
"""


def _image_data(hdu, index, path):
    if str(getattr(hdu, "compression_type", "")).strip() != "HCOMPRESS_1":
        return np.array(hdu.data)
    done = subprocess.run([sys.executable, "-c", _DECODE_IN_CHILD, path, str(index)], capture_output=True,
                          timeout=600, check=False)
    if done.returncode != 0:
        raise UserError(f"{path}: not a readable FITS file (its HCOMPRESS_1 data could not be decoded)")
    return np.load(io.BytesIO(done.stdout), allow_pickle=False)


# JSOC's time strings (HMI's T_REC and T_OBS): 2011.02.15_00:00:00_TAI
_JSOC_TIME = re.compile(r"^(\d{4})\.(\d{2})\.(\d{2})_(\d{2}:\d{2}:\d{2}(?:\.\d*)?)(?:_(TAI|UTC|UT|Z))?$")
TIME_KEYS = ("DATE-OBS", "DATE_OBS", "T_OBS", "T_REC")


def observation_time(header):
    """The observation time (astropy Time, UTC) a FITS header gives in DATE-OBS, DATE_OBS, T_OBS
    or T_REC, in ISO or JSOC form; None if none of them holds a readable time."""
    from astropy.time import Time
    for key in TIME_KEYS:
        value = str(header.get(key, "") or "").strip()
        match = _JSOC_TIME.match(value)
        try:
            if match:
                year, month, day, clock, scale = match.groups()
                return Time(f"{year}-{month}-{day}T{clock}", scale="tai" if scale == "TAI" else "utc").utc
            if value:
                return Time(value.rstrip("Z"), scale="utc")
        except ValueError:
            continue
    return None


def physical_values(raw, header):
    """Stored FITS values -> float64 physical values: raw == BLANK (integer data of any width
    and sign) becomes NaN, then value = BSCALE * raw + BZERO."""
    values = raw.astype(np.float64)
    if raw.dtype.kind in "iu" and header.get("BLANK") is not None:
        values[raw == header["BLANK"]] = np.nan
    return values * float(header.get("BSCALE", 1.0)) + float(header.get("BZERO", 0.0))


def write_fits(path, chw, header):
    """float32 data (a 2-D image for one channel, else a cube) with `header`, atomically."""
    from astropy.io import fits
    data = chw[0] if chw.shape[0] == 1 else chw
    hdu = fits.PrimaryHDU(np.asarray(data, np.float32), header=header)
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True, output_verify="silentfix")


def write_array(path, chw, data_format):
    """A physical float32 CHW array as .npy or float TIFF, atomically."""
    data = np.asarray(chw[0] if chw.shape[0] == 1 else chw, np.float32)
    with atomic_path(path) as tmp:
        if data_format == "npy":
            with open(tmp, "wb") as handle:
                np.save(handle, data)
        else:
            import tifffile
            tifffile.imwrite(tmp, data)


# What Pillow raises for a damaged, truncated or unknown file, or one of more pixels than it
# decodes (a decompression bomb: twice Image.MAX_IMAGE_PIXELS); its plugins also let SyntaxError
# (a broken PNG chunk), EOFError, struct.error and the like through on damaged bytes (found by
# bench/fuzz_readers.py).
UNREADABLE_IMAGE = (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError, SyntaxError,
                    EOFError, struct.error, IndexError, KeyError, TypeError, ZeroDivisionError)


def _check_pixel_budget(image, path):
    """Pillow warns above Image.MAX_IMAGE_PIXELS and refuses only above twice that; read as float32
    here, an image takes about 16 bytes a pixel, so the warning's bound is the limit (a small
    damaged file whose header claims 12000 x 12000 took 2 GB: bench/fuzz_readers.py)."""
    if Image.MAX_IMAGE_PIXELS is not None and image.width * image.height > Image.MAX_IMAGE_PIXELS:  # None: bound lifted
        raise UserError(f"{path}: {image.width}x{image.height} pixels, over the {Image.MAX_IMAGE_PIXELS:,}-pixel "
                        "limit of 8-bit images; cut it into tiles, or save it as TIFF or npy")


def read_image(path, channels):
    """An 8-bit image as float32 HWC in [0, 255], converted to 1 (grey) or 3 (RGB) channels."""
    try:
        with Image.open(path) as image:
            _check_pixel_budget(image, path)
            image.load()
            return _to_array(image, channels, path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except UNREADABLE_IMAGE as err:
        raise UserError(f"{path}: not a readable image ({err})") from None


def write_image(path, array):
    """Write uint8 HWC (C = 1 or 3) to `path`, format from its extension, atomically."""
    array = np.asarray(array)
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    with atomic_path(path) as tmp:
        image.save(tmp)


def read_ab_image(path, left_channels, right_channels):
    """An aligned AB image (A left, B right) as two float32 HWC halves, split at half its width
    as the reference pix2pix splits it: the halves need not be square, the width must be even."""
    try:
        with Image.open(path) as image:
            _check_pixel_budget(image, path)
            image.load()
            width, height = image.size
            if width % 2:
                raise UserError(f"{path}: an AB image is two equal halves side by side, so its width "
                                f"must be even; this one is {width}x{height}")
            half = width // 2
            halves = (image.crop((0, 0, half, height)), image.crop((half, 0, width, height)))
            return tuple(_to_array(half, channels, path)
                         for half, channels in zip(halves, (left_channels, right_channels)))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except UNREADABLE_IMAGE as err:
        raise UserError(f"{path}: not a readable image ({err})") from None


def _to_array(image, channels, path):
    if channels not in (1, 3):
        raise UserError(f"{path}: images have 1 or 3 channels, the model asks for {channels}")
    array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
    return array[:, :, None] if channels == 1 else array
