"""The one exception type whose message is shown to users, the warning type shown beside it,
and the CLI wrapper that shows them."""
import sys
import warnings

from tqdm import tqdm


class UserError(Exception):
    """A mistake in the user's input (flags, files, data): shown as one line, exit code 2. Line
    breaks that the input brought into the message (a file name, a config key) are shown escaped,
    so that the message stays one line whatever it quotes."""

    def __init__(self, message=""):
        super().__init__(str(message).replace("\r", "\\r").replace("\n", "\\n"))


class NoSpace(UserError):
    """A file could not be written for want of disk space (or under `ulimit -f`)."""


class DataWarning(UserWarning):
    """A likely mistake in the data or flags that does not stop the run: one `warning:` line."""


def _show_data_warnings(show=warnings.showwarning):
    """Print DataWarnings as `warning: message` lines on stderr (clear of a progress bar drawn
    there); other warnings as before."""
    def showwarning(message, category, *args, **kwargs):
        if issubclass(category, DataWarning):
            tqdm.write(f"warning: {message}", file=sys.stderr)  # lifts a bar drawn there first
            sys.stderr.flush()
        else:
            show(message, category, *args, **kwargs)
    warnings.showwarning = showwarning


def run_cli(main, argv=None):
    """Run an entry point's `main(argv)`; a UserError becomes one stderr line and exit code 2."""
    _show_data_warnings()
    try:
        code = main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
