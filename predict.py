"""Translate a folder of images with an exported MINDIR or ONNX file. `python predict.py --help` lists flags."""
import os

from src.dataset.pairs import find_inputs
from src.evaluate import evaluate_exported
from src.utils.config import CONFIG_FILE, parse_args, save_resolved_config
from src.utils.device import set_context
from src.utils.errors import run_cli


def main(argv=None):
    cfg = parse_args("predict", argv)
    set_context(cfg)
    report_dir = cfg.predict_dir + "_report"
    evaluate_exported(cfg, find_inputs, cfg.input_dir, "--input_dir", cfg.predict_dir, report_dir)
    save_resolved_config(cfg, os.path.join(report_dir, CONFIG_FILE))
    return 0


if __name__ == "__main__":
    run_cli(main)
