"""Turning a command line, a YAML config file, or a dict of values into a cfg.

`parse_args(entry, argv)` reads a command line (and its --config_path file); `default_config(**values)`
builds a cfg from values alone (a model card, a test). Both hold every model, data and run
flag, fill the derived defaults and check the flags together (src/config/derive.py). Records
written with older flag names (n_gf, pad_mode, LAMBDA_L1, ...) are read in the current
vocabulary by `migrate`.
"""
import argparse
import functools
import os
import sys

import yaml

from src.config.derive import validate
from src.config.flags import DEFAULT_CONFIG_ENTRIES, ENTRY_GROUPS, build_parser
from src.models.registry import models
from src.utils.errors import UserError
from src.utils.files import atomic_write_text
from src.utils.flag_types import padding_name


def parse_args(entry, argv=None):
    """Parse and check the flags of one entry point; mistakes raise UserError. The result holds
    every flag of `default_config()` (defaults where this entry has no such flag), `cfg.entry`, and
    `cfg.given_flags`: the flags the command line or the --config_path file set."""
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(entry)
    from_file = _config_file_values(parser, _config_path(argv))
    parsed, extra = parser.parse_known_args(argv)
    if extra:
        _ignore_training_flags(parser, entry, extra)
    cfg = argparse.Namespace(**{**_defaults(), **vars(parsed)})
    cfg.entry = entry
    cfg.given_flags = _given_flags(entry, argv) | frozenset(from_file)
    validate(cfg)
    return cfg


def _ignore_training_flags(parser, entry, extra):
    """Commands written for an older flag layer pass training flags to eval.py or export.py:
    those are ignored with a note; anything else is argparse's usage error."""
    training = _lenient(build_parser("train"))
    known, rest = training.parse_known_args(extra)
    if rest or entry == "train":
        parser.error("unrecognized arguments: " + " ".join(rest or extra))
    print(f"note: {entry}.py does not use " + ", ".join(f"--{name}" for name in sorted(vars(known)))
          + " (training flags); ignored", file=sys.stderr)


def _lenient(parser):
    """`parser` with no defaults and nothing required: parsing it tells what was given."""
    for action in parser._actions:  # argparse keeps no public list of actions
        action.default = argparse.SUPPRESS
        action.required = False
    return parser


def default_config(**values):
    """A config holding every model, data and run flag at its default, updated with `values`
    (names of old vocabularies are accepted), checked like a command line."""
    cfg = argparse.Namespace(**{**_defaults(), **migrate(values)}, entry=None, given_flags=frozenset())
    validate(cfg)
    return cfg


@functools.lru_cache(maxsize=None)
def _defaults_cached():
    defaults = {}
    for entry in DEFAULT_CONFIG_ENTRIES:
        for action in _flags_of(entry):
            defaults.setdefault(action.dest, None if action.required else action.default)
    return defaults


def _defaults():
    return dict(_defaults_cached())


@functools.lru_cache(maxsize=None)
def _flags_of(entry):
    """The flag actions of one entry point, from one parser built once (never parsed with)."""
    return tuple(_actions(build_parser(entry)))


def _actions(parser):
    return [action for action in parser._actions  # argparse keeps no public list of actions
            if action.option_strings and action.dest not in ("help", "config_path")]


@functools.lru_cache(maxsize=None)
def _aliases():
    """{old flag name: current name} for every alias of every entry point (e.g. n_gf: ngf)."""
    names = {}
    for entry in ENTRY_GROUPS:
        for action in _flags_of(entry):
            for option in action.option_strings[1:]:
                names[option.lstrip("-")] = action.dest
    return names


def migrate(values):
    """`values` (recorded flags, a model card's, a config file's) in the current vocabulary: old
    names become their current ones and --pad_mode's CONSTANT/REFLECT their padding names."""
    renamed = {_aliases().get(name, name): value for name, value in values.items()}
    if "padding_type" in renamed:
        renamed["padding_type"] = padding_name(renamed["padding_type"])
    return renamed


def _config_path(argv):
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config_path", default=None)
    return pre.parse_known_args(argv)[0].config_path


def _config_file_values(parser, path):
    """Read `path` (YAML) and make its values the parser's defaults. Returns the names it set."""
    if path is None:
        return {}
    if not os.path.isfile(path):
        raise UserError(f"--config_path {path}: no such file")
    if os.path.getsize(path) == 0:
        # a config of comments only is legal (configs/maps.yaml); zero bytes is a truncated copy
        raise UserError(f"--config_path {path}: the file is empty (0 bytes); a config holds flag: value lines")
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        _check_whole(path, text)
        values = yaml.safe_load(text) or {}
    except yaml.YAMLError as err:
        raise UserError(f"--config_path {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    except UnicodeDecodeError as err:
        raise UserError(f"--config_path {path}: not valid YAML (not UTF-8 text: byte {err.start} is "
                        f"{err.object[err.start]:#04x}); is it damaged, or not a config?") from None
    except ValueError as err:  # PyYAML's own for an escape beyond Unicode ("\U7fffffff"), found by fuzzing
        raise UserError(f"--config_path {path}: not valid YAML ({err})") from None
    if not isinstance(values, dict):
        raise UserError(f"--config_path {path}: expected flag: value lines, got {type(values).__name__}")
    values = migrate(values)
    known = set(flag_names())
    unknown = sorted(name for name in values if name not in known)
    if unknown:
        raise UserError(f"--config_path {path}: unknown flag {unknown[0]!r} (no command takes --{unknown[0]})")
    own = {action.dest: action for action in _actions(parser)}
    taken = {name: _checked_value(own[name], value, f"--config_path {path}") for name, value in values.items()
             if name in own}
    for name in taken:
        own[name].required = False
    for group in parser._mutually_exclusive_groups:  # e.g. serve.py's --mindir | --ckpt
        if any(action.dest in taken for action in group._group_actions):
            group.required = False
    parser.set_defaults(**taken)
    return taken


def _checked_value(action, value, source):
    """A config file's (or a record's) value through the flag's own type and choices, so the file
    is checked like a command line; `source` names the file in the UserError."""
    name = action.dest
    if value is None and action.default not in (None, argparse.SUPPRESS):
        raise UserError(f"{source}: {name}: null is not a value of this flag (drop it for its default, "
                        f"{action.default!r})")
    if isinstance(value, (list, dict)) and action.nargs is None:
        raise UserError(f"{source}: {name}: one value expected, got a {type(value).__name__}")
    try:
        if value is not None and action.type is not None:  # YAML booleans stay booleans
            value = action.type(value if isinstance(value, bool) else str(value))
        elif value is not None and action.nargs != 0 and not isinstance(value, str):
            value = str(value)  # a text flag (a path, a name) given as a YAML number: its text
    except (argparse.ArgumentTypeError, ValueError, TypeError, OverflowError) as err:
        raise UserError(f"{source}: {name}: {err}") from None
    if action.choices is not None and value is not None and value not in action.choices:
        raise UserError(f"{source}: {name}: {value!r} is not one of " + ", ".join(map(str, action.choices)))
    return value


def checked_flag_values(values, source):
    """`values` ({flag: value}, as a model card or checkpoint records them) checked and converted
    by each flag's own type and choices; a name no command takes, or a value its flag refuses, is
    a UserError naming `source`."""
    if not isinstance(values, dict):
        raise UserError(f"{source}: expected flag: value fields, got {type(values).__name__}")
    actions = _all_flag_actions()
    unknown = sorted(str(name) for name in values if name not in actions)
    if unknown:
        raise UserError(f"{source}: unknown flag {unknown[0]!r}")
    return {name: _checked_value(actions[name], value, source) for name, value in values.items()}


@functools.lru_cache(maxsize=None)
@functools.lru_cache(maxsize=None)
def _all_flag_actions():
    actions = {}
    for entry in ENTRY_GROUPS:
        for action in _flags_of(entry):
            actions.setdefault(action.dest, action)
    return actions


@functools.lru_cache(maxsize=None)
def flag_names():
    """The name of every flag any entry point takes."""
    return frozenset(_all_flag_actions())


def _given_flags(entry, argv):
    """The destinations the command line sets explicitly: parsed again with no defaults."""
    return frozenset(vars(_lenient(build_parser(entry)).parse_known_args(argv)[0])) - {"config_path"}


def resolved_flags(cfg):
    """{flag: value} of every flag of this run's entry point, as the command ends up using it."""
    return {action.dest: getattr(cfg, action.dest) for action in _flags_of(cfg.entry)}


def save_resolved_config(cfg, path):
    """Write every flag of this run's entry point, after the config file, the command line,
    defaults and derived values, as YAML: `python <entry>.py --config_path <path>` repeats it."""
    values = resolved_flags(cfg)
    header = f"{RESOLVED_HEADER}{cfg.entry}.py run: python {cfg.entry}.py --config_path {os.path.basename(path)}\n"
    atomic_write_text(path, header + yaml.safe_dump(values, sort_keys=False) + RESOLVED_FOOTER)
    return path


# A resolved config (save_resolved_config) starts and ends with these lines: a copy cut short,
# which may still be valid YAML, is told from a whole one.
RESOLVED_HEADER = "# Resolved flags of a "
RESOLVED_FOOTER = "# end of the resolved flags\n"


def _check_whole(path, text):
    if text.startswith(RESOLVED_HEADER) and RESOLVED_FOOTER.strip() not in text:
        raise UserError(f"--config_path {path}: truncated: a resolved config ends with "
                        f"'{RESOLVED_FOOTER.strip()}', this copy stops before it")


def apply_recorded_flags(cfg, recorded, source):
    """Take the recorded training flags into `cfg`; a flag given on the command line or in the
    config file with another value is a UserError naming both. A record older than one of its
    model's flags holds the value every run had before that flag (the model's `predates`)."""
    recorded = migrate(recorded)
    model = models().get(recorded.get("model", cfg.model))
    recorded = {**(model.predates if model else {}), **recorded}
    for name, value in recorded.items():
        if not hasattr(cfg, name):
            continue
        if name in cfg.given_flags and getattr(cfg, name) != value:
            raise UserError(f"--{name} {getattr(cfg, name)} contradicts {source}, which was trained with "
                            f"--{name} {value}; drop the flag (the checkpoint records it)")
        setattr(cfg, name, value)
    validate(cfg)
    return cfg
