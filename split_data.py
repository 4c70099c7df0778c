"""Split a pairs.csv into train and test, optionally by group. `python split_data.py --help`."""
from src.config import parse_args
from src.dataset.pairing import split_pairs
from src.utils.errors import run_cli


def main(argv=None):
    cfg = parse_args("split_data", argv)
    split_pairs(cfg.pairs_csv, cfg.output_dir, cfg.test_ratio, cfg.seed, cfg.group_regex,
                chronological=cfg.chronological)
    return 0


if __name__ == "__main__":
    run_cli(main)
