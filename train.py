"""Train Pix2Pix on paired images. `python train.py --help` lists every flag."""
from src.config import parse_args
from src.trainer import train
from src.utils.errors import run_cli


def main(argv=None):
    return train(parse_args("train", argv))


if __name__ == "__main__":
    run_cli(main)
