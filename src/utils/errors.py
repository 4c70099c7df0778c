"""The one exception type whose message is shown to users, and the CLI wrapper that shows it."""
import sys


class UserError(Exception):
    """A mistake in the user's input (flags, files, data): shown as one line, exit code 2."""


def run_cli(main, argv=None):
    """Run an entry point's `main(argv)`; a UserError becomes one stderr line and exit code 2."""
    try:
        code = main(argv)
    except UserError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
