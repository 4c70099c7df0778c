"""Export a generator checkpoint to MINDIR/AIR/ONNX. `python export.py --help` lists every flag."""
from src.config import parse_args
from src.exporter import export
from src.utils.errors import run_cli


def main(argv=None):
    export(parse_args("export", argv))
    return 0


if __name__ == "__main__":
    run_cli(main)
