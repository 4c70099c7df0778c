"""Run one script of the unmodified PyTorch reference pix2pix (its train.py or test.py) from its own
folder, seeded, with the interpreter that has torch (a venv of its own, never the project's):

    /path/to/torch-venv/bin/python bench/reference_pix2pix.py --reference_dir ../shared/reference/pytorch-CycleGAN-and-pix2pix \
        --seed 1 train.py --dataroot AB --name run --model pix2pix ...

The reference has no seed flag: this seeds Python's, NumPy's and torch's generators before the script
runs (its data loader's workers derive theirs from torch's), so a seed gives the same crops, flips,
initial weights and dropout masks each time on the same machine. Its util/visualizer.py imports
wandb at module level for an option the bench never sets; where wandb is not installed an empty
module stands in for it. Nothing of the reference is copied or changed: the script runs as it is.
"""
import argparse
import os
import random
import runpy
import sys
import types


def main(argv=None):
    parser = argparse.ArgumentParser(description="Run the PyTorch reference pix2pix's train.py or test.py "
                                     "seeded, from its own folder (the rest of the command line is its own).")
    parser.add_argument("--reference_dir", required=True,
                        help="the reference's folder (holding train.py, test.py, models/, data/)")
    parser.add_argument("--seed", type=int, required=True, help="seed of Python's, NumPy's and torch's RNGs")
    parser.add_argument("script", choices=["train.py", "test.py"], help="the reference's script to run")
    parser.add_argument("args", nargs=argparse.REMAINDER, help="the script's own flags")
    args = parser.parse_args(argv)
    script = os.path.join(os.path.abspath(args.reference_dir), args.script)
    if not os.path.isfile(script):
        raise SystemExit(f"reference_pix2pix: --reference_dir {args.reference_dir}: no {args.script} there")
    try:
        import numpy as np
        import torch
    except ImportError as err:
        raise SystemExit(f"reference_pix2pix: {err}; run this with the interpreter of a venv that has torch, "
                         "torchvision and dominate (pip install torch torchvision dominate)") from None
    try:
        import wandb  # noqa: F401
    except ImportError:
        sys.modules["wandb"] = types.ModuleType("wandb")
    random.seed(args.seed)
    np.random.seed(args.seed)
    torch.manual_seed(args.seed)
    os.chdir(os.path.dirname(script))
    sys.path.insert(0, os.path.dirname(script))
    sys.argv = [script, *args.args]
    runpy.run_path(script, run_name="__main__")


if __name__ == "__main__":
    main()
