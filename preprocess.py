"""Ascend 310 flow, step 1: dataset -> .bin inputs. `python preprocess.py --help` lists flags."""
from src.config import parse_args
from src.infer310 import preprocess
from src.utils.errors import run_cli


def main(argv=None):
    cfg = parse_args("preprocess", argv)
    preprocess(cfg.mindir, cfg.dataset_path, cfg.output_path, cfg.inputs_only, cfg)
    return 0


if __name__ == "__main__":
    run_cli(main)
