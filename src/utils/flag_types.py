"""Value types of command-line flags: argparse `type=` functions that turn a string into a
checked value, or raise argparse.ArgumentTypeError with what was expected. Config files are
checked through the same functions."""
import argparse
import re


def str2bool(value):
    """Booleans are written True/False on the command line, as pix2pixCC does."""
    if isinstance(value, bool):
        return value
    lowered = value.strip().lower()
    if lowered in ("true", "t", "yes", "y", "1"):
        return True
    if lowered in ("false", "f", "no", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {value!r}")


def positive_int(value):
    number = int(value)
    if number <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {value}")
    return number


def non_negative_int(value):
    number = int(value)
    if number < 0:
        raise argparse.ArgumentTypeError(f"expected an integer >= 0, got {value}")
    return number


def port_number(value):
    number = int(value)
    if not 1 <= number <= 65535:
        raise argparse.ArgumentTypeError(f"expected a TCP port from 1 to 65535, got {value}")
    return number


def non_negative_float(value):
    number = float(value)
    if not number >= 0:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {value}")
    return number


def unit_interval(value):
    number = float(value)
    if not 0 <= number < 1:
        raise argparse.ArgumentTypeError(f"expected a number in [0, 1), got {value}")
    return number


def positive_float(value):
    number = float(value)
    if not number > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return number


PADDING_TYPES = ("zero", "reflection", "replication")
# The model zoo's --pad_mode values, in this project's (pix2pixCC's) vocabulary.
PAD_MODE_VALUES = {"CONSTANT": "zero", "REFLECT": "reflection"}


def padding_name(value):
    return PAD_MODE_VALUES.get(value.upper(), value) if isinstance(value, str) else value


def optional_float(value):
    return None if value.lower() in ("none", "") else float(value)


DURATION_UNITS = {"": 1.0, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0}


def duration(value):
    """A time span such as 0, 90s, 12min, 6h or 1d, in seconds (a bare number: seconds)."""
    match = re.fullmatch(r"\s*([-+]?\d+(?:\.\d*)?)\s*(s|min|h|d)?\s*", value)
    if not match:
        raise argparse.ArgumentTypeError(f"expected a duration such as 0, 90s, 12min, 6h or 1d, got {value!r}")
    return float(match.group(1)) * DURATION_UNITS[match.group(2) or ""]
