"""Configuration, above models and data: the flags of every entry point (flags.py), turning a
command line, a config file or recorded values into a cfg (parse.py), and the derived defaults
and cross-flag checks (derive.py)."""
from src.config.derive import validate
from src.config.flags import (API_KEY_VARIABLE, BEST_METRICS, CONFIG_FILE, DEFAULT_MAX_PIXELS, DESCRIPTIONS,
                              ENTRY_GROUPS, build_parser)
from src.config.parse import (apply_recorded_flags, checked_flag_values, default_config, flag_names, migrate, parse_args, resolved_flags,
                              save_resolved_config)

__all__ = ["API_KEY_VARIABLE", "BEST_METRICS", "CONFIG_FILE", "DEFAULT_MAX_PIXELS", "DESCRIPTIONS", "ENTRY_GROUPS",
           "apply_recorded_flags", "build_parser", "checked_flag_values", "flag_names", "default_config", "migrate", "parse_args", "resolved_flags",
           "save_resolved_config", "validate"]
