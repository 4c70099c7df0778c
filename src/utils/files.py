"""The one atomic write: every file the project writes appears whole or not at all.

A writer gets a temporary path in the target's own folder (so that the final `os.replace` is a
rename on one file system) that keeps the target's extension (so that libraries choosing the
format by extension, and MindSpore's save_checkpoint, which appends ".ckpt" to other names,
write the right thing); the temporary file is removed if the writer fails.
"""
import contextlib
import csv
import io
import os


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path beside `path`; on success it replaces `path`, else it is removed."""
    directory, base = os.path.split(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.tmp{os.path.splitext(base)[1]}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def atomic_write_bytes(path, data):
    """`data` to `path`, flushed to disk before it replaces `path`."""
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
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
