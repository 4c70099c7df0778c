"""import_pytorch.py: the PyTorch reference's checkpoints, imported, give the reference's outputs.

The fixtures in tests/data/pytorch/ were made once by the reference's own networks with torch
(tools/reference_networks.py; its docstring has the commands): each folder holds a generator and a
discriminator state dict as .npz (read without torch), an input and the reference's outputs in both
batch-norm modes. tools/check_pytorch_import.py checks the full-size unet_256 the same way.
"""
import os
import sys

import mindspore as ms
import numpy as np
import pytest
import yaml

from conftest import REPO, run_entry, tiny_train_args, write_ab_folder
from src.config import parse_args
from src.pytorch_import import DISCRIMINATOR_FILE, GENERATOR_FILE, import_checkpoints
from src.utils.errors import UserError

sys.path.insert(0, os.path.join(REPO, "tools"))
from check_pytorch_import import TOLERANCE, differences  # noqa: E402

FIXTURES = os.path.join(REPO, "tests", "data", "pytorch")
BATCH, INSTANCE = os.path.join(FIXTURES, "unet6_batch"), os.path.join(FIXTURES, "unet5_instance")


def imported(fixture, out_dir, *extra):
    return import_checkpoints(parse_args("import_pytorch", [
        "--pth", os.path.join(fixture, "G.npz"), "--pth_D", os.path.join(fixture, "D.npz"),
        "--out_dir", str(out_dir), *extra]))


@pytest.fixture(scope="module")
def batch_norm_import(tmp_path_factory):
    """import_pytorch.py run as users run it, on the batch-norm U-Net of 6 levels."""
    out_dir = tmp_path_factory.mktemp("imported")
    result = run_entry("import_pytorch.py", ["--pth", os.path.join(BATCH, "G.npz"), "--pth_D",
                                             os.path.join(BATCH, "D.npz"), "--out_dir", out_dir])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "U-Net of 6 levels, ngf 8, 3 -> 3 channels, batch norm, training size 64" in result.stdout
    return out_dir


def test_imported_batch_norm_unet_gives_the_references_outputs_in_checkpoint_mindir_and_onnx(batch_norm_import,
                                                                                               tmp_path):
    found = differences(os.path.join(BATCH, "io.npz"), batch_norm_import, tmp_path)
    assert len(found) == 6  # G running (checkpoint, MINDIR, ONNX), G per-image, D both ways
    assert max(found.values()) <= TOLERANCE, found


def test_imported_instance_norm_unet_gives_the_references_outputs(tmp_path):
    imported(INSTANCE, tmp_path)
    found = differences(os.path.join(INSTANCE, "io.npz"), tmp_path, tmp_path, exports=False)
    assert max(found.values()) <= TOLERANCE, found


def test_imported_checkpoint_records_what_inference_and_fine_tuning_need(batch_norm_import):
    from src.checkpoint import read_recorded_config
    recorded = read_recorded_config(os.path.join(batch_norm_import, GENERATOR_FILE))
    assert {key: recorded[key] for key in ("model", "upsample", "crop_size", "ngf", "norm", "dropout",
                                           "direction", "padding_type")} == {
        "model": "pix2pix", "upsample": "transpose", "crop_size": 64, "ngf": 8, "norm": "batch", "dropout": True,
        "direction": "AtoB", "padding_type": "zero"}


def test_flags_set_what_a_state_dict_cannot_tell(tmp_path):
    from src.checkpoint import read_recorded_config
    path, _ = imported(BATCH, tmp_path, "--dropout", "False", "--direction", "BtoA")
    recorded = read_recorded_config(path)
    assert (recorded["dropout"], recorded["direction"]) == (False, "BtoA")


def test_train_fine_tunes_an_imported_model_from_its_weights_and_flags(batch_norm_import, tmp_path):
    """train.py --pretrained_G/--pretrained_D takes the checkpoint's architecture and size without
    flags, and starts from its weights: at a vanishing rate they come out unchanged."""
    data = write_ab_folder(str(tmp_path / "ab"), 1, size=64)
    args = tiny_train_args(data, str(tmp_path / "run"), "--lr", "1e-12", "--n_epochs_decay", "0",
                           "--pretrained_G", os.path.join(batch_norm_import, GENERATOR_FILE),
                           "--pretrained_D", os.path.join(batch_norm_import, DISCRIMINATOR_FILE))
    for flag in ("--crop_size", "--ngf", "--ndf"):  # the checkpoint says these
        index = args.index(flag)
        del args[index:index + 2]
    result = run_entry("train.py", args + ["--load_size", "72"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert "generator: starting from" in result.stdout and "discriminator: starting from" in result.stdout
    config = yaml.safe_load((tmp_path / "run" / "ckpt" / "config.yaml").read_text())
    assert (config["crop_size"], config["upsample"], config["ngf"], config["ndf"]) == (64, "transpose", 8, 8)
    for name, start in (("Generator", GENERATOR_FILE), ("Discriminator", DISCRIMINATOR_FILE)):
        before = ms.load_checkpoint(os.path.join(batch_norm_import, start))
        after = ms.load_checkpoint(str(tmp_path / "run" / "ckpt" / f"{name}_1.ckpt"))
        weights = [key for key in before if key.endswith(".weight")]
        assert weights and all(np.allclose(after[key].asnumpy(), before[key].asnumpy(), atol=1e-6)
                               for key in weights)


def test_train_names_the_flag_that_contradicts_a_pretrained_generator(batch_norm_import, tmp_path):
    data = write_ab_folder(str(tmp_path / "ab"), 1, size=64)
    result = run_entry("train.py", tiny_train_args(data, str(tmp_path / "run"), "--pretrained_G",
                                                   os.path.join(batch_norm_import, GENERATOR_FILE)))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "--pretrained_G" in result.stderr
    assert "another architecture: unet_depth=6 (this run: 5)" in result.stderr


def truncated(tmp_path):
    data = open(os.path.join(BATCH, "G.npz"), "rb").read()
    path = tmp_path / "half.npz"
    path.write_bytes(data[:len(data) // 2])
    return str(path)


def without_torch(tmp_path, monkeypatch):
    path = tmp_path / "latest_net_G.pth"
    path.write_bytes(b"PK\x03\x04")
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    return str(path)


@pytest.mark.parametrize("pth, pth_D, message", [
    (os.path.join(BATCH, "resnet_G.npz"), None, "a ResNet generator"),
    (os.path.join(BATCH, "D.npz"), None, "pass it with --pth_D"),
    (os.path.join(BATCH, "G.npz"), os.path.join(BATCH, "G.npz"), "not the state dict of the reference's PatchGAN"),
    (os.path.join(BATCH, "G.npz"), os.path.join(INSTANCE, "D.npz"), "not the same model's D"),
    (truncated, None, "not a readable .npz"),
    ("missing_net_G.pth", None, "no such file"),
    (without_torch, None, "needs torch, which is not installed: pip install torch"),
])
def test_import_refuses_what_it_cannot_map_with_one_line(pth, pth_D, message, tmp_path, monkeypatch):
    if callable(pth):
        pth = pth(tmp_path, monkeypatch) if pth is without_torch else pth(tmp_path)
    args = ["--pth", pth, "--out_dir", str(tmp_path / "out")] + (["--pth_D", pth_D] if pth_D else [])
    with pytest.raises(UserError, match=message) as error:
        import_checkpoints(parse_args("import_pytorch", args))
    assert "\n" not in str(error.value)
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")


def test_import_entry_point_exits_2_with_one_line(tmp_path):
    result = run_entry("import_pytorch.py", ["--pth", os.path.join(BATCH, "resnet_G.npz"), "--out_dir", tmp_path])
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ") and result.stderr.strip().count("\n") == 0
