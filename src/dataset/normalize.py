"""The one place where data values are mapped to the network's range [-1, 1] and back.

Each side of a pair (the network's input, its target/output) has a `Scaling`, set by the
pix2pixCC-named flags: values v (physical units; for 8-bit images 0..255) become

    w = log10(v) if logscale else v            (limits are in the units of w)
    w = clip(w, lower, upper) if clip
    x = (w - (upper + lower) / 2) / ((upper - lower) / 2)

so [lower, upper] maps to [-1, 1]; 8-bit images are the case lower = 0, upper = 255. Missing
data (NaN, inf; and values <= 0 under logscale, whose log is undefined) are replaced by the
side's fill value before the mapping: `nan_fill` if given, else 0 (linear) or 0.1 (log), as
pix2pixCC does. `to_physical` is the exact inverse for values that were not clipped or filled;
under `clip` it clips the output to the limits, as pix2pixCC does with its denormalised output.
Train, eval, predict and the 310 pre/postprocess all call these functions.
"""
import threading
import warnings
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from src.dataset.io import EIGHT_BIT_FORMATS
from src.utils.errors import DataWarning, UserError

FLOAT32_MAX = float(np.finfo(np.float32).max)
# Log-scale limits this many decades above the data's largest value are taken for linear limits.
LINEAR_LOOKING_DECADES = 10


@dataclass(frozen=True)
class Scaling:
    lower: float
    upper: float
    logscale: bool = False
    clip: bool = False
    fill: Optional[float] = None  # None: 0, or 0.1 under logscale
    side: str = field(default="", compare=False)  # "input"/"target": names flags in warnings

    @property
    def fill_value(self):
        return (0.1 if self.logscale else 0.0) if self.fill is None else self.fill

    @property
    def signed(self):
        """A field whose sign means something (a magnetogram): symmetric linear limits."""
        return not self.logscale and self.lower == -self.upper


EIGHT_BIT = Scaling(0.0, 255.0)


def side_scaling(cfg, side):
    """The Scaling of "input" or "target" from the flags (8-bit images keep [0, 255] unless
    limits are given; scientific formats default to pix2pixCC's [-1, 1])."""
    data_format = getattr(cfg, f"data_format_{side}")
    default = (0.0, 255.0) if data_format in EIGHT_BIT_FORMATS else (-1.0, 1.0)
    lower = getattr(cfg, f"saturation_lower_limit_{side}")
    upper = getattr(cfg, f"saturation_upper_limit_{side}")
    logscale = getattr(cfg, f"logscale_{side}")
    fill = getattr(cfg, f"nan_fill_{side}")
    if logscale and fill is not None and fill <= 0:
        raise UserError(f"--nan_fill_{side} {fill}: under --logscale_{side} True the fill must be > 0")
    return Scaling(float(default[0] if lower is None else lower), float(default[1] if upper is None else upper),
                   logscale, getattr(cfg, f"saturation_clip_{side}"), fill, side)


def describe_scaling(scaling):
    """One short line for provenance, e.g. `log10 0..4 -> -1..1, clipped, missing = 0.1`."""
    return (f"{'log10' if scaling.logscale else 'linear'} {scaling.lower:g}..{scaling.upper:g} -> -1..1"
            f"{', clipped' if scaling.clip else ''}, missing = {scaling.fill_value:g}")


def missing_mask(values, scaling):
    """True where a value is missing: NaN or inf, or <= 0 under logscale."""
    values = np.asarray(values)
    bad = ~np.isfinite(values)
    if scaling.logscale:
        with np.errstate(invalid="ignore"):
            bad |= values <= 0
    return bad


def to_model(values, scaling):
    """Physical float CHW -> float32 CHW on the network's scale."""
    values = np.array(values, dtype=np.float64)
    missing = missing_mask(values, scaling)
    if scaling.logscale:
        _warn_if_limits_look_linear(values[~missing], scaling)
    values[missing] = scaling.fill_value
    if scaling.logscale:
        values = np.log10(values)
    if scaling.clip:
        values = np.clip(values, scaling.lower, scaling.upper)
    middle, half = (scaling.upper + scaling.lower) / 2.0, (scaling.upper - scaling.lower) / 2.0
    return ((values - middle) / half).astype(np.float32)


def fill_on_model_scale(scaling):
    """The network-scale value a missing pixel of this side becomes."""
    return float(to_model(np.full((1, 1, 1), np.nan), scaling)[0, 0, 0])


_warned_scalings = set()
_warned_lock = threading.Lock()


def _warn_if_limits_look_linear(valid_values, scaling):
    """Once per scaling: log-scale limits that lie far above (or wholly above) the log10 of the
    data are most likely linear values (1 and 200 would map 10 .. 10^200 to -1 .. 1)."""
    if not valid_values.size:
        return
    low, high = float(valid_values.min()), float(valid_values.max())
    top = np.log10(high)
    if scaling.upper - top <= LINEAR_LOOKING_DECADES and scaling.lower <= top:
        return
    with _warned_lock:
        if scaling in _warned_scalings:
            return
        _warned_scalings.add(scaling)
    flag = f"_{scaling.side}" if scaling.side else ""
    warnings.warn(f"--logscale{flag} True: the limits {scaling.lower:g} .. {scaling.upper:g} are log10 values "
                  f"(10^{scaling.lower:g} .. 10^{scaling.upper:g}), but the data seen span {low:.4g} .. {high:.4g} "
                  f"(log10 {np.log10(low):.2f} .. {top:.2f}); the limits look linear: give "
                  f"--saturation_lower_limit{flag} and --saturation_upper_limit{flag} in log10 units",
                  DataWarning, stacklevel=2)


def to_physical(model_values, scaling):
    """The inverse of `to_model`: float32 CHW on the network's scale -> physical float32.
    Under `clip` the output is clipped to the limits; under logscale without it, values beyond
    float32's range (an unconstrained output) are set to its largest value, with a warning."""
    middle, half = (scaling.upper + scaling.lower) / 2.0, (scaling.upper - scaling.lower) / 2.0
    values = np.asarray(model_values, np.float64) * half + middle
    if scaling.clip:
        values = np.clip(values, scaling.lower, scaling.upper)
    if scaling.logscale:
        values = _power_of_ten(values, scaling)
    return values.astype(np.float32)


def _power_of_ten(exponents, scaling):
    with np.errstate(over="ignore"):
        values = 10.0 ** exponents
    too_large = values > FLOAT32_MAX
    if too_large.any():
        flag = f"_{scaling.side}" if scaling.side else ""
        warnings.warn(f"{int(too_large.sum())} output value(s) up to 10^{float(exponents.max()):.1f} exceed "
                      f"float32's range and are written as {FLOAT32_MAX:.4g}; --saturation_clip{flag} True "
                      f"clips the output to the limits instead", DataWarning, stacklevel=3)
    return np.minimum(values, FLOAT32_MAX)


def image_to_model(hwc):
    """8-bit float32 HWC in [0, 255] -> float32 CHW in [-1, 1]."""
    return to_model(np.transpose(hwc, (2, 0, 1)), EIGHT_BIT)


def model_to_image(chw):
    """float CHW in [-1, 1] (values outside are clipped) -> uint8 HWC in [0, 255]."""
    scaled = (np.clip(np.asarray(chw, dtype=np.float32), -1.0, 1.0) + 1.0) * 127.5
    return np.transpose(np.rint(scaled), (1, 2, 0)).astype(np.uint8)
