"""Pair two folders by a key in the file names, or by observation time, into a pairs.csv.
`python pair_files.py --help` lists the flags."""
from src.config import parse_args
from src.dataset.pairing import make_pairs
from src.utils.errors import run_cli


def main(argv=None):
    cfg = parse_args("pair_files", argv)
    make_pairs(cfg.input_dir, cfg.target_dir, cfg.key_regex, cfg.target_key_regex, cfg.output,
               time_tolerance=cfg.time_tolerance, lead_time=cfg.lead_time)
    return 0


if __name__ == "__main__":
    run_cli(main)
