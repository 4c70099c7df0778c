"""Translate a folder of images with an exported MINDIR. `python predict.py --help` lists flags."""
import types

from src.dataset.pairs import find_inputs
from src.evaluate import evaluate
from src.export import load_mindir
from src.inference import graph_predictions
from src.utils.config import parse_args
from src.utils.device import set_context
from src.utils.errors import run_cli


def main(argv=None):
    cfg = parse_args("predict", argv)
    set_context(cfg)
    graph, card = load_mindir(cfg.mindir)
    batch, channels, size, _ = card["input_shape"]
    # The model card says how the exported graph was trained; the data layer reads it like cfg.
    data_cfg = types.SimpleNamespace(input_nc=channels, output_nc=card["output_nc"], crop_size=size,
                                     direction=card["direction"], model=card["arch"]["model"],
                                     ckpt=card["checkpoint"])
    pairs = find_inputs(cfg.input_dir)
    evaluate(graph_predictions(graph, batch, pairs, data_cfg), data_cfg, cfg.predict_dir,
             cfg.predict_dir + "_report")
    return 0


if __name__ == "__main__":
    run_cli(main)
