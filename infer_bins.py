"""Ascend 310 flow, step 2 on this machine: the MINDIR over the .bin inputs with MindSpore's
Python API, writing what ascend310_infer's main writes. `python infer_bins.py --help`."""
from src.infer310 import infer_bins
from src.utils.config import parse_args
from src.utils.device import set_context
from src.utils.errors import run_cli


def main(argv=None):
    cfg = parse_args("infer_bins", argv)
    set_context(cfg)
    infer_bins(cfg.mindir, cfg.input0_path, cfg.output_dir, cfg.time_dir)
    return 0


if __name__ == "__main__":
    run_cli(main)
