"""The FITS header of a prediction: what a solar physicist checks it against.

A prediction lies on the input's pixel grid, so it takes the input's geometry (WCS and observer
keywords); it is an estimate of the target, so it takes the target file's instrument keywords
and unit (when eval has a target); it is no observation, so exposure, quality and the
instrument's statistics keywords (DATAMEAN, MISSVALS, ...) are not copied. Its observation time
is the input's plus `--lead_time` when that is given (0: simultaneous), else the target file's,
else unknown (no DATE-OBS). HISTORY cards name the model, checkpoint, files, both sides'
normalisation and where DATE-OBS came from.
"""
import os
import re

from src.dataset.io import observation_time
from src.dataset.normalize import describe_scaling

# The input's keywords that describe where the pixels are on the Sun and who looks at it.
GEOMETRY_KEYS = re.compile(
    r"^(WCSAXES|WCSNAME|CTYPE\d|CUNIT\d|CRPIX\d|CRVAL\d|CDELT\d|CROTA\d?|PC\d_\d|CD\d_\d|PV\d_\d+|"
    r"CRDER\d|CSYSER\d|LONPOLE|LATPOLE|RADESYS|EQUINOX|RSUN_REF|RSUN_OBS|R_SUN|DSUN_OBS|DSUN_REF|"
    r"CRLN_OBS|CRLT_OBS|HGLN_OBS|HGLT_OBS|H[AE]E[XYZ]_OBS|GAE[XYZ]_OBS|HCI[XYZ]_OBS|OBSGEO-[XYZ]|OBS_V[RWN])$")
# The target's keywords that say what the values are (sunpy picks the map type from them).
TARGET_KEYS = ("TELESCOP", "INSTRUME", "DETECTOR", "OBSRVTRY", "WAVELNTH", "WAVEUNIT", "WAVE_STR",
               "CONTENT", "BUNIT")


def prediction_header(cfg, input_header=None, target_header=None, input_name=None, target_name=None):
    """A new astropy Header for a prediction (see the module docstring); the data-layout keys
    (BITPIX, NAXIS*) are left to astropy."""
    from astropy.io import fits
    from src.dataset.normalize import side_scaling
    header = fits.Header()
    for card in (input_header or fits.Header()).cards:
        if GEOMETRY_KEYS.match(card.keyword):
            header.append(card)
    for key in TARGET_KEYS:
        if target_header is not None and key in target_header:
            header[key] = (target_header[key], target_header.comments[key])
    if cfg.target_unit:
        header["BUNIT"] = cfg.target_unit
    time, origin = prediction_time(cfg, input_header, target_header)
    if time is not None:
        header["DATE-OBS"] = (time.utc.isot, "observation time of the predicted target")
    # HISTORY cards wrap at 72 characters: one short fact per card keeps each readable.
    history = [f"MindSpore Pix2Pix prediction, model {cfg.model}",
               f"checkpoint {os.path.basename(str(cfg.ckpt or '-'))}",
               f"input {input_name or '-'}", *([f"target keywords from {target_name}"] if target_name else []),
               *(f"{side} scaling: {describe_scaling(side_scaling(cfg, side))}" for side in ("input", "target")),
               origin]
    for line in history:
        header.add_history(line)
    return header


def prediction_time(cfg, input_header, target_header):
    """(astropy Time or None, a HISTORY line saying where it came from)."""
    from astropy import units
    lead = cfg.lead_time
    input_time = None if input_header is None else observation_time(input_header)
    if lead is not None and input_time is not None:
        return input_time + lead * units.s, f"DATE-OBS: input's + --lead_time {lead:g} s"
    target_time = None if target_header is None else observation_time(target_header)
    if target_time is not None:
        return target_time, "DATE-OBS: the target file's"
    return None, "no DATE-OBS: time unknown (give --lead_time; 0: simultaneous)"
