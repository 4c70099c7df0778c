"""Geometric transforms on float32 CHW arrays, applied alike to both sides of a pair."""
import numpy as np
from PIL import Image

from src.dataset.io import EIGHT_BIT_FORMATS
from src.dataset.normalize import side_scaling
from src.utils.errors import UserError


def resize_chw(array, size):
    """Bicubic resize of every channel of a float32 CHW array to `size` (an int for a square,
    or (height, width)), clamped to the channel's own range.

    Bicubic overshoots at edges (8-bit images reached +-1.02 on the [-1, 1] scale, beyond what
    the generator's tanh can produce); the reference pix2pix resizes 8-bit images, whose
    overshoot PIL clips. Clamping to the channel's range does the same for any data. Missing
    values (NaN) stay missing."""
    height, width = (size, size) if isinstance(size, int) else size
    if array.shape[1:] == (height, width):
        return array
    return np.stack([_resize_channel(channel, width, height) for channel in array]).astype(np.float32)


def _resize_channel(channel, width, height):
    resized = np.asarray(Image.fromarray(np.ascontiguousarray(channel), mode="F")
                         .resize((width, height), Image.BICUBIC))
    finite = channel[np.isfinite(channel)]
    return np.clip(resized, finite.min(), finite.max()) if finite.size else resized


def pad_and_rotate(source, target, rng, padding, max_angle):
    """pix2pixCC's native-scale augmentation before the crop: both sides padded by `padding`
    pixels repeating their edges, then rotated about the centre by one random angle in
    [-max_angle, max_angle] degrees (bilinear, edges repeated). A rotation keeps a
    magnetogram's handedness, so the polarity rule needs no sign change here."""
    if padding:
        pad = ((0, 0), (padding, padding), (padding, padding))
        source, target = np.pad(source, pad, mode="edge"), np.pad(target, pad, mode="edge")
    if max_angle:
        from scipy.ndimage import rotate
        angle = float(rng.uniform(-max_angle, max_angle))
        source, target = (rotate(side, angle, axes=(2, 1), reshape=False, order=1, mode="nearest")
                          for side in (source, target))
    return source, target


def crop_and_flip(source, target, rng, crop_size, flip, polarity_flip=False):
    """The same random crop on both sides, then, for half the samples, the same horizontal
    mirror (`flip`) or mirror with sign reversal (`polarity_flip`, for line-of-sight
    magnetograms: a mirrored active region keeps Hale's polarity rule only if its signs are
    reversed too)."""
    height, width = source.shape[1:]
    top = int(rng.integers(0, height - crop_size + 1))
    left = int(rng.integers(0, width - crop_size + 1))
    window = (slice(None), slice(top, top + crop_size), slice(left, left + crop_size))
    source, target = source[window], target[window]
    if (flip or polarity_flip) and rng.random() < 0.5:
        source, target = source[:, :, ::-1], target[:, :, ::-1]
        if polarity_flip:
            source, target = -source, -target
    return np.ascontiguousarray(source), np.ascontiguousarray(target)


def resolve_flip(cfg):
    """--no_flip's default (flip 8-bit images only: mirroring a physical field is not a neutral
    augmentation) and --polarity_flip's requirements."""
    arrays = any(getattr(cfg, f"data_format_{side}") not in EIGHT_BIT_FORMATS for side in ("input", "target"))
    if cfg.polarity_flip:
        for side in ("input", "target"):
            if not side_scaling(cfg, side).signed:
                raise UserError(f"--polarity_flip True needs a signed {side}: linear, with "
                                f"--saturation_lower_limit_{side} = -(--saturation_upper_limit_{side})")
        if cfg.no_flip is False:
            raise UserError("--polarity_flip True mirrors with sign reversal; --no_flip False would "
                            "also mirror without it: drop --no_flip")
    if cfg.no_flip is None:
        cfg.no_flip = arrays or cfg.polarity_flip
