"""Evaluate a generator checkpoint (or its exported ONNX) on paired data. `python eval.py --help` lists every flag."""
import os

from src.dataset.pairs import find_pairs
from src.evaluate import evaluate, evaluate_exported
from src.export import inference_batch_size, load_generator, resolve_checkpoint_flags
from src.inference import network_run, predictions, tiling_from_flags
from src.models import registry
from src.utils.config import CONFIG_FILE, parse_args, save_resolved_config
from src.utils.device import set_context
from src.utils.errors import run_cli


def main(argv=None):
    cfg = parse_args("eval", argv)
    if cfg.onnx:
        set_context(cfg)
        evaluate_exported(cfg, find_pairs, cfg.val_data_dir, "--val_data_dir", cfg.predict_dir, cfg.report_dir)
        save_resolved_config(cfg, os.path.join(cfg.report_dir, CONFIG_FILE))
        return 0
    cfg = resolve_checkpoint_flags(cfg)
    registry.check_model_config(cfg)
    tiling = tiling_from_flags(cfg, registry.size_unit(cfg))
    set_context(cfg)
    pairs = find_pairs(cfg.val_data_dir, "--val_data_dir", cfg)
    netG = load_generator(cfg)
    evaluate(predictions(pairs, cfg, network_run(netG), inference_batch_size(cfg), tiling), cfg,
             cfg.predict_dir, cfg.report_dir)
    save_resolved_config(cfg, os.path.join(cfg.report_dir, CONFIG_FILE))
    return 0


if __name__ == "__main__":
    run_cli(main)
