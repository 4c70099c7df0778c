"""Translate a folder of images with an exported MINDIR. `python predict.py --help` lists flags."""
import os

from src.dataset.pairs import find_inputs
from src.evaluate import evaluate
from src.export import data_config, load_mindir
from src.inference import card_tiling, graph_run, predictions
from src.utils.config import CONFIG_FILE, parse_args, save_resolved_config
from src.utils.device import set_context
from src.utils.errors import run_cli


def main(argv=None):
    cfg = parse_args("predict", argv)
    set_context(cfg)
    graph, card = load_mindir(cfg.mindir)
    data_cfg = data_config(card)
    tiling = card_tiling(card, cfg)
    pairs = find_inputs(cfg.input_dir, "--input_dir", data_cfg)
    batch_size = card["input_shape"][0]
    report_dir = cfg.predict_dir + "_report"
    evaluate(predictions(pairs, data_cfg, graph_run(graph, batch_size), batch_size, tiling), data_cfg,
             cfg.predict_dir, report_dir)
    save_resolved_config(cfg, os.path.join(report_dir, CONFIG_FILE))
    return 0


if __name__ == "__main__":
    run_cli(main)
