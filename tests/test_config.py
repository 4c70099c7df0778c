"""The configuration layer: flags each entry point owns, YAML configs with command-line
overrides, one vocabulary with the old names as aliases, resolved configs that repeat a run,
and the flag tables of docs/flags.md generated from the parsers."""
import os
import sys

import pytest
import yaml

from conftest import REPO
from src.config import CONFIG_FILE, ENTRY_GROUPS, build_parser, default_config, migrate, parse_args, save_resolved_config
from src.utils.errors import UserError

sys.path.insert(0, os.path.join(REPO, "tools"))
from readme_flags import flags_page  # noqa: E402 (tools/ is not a package)

CONFIGS = sorted(name for name in os.listdir(os.path.join(REPO, "configs")) if name.endswith(".yaml"))


def flags_of(entry):
    return {option for action in build_parser(entry)._actions for option in action.option_strings}


def test_readme_documents_every_flag_of_every_entry_point():
    """The flags live in docs/flags.md (the README links to it), generated from the parsers."""
    with open(os.path.join(REPO, "docs", "flags.md"), encoding="utf-8") as handle:
        page = handle.read()
    assert "<!-- flags:shared -->" in page
    for entry in ENTRY_GROUPS:
        assert f"<!-- flags:{entry} -->" in page, f"docs/flags.md has no flag table for {entry}.py"
    assert flags_page() == page, "docs/flags.md is stale: run python3 tools/readme_flags.py"


def test_each_entry_point_takes_only_the_flags_it_uses(capsys):
    for training_only in ("--polarity_flip", "--lambda_L1", "--n_layers_D", "--lr", "--run_distribute", "--ndf"):
        assert training_only in flags_of("train")
        assert training_only not in flags_of("eval") | flags_of("export"), training_only
    assert "--run_distribute" not in flags_of("predict")
    assert "--n_CC" in flags_of("eval")  # the CC metrics' scales
    # Older commands that pass training flags to eval still run: the flags are ignored, with a note.
    cfg = parse_args("eval", ["--val_data_dir", "v", "--ckpt", "c", "--polarity_flip", "True", "--n_df", "8"])
    assert cfg.val_data_dir == "v" and cfg.polarity_flip is False and cfg.ndf == 64
    assert "eval.py does not use --ndf, --polarity_flip (training flags); ignored" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # a flag no command takes is still argparse's error
        parse_args("eval", ["--val_data_dir", "v", "--ckpt", "c", "--polarity_flop", "True"])


def test_old_names_are_aliases_of_one_vocabulary():
    cfg = parse_args("train", ["--train_data_dir", "d", "--n_gf", "8", "--n_df", "16", "--pad_mode", "REFLECT",
                               "--LAMBDA_L1", "50", "--LAMBDA_Dis", "0.25", "--LAMBDA_GAN", "2"])
    assert (cfg.ngf, cfg.ndf, cfg.padding_type, cfg.lambda_L1, cfg.lambda_D, cfg.lambda_GAN) == \
        (8, 16, "reflection", 50.0, 0.25, 2.0)
    cc = parse_args("train", ["--train_data_dir", "d", "--model", "pix2pixcc", "--lambda_LSGAN", "3"])
    assert cc.lambda_GAN == 3.0
    # A record written with the old names (a checkpoint, a model card) reads in the new ones.
    assert migrate({"n_gf": 8, "pad_mode": "CONSTANT", "LAMBDA_L1": 10}) == \
        {"ngf": 8, "padding_type": "zero", "lambda_L1": 10}


def test_model_dependent_defaults_come_from_the_model():
    pix2pix = parse_args("train", ["--train_data_dir", "d"])
    cc = parse_args("train", ["--train_data_dir", "d", "--model", "pix2pixcc"])
    assert (pix2pix.norm, pix2pix.padding_type, pix2pix.lambda_GAN) == ("batch", "zero", 1.0)
    assert (cc.norm, cc.padding_type, cc.lambda_GAN) == ("instance", "replication", 2.0)


@pytest.mark.parametrize("name", CONFIGS)
def test_every_shipped_config_parses_for_training_and_evaluation(name):
    path = os.path.join(REPO, "configs", name)
    with open(path, encoding="utf-8") as handle:
        values = yaml.safe_load(handle) or {}  # maps.yaml: the defaults are its protocol
    cfg = parse_args("train", ["--config_path", path, "--train_data_dir", "d"])
    for key, value in values.items():
        assert getattr(cfg, key) == value, key
    evaluation = parse_args("eval", ["--config_path", path, "--val_data_dir", "v", "--ckpt", "c"])
    assert evaluation.model == values.get("model", "pix2pix") and not hasattr(build_parser("eval").parse_args(
        ["--val_data_dir", "v", "--ckpt", "c"]), "n_epochs")  # training keys are left to train.py


def test_command_line_overrides_the_config_file_and_file_values_count_as_given(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("crop_size: 64\nload_size: 72\nn_gf: 16\ntrain_data_dir: data/train\n")
    cfg = parse_args("train", ["--config_path", str(path), "--crop_size", "32"])
    assert (cfg.crop_size, cfg.load_size, cfg.ngf, cfg.train_data_dir) == (32, 72, 16, "data/train")
    assert {"crop_size", "load_size", "ngf", "train_data_dir"} <= cfg.given_flags


@pytest.mark.parametrize("text, message", [
    ("crop_sise: 64\n", "unknown flag 'crop_sise'"),
    ("crop_size: -3\n", "crop_size: expected a positive integer"),
    ("norm: group\n", "norm: 'group' is not one of batch, instance"),
    ("- a list\n", "expected flag: value lines"),
    ("crop_size: [1\n", "not valid YAML"),
])
def test_a_bad_config_file_is_one_clear_error(tmp_path, text, message):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError, match=message):
        parse_args("train", ["--config_path", str(path), "--train_data_dir", "d"])
    with pytest.raises(UserError, match="no such file"):
        parse_args("train", ["--config_path", str(tmp_path / "missing.yaml"), "--train_data_dir", "d"])


def test_a_resolved_config_repeats_the_run(tmp_path):
    cfg = parse_args("train", ["--config_path", os.path.join(REPO, "configs", "quickstart.yaml"),
                               "--train_data_dir", "d", "--n_epochs", "3", "--data_format_target", "npy"])
    path = save_resolved_config(cfg, str(tmp_path / CONFIG_FILE))
    again = parse_args("train", ["--config_path", path])
    for action in build_parser("train")._actions:
        if action.option_strings and action.dest not in ("help", "config_path"):
            assert getattr(again, action.dest) == getattr(cfg, action.dest), action.dest
    assert again.no_flip is True and again.epoch_num == cfg.epoch_num  # derived values are written out


def test_settings_fill_every_default():
    cfg = default_config(data_format_target="fits", n_gf=8)
    assert cfg.ngf == 8 and cfg.fits_hdu == "auto" and cfg.bn_stats == "image" and cfg.norm == "batch"
    # Per-model defaults: the weight average is on for pix2pix (measured in bench/QUALITY.md), off for pix2pixCC.
    assert cfg.ema_decay == 0.999 and default_config(model="pix2pixcc").ema_decay == 0.0


def test_epoch_num_defaults_to_the_schedule_length():
    cfg = parse_args("train", ["--train_data_dir", "d", "--n_epochs", "3", "--n_epochs_decay", "2"])
    assert cfg.epoch_num == 5


def test_cpu_refuses_mixed_precision():
    with pytest.raises(UserError, match="needs GPU or Ascend"):
        parse_args("train", ["--train_data_dir", "d", "--amp_level", "O2"])


def test_the_task_configs_set_only_values_that_differ_from_the_defaults():
    """Each default has one home, where its flag is declared: a preset repeats none of them."""
    import yaml
    for name in sorted(os.listdir(os.path.join(REPO, "configs"))):
        with open(os.path.join(REPO, "configs", name), encoding="utf-8") as handle:
            values = migrate(yaml.safe_load(handle) or {})
        model = values.pop("model", None)
        repeated = (["model"] if model == default_config().model else []) + [
            key for key, value in values.items() if getattr(default_config(model=model or "pix2pix"), key) == value]
        assert not repeated, f"configs/{name} repeats defaults: {repeated}"


def test_exactly_the_flags_whose_help_says_derived_get_a_derived_default():
    from src.config.derive import DERIVED_FLAGS
    actions = {action.dest: action for entry in ENTRY_GROUPS for action in build_parser(entry)._actions}
    for model in ("pix2pix", "pix2pixcc"):
        cfg = default_config(model=model)
        filled = {name for name, action in actions.items()
                  if action.default is None and not action.required and getattr(cfg, name, None) is not None}
        assert filled == set(DERIVED_FLAGS), model
    for name in DERIVED_FLAGS:
        assert "default (derived): " in actions[name].help, name
