"""Export a generator checkpoint to MINDIR/AIR/ONNX. `python export.py --help` lists every flag."""
from src.export import export_generator, resolve_checkpoint_flags
from src.models import registry
from src.utils.config import parse_args, save_resolved_config
from src.utils.device import set_context
from src.utils.errors import run_cli


def main(argv=None):
    cfg = resolve_checkpoint_flags(parse_args("export", argv))
    registry.check_model_config(cfg)
    set_context(cfg)
    exported = export_generator(cfg)
    save_resolved_config(cfg, exported + ".config.yaml")
    print(f"exported {exported}")
    return 0


if __name__ == "__main__":
    run_cli(main)
