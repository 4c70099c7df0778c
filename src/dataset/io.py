"""Reading and writing image files. Every reader returns float32 HWC arrays in the file's own
value range, or raises UserError naming the file."""
import os

import numpy as np
from PIL import Image, UnidentifiedImageError

from src.utils.errors import UserError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff")


def is_image_file(name):
    return name.lower().endswith(IMAGE_EXTENSIONS)


def read_image(path, channels):
    """An 8-bit image as float32 HWC in [0, 255], converted to 1 (grey) or 3 (RGB) channels."""
    try:
        with Image.open(path) as image:
            image.load()
            return _to_array(image, channels, path)
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable image ({err})") from None


def write_image(path, array):
    """Write uint8 HWC (C = 1 or 3) to `path`, format from its extension, atomically."""
    array = np.asarray(array)
    image = Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array)
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.tmp{os.path.splitext(base)[1]}")
    image.save(tmp)
    os.replace(tmp, path)


def read_ab_image(path, left_channels, right_channels):
    """An aligned AB image (A left, B right, width = 2 x height) as two float32 HWC halves."""
    try:
        with Image.open(path) as image:
            image.load()
            width, height = image.size
            if width != 2 * height:
                raise UserError(f"{path}: an AB image is two squares side by side (width = 2 x "
                                f"height), this one is {width}x{height}")
            halves = (image.crop((0, 0, height, height)), image.crop((height, 0, width, height)))
            return tuple(_to_array(half, channels, path)
                         for half, channels in zip(halves, (left_channels, right_channels)))
    except FileNotFoundError:
        raise UserError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError, ValueError) as err:
        raise UserError(f"{path}: not a readable image ({err})") from None


def _to_array(image, channels, path):
    if channels not in (1, 3):
        raise UserError(f"{path}: images have 1 or 3 channels, the model asks for {channels}")
    array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype=np.float32)
    return array[:, :, None] if channels == 1 else array
