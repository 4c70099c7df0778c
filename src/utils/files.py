"""The one atomic write: every file the project writes appears whole or not at all.

A writer gets a temporary path in the target's own folder (so that the final `os.replace` is a
rename on one file system) that keeps the target's extension (so that libraries choosing the
format by extension, and MindSpore's save_checkpoint, which appends ".ckpt" to other names,
write the right thing); the temporary file is removed if the writer fails, and so is the one
MindSpore's save_checkpoint writes beside it. A full disk (or `ulimit -f`) becomes a NoSpace
error naming the file and the space it needs.
"""
import contextlib
import csv
import errno
import io
import os
import re
import shutil

from src.utils.errors import NoSpace

FULL = {errno.ENOSPC: "no space left on the device", errno.EDQUOT: "the disk quota is exhausted",
        errno.EFBIG: "the file size limit (ulimit -f) is reached"}


def _size(size):
    return f"{size / 1e6:.1f} MB" if size >= 1e5 else f"{size / 1e3:.1f} kB"


def _no_space(path, err, expected, written, replaced=True):
    """The error for a write of `path` stopped by a full disk after `written` bytes of `expected`
    (0: not known beforehand); `replaced`: the write would have replaced the file (else it grew it)."""
    directory = os.path.dirname(os.path.abspath(path))
    free = shutil.disk_usage(directory).free
    if expected >= written:
        needed = f", about {_size(expected)} needed" if expected else ""
    else:
        needed = f", more than {_size(written)} needed"
    intact = "; the previous file is intact" if replaced and os.path.exists(path) else ""
    return NoSpace(f"cannot write {path}: {FULL[err.errno]} ({_size(free)} free in {directory}{needed}){intact}")


@contextlib.contextmanager
def atomic_path(path, expected_bytes=0):
    """Yield a temporary path beside `path`; on success it replaces `path`, else it is removed.
    `expected_bytes` (what the writer will write, where known) goes into a full disk's message."""
    directory, base = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.tmp{os.path.splitext(base)[1]}")
    # MindSpore's save_checkpoint writes ".x.ckpt" through ".x.tmp" of its own.
    leftovers = (tmp, os.path.splitext(tmp)[0] + ".tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except OSError as err:
        if err.errno not in FULL:
            raise
        written = max((os.path.getsize(name) for name in leftovers if os.path.exists(name)), default=0)
        _remove(leftovers)
        raise _no_space(path, err, expected_bytes, written) from None
    finally:
        _remove(leftovers)


@contextlib.contextmanager
def growing_file(path):
    """For writes that grow `path` in place (TensorBoard's event file, whose readers skip a cut
    last record): a full disk becomes the NoSpace error naming it."""
    try:
        yield
    except OSError as err:
        if err.errno not in FULL:
            raise
        raise _no_space(path, err, 0, 0, replaced=False) from None


def _remove(paths):
    for name in paths:
        if os.path.exists(name):
            os.remove(name)


def atomic_write_bytes(path, data):
    """`data` to `path`, flushed to disk before it replaces `path`."""
    with atomic_path(path, len(data)) as tmp, open(tmp, "wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())


def atomic_write_text(path, text):
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_csv(path, rows):
    """`rows` (lists of cells, the header first) as a CSV file, as csv.writer writes it."""
    text = io.StringIO(newline="")
    csv.writer(text).writerows(rows)
    atomic_write_text(path, text.getvalue())


def save_figure(figure, path, dpi):
    """A matplotlib figure to `path` (format from its extension), atomically, then closed."""
    import matplotlib.pyplot as plt
    with atomic_path(path) as tmp:
        figure.savefig(tmp, dpi=dpi)
    plt.close(figure)


TEMPORARY = re.compile(r"\..+\.(\d+)\.tmp(\.\w+)*")


def remove_stale_temporaries(directory):
    """Remove the temporary files that processes killed mid-write left in `directory` (a SIGKILL
    runs no clean-up): those of atomic_path's naming whose process is gone. Returns their names."""
    removed = []
    for name in sorted(os.listdir(directory)) if os.path.isdir(directory) else []:
        match = TEMPORARY.fullmatch(name)
        if match and not _running(int(match.group(1))):
            os.remove(os.path.join(directory, name))
            removed.append(name)
    return removed


def clear_stale_temporaries(folders, progress=print):
    """remove_stale_temporaries in each folder, each removal reported in one line: what an entry
    point does before it writes there."""
    for folder in folders:
        for name in remove_stale_temporaries(folder):
            progress(f"removed {os.path.join(folder, name)}, left by a run killed while writing it")


def _running(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
