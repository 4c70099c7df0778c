"""Translate a folder of images with an exported MINDIR or ONNX file. `python predict.py --help` lists flags."""
from src.config import parse_args
from src.evaluate import predict_folder
from src.utils.errors import run_cli


def main(argv=None):
    predict_folder(parse_args("predict", argv))
    return 0


if __name__ == "__main__":
    run_cli(main)
