"""The flags: one parser module, documented in the README, checked with clear errors."""
import os

import pytest

from conftest import REPO
from src.utils.config import ENTRY_GROUPS, parse_args, readme_with_flag_tables
from src.utils.errors import UserError


def test_readme_documents_every_flag_of_every_entry_point():
    with open(os.path.join(REPO, "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    for entry in ENTRY_GROUPS:
        assert f"<!-- flags:{entry} -->" in readme, f"README has no flag table for {entry}.py"
    assert readme_with_flag_tables(readme) == readme, \
        "README flag tables are stale: run `python -m src.utils.config`"


def test_epoch_num_defaults_to_the_schedule_length():
    cfg = parse_args("train", ["--train_data_dir", "d", "--n_epochs", "3", "--n_epochs_decay", "2"])
    assert cfg.epoch_num == 5


def test_cpu_refuses_mixed_precision():
    with pytest.raises(UserError, match="needs GPU or Ascend"):
        parse_args("train", ["--train_data_dir", "d", "--amp_level", "O2"])
