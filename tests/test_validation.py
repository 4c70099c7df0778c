"""Validation during training: the table, the best checkpoint, resume, and the D-wins warning."""
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

from conftest import REPO, run_entry, tiny_train_args, write_ab_folder
from src.trainer import DiscriminatorWatch

VAL_FLAGS = ["--n_epochs", "3", "--n_epochs_decay", "0", "--lr", "0.001"]


def read_csv(path):
    with open(path, newline="") as handle:
        return list(csv.DictReader(handle))


def read_json(path):
    with open(path) as handle:
        return json.load(handle)


def ckpt_arrays(path):
    import mindspore as ms
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(path).items() if k not in ("arch", "config")}


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("val")
    return write_ab_folder(str(root / "train"), 4), write_ab_folder(str(root / "val"), 3, size=48, seed=1)


@pytest.mark.parametrize("average", [[], ["--ema_decay", "0.9"]], ids=["weights", "weight average"])
def test_each_epoch_is_validated_and_the_best_generator_kept(data, tmp_path, average):
    """With --ema_decay, validation scores and keeps the weight average, as checkpoints hold it."""
    train, val = data
    out = str(tmp_path / "out")
    result = run_entry("train.py", tiny_train_args(train, out, "--val_data_dir", val, *VAL_FLAGS, *average))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_csv(os.path.join(out, "loss", "val_metrics.csv"))
    assert [(r["epoch"], r["step"]) for r in rows] == [("1", "4"), ("2", "8"), ("3", "12")]
    assert set(rows[0]) == {"epoch", "step", "L1", "MSE", "PSNR", "SSIM", "CC"}
    assert os.path.getsize(os.path.join(out, "loss", "val_curve.png")) > 0
    record = read_json(os.path.join(out, "ckpt", "Generator_best.json"))
    best_row = min(rows, key=lambda r: float(r["L1"]))
    assert record["metric"] == "L1" and record["epoch"] == int(best_row["epoch"])
    assert record["value"] == pytest.approx(float(best_row["L1"]), rel=1e-5)
    # eval.py on the best checkpoint, the same images at their own 48-px size, finds the same L1.
    report = str(tmp_path / "report")
    evaluated = run_entry("eval.py", ["--val_data_dir", val, "--ckpt", os.path.join(out, "ckpt", "Generator_best.ckpt"),
                                      "--predict_dir", str(tmp_path / "pred"), "--report_dir", report])
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert read_json(os.path.join(report, "summary.json"))["L1"]["mean"] == pytest.approx(record["value"], rel=1e-5)
    # The best is the weights Generator_<epoch>.ckpt of that epoch holds (the average, with EMA).
    best = ms.load_checkpoint(os.path.join(out, "ckpt", "Generator_best.ckpt"))
    same_epoch = ms.load_checkpoint(os.path.join(out, "ckpt", f"Generator_{record['epoch']}.ckpt"))
    assert set(best) == set(same_epoch)
    for name in best:
        if name not in ("arch", "config"):
            np.testing.assert_array_equal(best[name].asnumpy(), same_epoch[name].asnumpy(), err_msg=name)


def test_validation_every_second_epoch_and_at_the_last(data, tmp_path):
    train, val = data
    out = str(tmp_path / "out")
    result = run_entry("train.py", tiny_train_args(train, out, "--val_data_dir", val, "--val_interval", "2",
                                                   "--best_metric", "SSIM", *VAL_FLAGS))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_csv(os.path.join(out, "loss", "val_metrics.csv"))
    assert [r["epoch"] for r in rows] == ["2", "3"]
    record = read_json(os.path.join(out, "ckpt", "Generator_best.json"))
    assert record["metric"] == "SSIM"
    assert record["value"] == pytest.approx(max(float(r["SSIM"]) for r in rows), rel=1e-5)


def test_a_killed_and_resumed_run_keeps_the_same_history_and_best(data, tmp_path):
    """Killed mid-epoch 2 (after epoch 1's validation), resumed: val_metrics.csv, the best record
    and the best checkpoint equal those of a run never stopped."""
    train, val = data
    straight, resumed = str(tmp_path / "straight"), str(tmp_path / "resumed")
    args = ["--val_data_dir", val, "--save_checkpoint_steps", "6", *VAL_FLAGS]
    assert run_entry("train.py", tiny_train_args(train, straight, *args)).returncode == 0
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "train.py"), *tiny_train_args(train, resumed, *args)],
                               cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = os.path.join(resumed, "ckpt", "resume.json")
    deadline = time.time() + 300

    def saved_step():
        try:
            return read_json(record)["step"]
        except (OSError, ValueError):
            return 0

    while saved_step() < 6 and process.poll() is None and time.time() < deadline:
        time.sleep(0.005)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert saved_step() == 6, "the run was not killed mid-epoch 2; the test machine is too slow"
    assert len(read_csv(os.path.join(resumed, "loss", "val_metrics.csv"))) == 1
    second = run_entry("train.py", tiny_train_args(train, resumed, "--resume", "True", *args))
    assert second.returncode == 0, second.stderr[-2000:]
    assert "starting at step 6" in second.stdout
    for name in (("loss", "val_metrics.csv"), ("ckpt", "Generator_best.json")):
        with open(os.path.join(straight, *name)) as a, open(os.path.join(resumed, *name)) as b:
            assert a.read() == b.read(), name
    best_a = ckpt_arrays(os.path.join(straight, "ckpt", "Generator_best.ckpt"))
    best_b = ckpt_arrays(os.path.join(resumed, "ckpt", "Generator_best.ckpt"))
    assert best_a.keys() == best_b.keys()
    for name in best_a:
        np.testing.assert_array_equal(best_a[name], best_b[name], err_msg=name)


@pytest.mark.parametrize("extra, message", [
    (["--val_interval", "2"], "--val_interval 2 needs --val_data_dir"),
    (["--best_metric", "MAE_phys"], "physical metrics need array targets"),
])
def test_validation_flag_mistakes_give_one_line(data, tmp_path, extra, message):
    result = run_entry("train.py", tiny_train_args(data[0], str(tmp_path / "out"), *extra))
    assert result.returncode == 2
    assert message in result.stderr and "Traceback" not in result.stderr


def test_the_discriminator_warning_comes_once_after_a_run_of_wins():
    watch = DiscriminatorWatch("vanilla", patience=3)
    confident, unsure = (0.01, 0.02), (0.01, 0.5)
    seen = [watch.update(step, *losses) for step, losses in
            enumerate([confident, confident, unsure, confident, confident, confident, confident], 1)]
    assert [step for step, warning in enumerate(seen, 1) if warning] == [6]  # 3 in a row from step 4
    assert "won for 3 steps in a row" in seen[5]
    lsgan = DiscriminatorWatch("lsgan", patience=1)
    assert lsgan.update(1, 0.05, 0.05) is None and lsgan.update(2, 0.005, 0.001)


def test_array_targets_are_validated_in_physical_units_and_kept_by_cc(tmp_path):
    """pix2pixCC on FITS magnetograms with missing corners: the physical and per-scale metrics
    are in the table, and the best checkpoint follows CC (higher is better) by default."""
    from test_fits import MAGNETOGRAM, magnetogram_folder
    train = magnetogram_folder(str(tmp_path / "train"), 4)
    val = magnetogram_folder(str(tmp_path / "val"), 2, seed=9)
    out = str(tmp_path / "out")
    flags = ["--model", "pix2pixcc", "--n_gf", "8", "--n_df", "8", "--n_residual", "1", "--n_downsample", "2",
             "--n_CC", "2", "--val_data_dir", val, *MAGNETOGRAM]
    result = run_entry("train.py", tiny_train_args(train, out, *flags))
    assert result.returncode == 0, result.stderr[-2000:]
    rows = read_csv(os.path.join(out, "loss", "val_metrics.csv"))
    assert len(rows) == 2
    for column in ("CC", "CC_scale0", "CC_scale1", "MAE_phys", "RMSE_phys", "CC_phys", "counted_fraction"):
        assert column in rows[0]
    assert float(rows[0]["counted_fraction"]) == pytest.approx(1 - 9 / 1600)  # the 3x3 NaN corner
    record = read_json(os.path.join(out, "ckpt", "Generator_best.json"))
    assert record["metric"] == "CC"
    assert record["value"] == pytest.approx(max(float(r["CC"]) for r in rows), rel=1e-5)
