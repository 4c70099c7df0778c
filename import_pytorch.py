"""Import the PyTorch reference pix2pix's checkpoints. `python import_pytorch.py --help` lists every flag."""
from src.config import parse_args
from src.pytorch_import import import_checkpoints
from src.utils.errors import run_cli


def main(argv=None):
    import_checkpoints(parse_args("import_pytorch", argv))
    return 0


if __name__ == "__main__":
    run_cli(main)
