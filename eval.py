"""Evaluate a generator checkpoint (or its exported ONNX) on paired data. `python eval.py --help` lists every flag."""
from src.config import parse_args
from src.evaluate import evaluate_folder
from src.utils.errors import run_cli


def main(argv=None):
    evaluate_folder(parse_args("eval", argv))
    return 0


if __name__ == "__main__":
    run_cli(main)
