"""Progress bars for long work: one look for every entry point and campaign, on stderr.

On a terminal: tqdm's redrawing bar (count, rate, elapsed, time left). Anywhere else (a log
file, CI): each redraw becomes a line of its own, at most one every `log_seconds()` besides
the first and the last, so that a log reads as a history and is not flooded with `\\r` redraws.
Always use a bar as a context manager (`with progress_bar(...) as bar:`): it is then closed,
its last line written, before an error that stops the loop is printed.
"""
import os
import re
import sys

from tqdm import tqdm

from src.utils.errors import UserError

# Seconds between two lines of a bar in a log; P2P_PROGRESS_SECONDS overrides it.
LOG_SECONDS = 10.0
TERMINAL_SECONDS = 0.1  # tqdm's own redraw interval
_CURSOR_MOVES = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
_STATS = re.compile(r"\[[^\]]*\]$")  # "[elapsed<left, rate, postfix]" at a line's end


def log_seconds():
    value = os.environ.get("P2P_PROGRESS_SECONDS", "")
    try:
        seconds = float(value) if value else LOG_SECONDS
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        raise UserError(f"P2P_PROGRESS_SECONDS={value!r}: expected a number of seconds, 0 or more")
    return seconds


class LogLines:
    """The file tqdm writes to where stderr is not a terminal: each redraw as one newline-ended
    line, without carriage returns or cursor moves, and none repeating the last count (closing a
    bar redraws the state it last showed)."""

    def __init__(self, stream):
        self.stream = stream
        self.last_count = None

    def write(self, text):
        for piece in re.split(r"[\r\n]", _CURSOR_MOVES.sub("", text)):
            line = piece.rstrip()
            count = _STATS.sub("", line)
            if line and count != self.last_count:
                self.stream.write(line + "\n")
                self.last_count = count

    def flush(self):
        self.stream.flush()


def on_terminal(stream):
    """A terminal that says its size: tqdm draws nothing on one of 0 columns or rows (some
    pseudo-terminals), so that gets log lines."""
    try:
        size = os.get_terminal_size(stream.fileno())
        return stream.isatty() and size.columns > 0 and size.lines > 0
    except (AttributeError, ValueError, OSError):  # no file number, closed, not a terminal
        return False


class HiddenBar:
    """A bar that draws nothing, with the tqdm calls callers make. Not a disabled tqdm: any tqdm
    starts tqdm's monitor thread, which has no business in the server or a training."""

    def __init__(self, iterable=None):
        self.iterable = iterable

    def __iter__(self):
        return iter(self.iterable)

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        return False

    def update(self, n=1):
        pass

    def set_postfix_str(self, s="", refresh=True):
        pass


def progress_bar(iterable=None, total=None, desc=None, unit="it", shown=True, transient=False):
    """A tqdm bar over `iterable` (or advanced by hand with `update`) on stderr; `shown=False`:
    a HiddenBar (callers pass `shown=many items`). `transient`: on a terminal the bar disappears
    when done (a bar inside another's loop); a log keeps its last line."""
    if not shown:
        return HiddenBar(iterable)
    stream = sys.stderr
    terminal = on_terminal(stream)
    return tqdm(iterable, total=total, desc=desc, unit=unit, disable=False,
                file=stream if terminal else LogLines(stream), leave=not (transient and terminal),
                mininterval=TERMINAL_SECONDS if terminal else log_seconds(),
                ncols=None if terminal else 0, dynamic_ncols=terminal)


def say(message, file=None):
    """print() that leaves a bar drawn on the terminal intact: the bar is lifted, the line
    written (stdout by default), the bar redrawn."""
    tqdm.write(str(message), file=file)
    (file or sys.stdout).flush()
