"""Ascend 310 flow, step 2 on this machine: the MINDIR over the .bin inputs with MindSpore's
Python API, writing what ascend310_infer's main writes. `python infer_bins.py --help`."""
from src.config import parse_args
from src.infer310 import device_step
from src.utils.errors import run_cli


def main(argv=None):
    device_step(parse_args("infer_bins", argv))
    return 0


if __name__ == "__main__":
    run_cli(main)
