"""train.py end to end: outputs, learning, checkpoints, resume, and one-line errors."""
import csv
import json
import os
import signal
import subprocess
import sys
import time

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor
from PIL import Image

from conftest import REPO, run_entry, tiny_train_args, write_ab_folder
from src import checkpoint
from src.config import parse_args
from src.models import registry
from src.utils.errors import UserError


def read_losses(out_dir):
    with open(os.path.join(out_dir, "loss", "losses.csv"), newline="") as handle:
        return list(csv.DictReader(handle))


def ckpt_arrays(path):
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(path).items() if k != "arch"}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One short run shared by the tests that only read its outputs."""
    root = tmp_path_factory.mktemp("trained")
    data = write_ab_folder(str(root / "data"), 4)
    out = str(root / "out")
    result = run_entry("train.py", tiny_train_args(data, out))
    assert result.returncode == 0, result.stderr[-2000:]
    return data, out, result


def test_training_writes_checkpoints_samples_and_loss_curve(trained):
    _, out, result = trained
    for name in ("Generator_1.ckpt", "Discriminator_1.ckpt", "Generator_2.ckpt",
                 "Discriminator_2.ckpt", "resume.json"):
        assert os.path.getsize(os.path.join(out, "ckpt", name)) > 0
    # One resume state, the one resume.json commits: the earlier ones are removed.
    assert [n for n in os.listdir(os.path.join(out, "ckpt")) if n.startswith("train_state")] == [
        os.path.basename(checkpoint.resume_state_path(os.path.join(out, "ckpt")))]
    assert not [n for n in os.listdir(os.path.join(out, "ckpt")) if n.startswith(".")]  # no temp files
    for name in ("epoch_001.png", "epoch_002.png"):
        grid = Image.open(os.path.join(out, "img", name))
        assert grid.size[0] > 3 * 32  # input | generated | target
    assert os.path.getsize(os.path.join(out, "loss", "loss_curve.png")) > 0
    rows = read_losses(out)
    assert [int(r["step"]) for r in rows] == list(range(1, 9))  # 4 pairs x 2 epochs
    assert "s/step" in result.stdout and "ETA" in result.stdout


def test_checkpoint_round_trip_gives_identical_outputs(trained, tmp_path):
    data, out, _ = trained
    cfg = parse_args("train", tiny_train_args(data, str(tmp_path)))
    netG = registry.build_generator(cfg)
    arch = {"model": cfg.model, **registry.arch(cfg, "generator")}
    checkpoint.load_network(netG, os.path.join(out, "ckpt", "Generator_2.ckpt"), arch)
    netG.set_train(False)
    x = Tensor(np.random.default_rng(0).uniform(-1, 1, (1, 3, 32, 32)).astype(np.float32))
    before = netG(x).asnumpy()
    saved = str(tmp_path / "again.ckpt")
    checkpoint.save_network(netG, saved, arch)
    reloaded = registry.build_generator(cfg)
    checkpoint.load_network(reloaded, saved, arch)
    reloaded.set_train(False)
    np.testing.assert_array_equal(before, reloaded(x).asnumpy())


def test_checkpoint_of_another_architecture_is_named(trained, tmp_path):
    data, out, _ = trained
    cfg = parse_args("train", tiny_train_args(data, str(tmp_path), "--ngf", "16", "--norm", "instance"))
    netG = registry.build_generator(cfg)
    with pytest.raises(UserError, match=r"ngf=8 \(this run: 16\).*norm=batch \(this run: instance\)"):
        checkpoint.load_network(netG, os.path.join(out, "ckpt", "Generator_2.ckpt"),
                                {"model": cfg.model, **registry.arch(cfg, "generator")})


def test_losses_fall_on_a_learnable_toy_task(tmp_path):
    data = write_ab_folder(str(tmp_path / "data"), 4)
    out = str(tmp_path / "out")
    result = run_entry("train.py", tiny_train_args(
        data, out, "--n_epochs", "25", "--n_epochs_decay", "0", "--lr", "0.001", "--no_flip", "True",
        "--print_interval", "25", "--tensorboard_dir", ""))
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(out)) == ["ckpt", "img", "loss"]  # --tensorboard_dir '': no event files
    rows = read_losses(out)
    assert len(rows) == 100
    l1 = np.array([float(r["loss_G_L1"]) for r in rows])
    loss_G = np.array([float(r["loss_G"]) for r in rows])
    assert l1[-10:].mean() < 0.5 * l1[:10].mean()
    assert loss_G[-10:].mean() < loss_G[:10].mean()


def assert_same_final_state(straight, resumed):
    final_a = ckpt_arrays(checkpoint.resume_state_path(os.path.join(straight, "ckpt")))
    final_b = ckpt_arrays(checkpoint.resume_state_path(os.path.join(resumed, "ckpt")))
    assert final_a.keys() == final_b.keys()
    for name in final_a:
        np.testing.assert_array_equal(final_a[name], final_b[name], err_msg=name)
    assert read_losses(straight) == read_losses(resumed)


def test_resume_after_a_stop_at_an_epoch_boundary(tmp_path):
    data = write_ab_folder(str(tmp_path / "data"), 4)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    assert run_entry("train.py", tiny_train_args(data, straight)).returncode == 0
    first = run_entry("train.py", tiny_train_args(data, resumed, "--epoch_num", "1"))
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_entry("train.py", tiny_train_args(data, resumed, "--resume", "True"))
    assert second.returncode == 0, second.stderr[-2000:]
    assert "starting at step 4" in second.stdout
    assert_same_final_state(straight, resumed)


def test_resume_after_a_kill_mid_epoch(tmp_path):
    """SIGKILL a run after it saved a mid-epoch resume state; the resumed run ends identical."""
    data = write_ab_folder(str(tmp_path / "data"), 12)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    args = ["--save_checkpoint_steps", "5"]
    assert run_entry("train.py", tiny_train_args(data, straight, *args)).returncode == 0
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "train.py"),
                                *tiny_train_args(data, resumed, *args)], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = os.path.join(resumed, "ckpt", "resume.json")
    deadline = time.time() + 300
    while not os.path.exists(record) and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with open(record) as handle:
        saved_step = json.load(handle)["step"]
    assert saved_step == 5, "the run was not killed mid-epoch; the test machine is too slow"
    second = run_entry("train.py", tiny_train_args(data, resumed, "--resume", "True", *args))
    assert second.returncode == 0, second.stderr[-2000:]
    assert "starting at step 5" in second.stdout
    assert_same_final_state(straight, resumed)


def corrupt_folder(folder):
    write_ab_folder(folder, 2)
    with open(os.path.join(folder, "001.png"), "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n this is not an image")


def odd_width_ab_folder(folder):
    write_ab_folder(folder, 2)
    Image.new("RGB", (81, 40)).save(os.path.join(folder, "001.png"))  # no middle to split at


BAD_INPUTS = {
    "missing dir": (lambda d: None, [], "no such folder"),
    "empty dir": (lambda d: os.makedirs(d), [], "no AB images"),
    "odd AB width": (odd_width_ab_folder, [], "001.png: an AB image is two equal halves side by side, so its "
                     "width must be even; this one is 81x40"),
    "corrupt image": (corrupt_folder, [], "not a readable image"),
    "crop > load": (lambda d: write_ab_folder(d, 2), ["--crop_size", "64", "--load_size", "36"],
                    "larger than --load_size"),
    "bad crop size": (lambda d: write_ab_folder(d, 2), ["--crop_size", "48", "--load_size", "48"],
                      "multiple of 32"),
    "bad flag value": (lambda d: write_ab_folder(d, 2), ["--resume", "maybe"], "expected True or False"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_one_line_and_overwrites_nothing(tmp_path, case):
    make, extra, message = BAD_INPUTS[case]
    data = str(tmp_path / "data")
    make(data)
    out = str(tmp_path / "out")
    os.makedirs(os.path.join(out, "ckpt"))
    keep = os.path.join(out, "ckpt", "Generator_1.ckpt")
    with open(keep, "w") as handle:
        handle.write("previous run")
    result = run_entry("train.py", tiny_train_args(data, out, *extra))
    assert result.returncode == 2
    error_lines = [line for line in result.stderr.splitlines() if "error" in line.lower()]
    assert len(error_lines) == 1 and message in error_lines[0], result.stderr[-1500:]
    assert "Traceback" not in result.stderr
    with open(keep) as handle:
        assert handle.read() == "previous run"
    assert not os.path.exists(os.path.join(out, "loss"))


def test_help_explains_every_flag():
    result = run_entry("train.py", ["--help"])
    assert result.returncode == 0
    for flag in ("--train_data_dir", "--crop_size", "--LAMBDA_L1", "--resume", "--run_distribute"):
        assert flag in result.stdout


def test_ema_weights_go_to_the_generator_checkpoint_and_survive_a_resume(tmp_path):
    """--ema_decay: Generator_<epoch>.ckpt holds the average (not the last weights), the resume
    state holds both, and a run resumed at an epoch boundary ends identical to a straight one."""
    data = write_ab_folder(str(tmp_path / "data"), 4)
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    ema = ("--ema_decay", "0.5")
    assert run_entry("train.py", tiny_train_args(data, straight, *ema)).returncode == 0
    first = run_entry("train.py", tiny_train_args(data, resumed, "--epoch_num", "1", *ema))
    assert first.returncode == 0, first.stderr[-2000:]
    second = run_entry("train.py", tiny_train_args(data, resumed, "--resume", "True", *ema))
    assert second.returncode == 0, second.stderr[-2000:]
    assert_same_final_state(straight, resumed)
    state = ckpt_arrays(checkpoint.resume_state_path(os.path.join(straight, "ckpt")))
    generator = {k: v.asnumpy() for k, v in ms.load_checkpoint(os.path.join(straight, "ckpt", "Generator_2.ckpt")).items()
                 if k.startswith("netG.")}
    assert state["ema.updates"] == 8
    weights = list(generator)
    assert weights and all(np.array_equal(generator[n], state["ema." + n]) for n in weights)
    assert not all(np.array_equal(generator[n], state[n]) for n in weights)
