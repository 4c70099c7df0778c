"""Ascend 310 flow, step 3: result_Files/*.bin -> predictions and metrics.
`python postprocess.py --help` lists flags."""
from src.config import parse_args
from src.infer310 import postprocess
from src.utils.errors import run_cli


def main(argv=None):
    cfg = parse_args("postprocess", argv)
    postprocess(cfg.preprocess_path, cfg.result_path, cfg.predict_dir, cfg.report_dir)
    return 0


if __name__ == "__main__":
    run_cli(main)
