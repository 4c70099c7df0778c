"""TensorBoard logs of train.py, read back with TensorBoard's own event reader: the curves, the
sample grid, the flags and hparams of a short run, and a resumed run's logs reading as one run's."""
import os

import numpy as np
import pytest
from tensorboard.backend.event_processing import event_accumulator, plugin_event_accumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from conftest import run_entry, tiny_train_args, write_ab_folder
from src.config import parse_args
from src.dataset.collages import LABEL_BAND
from src.utils.tensorboard_log import TrainingBoard

LOSSES = ["loss_D", "loss_G", "loss_D_real", "loss_D_fake", "loss_G_GAN", "loss_G_L1"]
METRICS = ["L1", "MSE", "PSNR", "SSIM", "CC"]
KEEP_ALL = {"scalars": 0, "images": 0, "tensors": 0}


def board_args(data, val, out, *extra):
    """4 pairs x 2 epochs = 8 steps, a point every 2 steps, validation at each epoch's end."""
    return tiny_train_args(data, out, "--val_data_dir", val, "--print_interval", "2", *extra)


def read_board(directory):
    reader = event_accumulator.EventAccumulator(directory, size_guidance=KEEP_ALL)
    reader.Reload()
    return reader


def curves(reader):
    """{tag: [(step, value)]} of every scalar, and {tag: [(step, width, height)]} of every image."""
    tags = reader.Tags()
    return ({tag: [(e.step, e.value) for e in reader.Scalars(tag)] for tag in tags["scalars"]},
            {tag: [(e.step, e.width, e.height) for e in reader.Images(tag)] for tag in tags["images"]})


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("board")
    return write_ab_folder(str(root / "train"), 4), write_ab_folder(str(root / "val"), 2, seed=1), root


@pytest.fixture(scope="module")
def straight(data):
    train, val, root = data
    out = str(root / "straight")
    result = run_entry("train.py", board_args(train, val, out))
    assert result.returncode == 0, result.stderr[-2000:]
    return os.path.join(out, "tensorboard")


def test_a_short_run_logs_every_curve_the_sample_grid_and_its_flags(straight):
    assert len(os.listdir(straight)) == 1  # one event file, beside ckpt/, img/ and loss/ by default
    reader = read_board(straight)
    scalars, images = curves(reader)
    every_point, epoch_ends = [2, 4, 6, 8], [4, 8]
    expected = {**{f"loss/{name}": every_point for name in LOSSES}, "lr/G": every_point, "lr/D": every_point,
                "time/seconds_per_step": every_point, **{f"val/{name}": epoch_ends for name in METRICS}}
    assert {tag: [step for step, _ in points] for tag, points in scalars.items()} == expected
    assert [value for _, value in scalars["lr/G"]] == pytest.approx([2e-4, 2e-4, 1e-4, 1e-4])  # linear decay
    assert all(0 < value < 60 for _, value in scalars["time/seconds_per_step"])
    grid = (4, 3 * 32 + 2 * 4, LABEL_BAND + 32)  # input | generated | target, under their labels
    assert images == {"samples": [grid, (8, *grid[1:])]}
    config, = reader.Tensors("config/text_summary")
    assert config.step == 0 and "    crop_size: 32" in config.tensor_proto.string_val[0].decode()

    plugin_reader = plugin_event_accumulator.EventAccumulator(straight, size_guidance=KEEP_ALL)
    plugin_reader.Reload()
    content = plugin_reader.PluginTagToContent("hparams")
    experiment = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/experiment"]).experiment
    assert [metric.name.tag for metric in experiment.metric_infos] == [f"val/{name}" for name in METRICS]
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    assert start.hparams["crop_size"].number_value == 32 and start.hparams["model"].string_value == "pix2pix"
    assert start.hparams["ema_decay"].number_value == pytest.approx(0.999)


def test_a_killed_and_resumed_run_logs_as_one_run(data, straight, tmp_path):
    """Stop after epoch 1; a killed run's events past that resume state (other values) are on disk;
    the resumed run purges them: the event files read back as the straight run's curves."""
    train, val, _ = data
    out = str(tmp_path / "resumed")
    first = run_entry("train.py", board_args(train, val, out, "--epoch_num", "1"))
    assert first.returncode == 0, first.stderr[-2000:]
    board_dir = os.path.join(out, "tensorboard")
    killed = TrainingBoard(board_dir, 4)  # what a process killed after step 8 had written past step 4
    for step in (6, 8):
        killed.progress(step, dict.fromkeys(LOSSES, 99.0), {"G": 1.0, "D": 1.0}, 99.0)
    killed.validation(8, dict.fromkeys(METRICS, 99.0))
    killed.samples(8, np.zeros((8, 8, 3), np.uint8))
    killed.close()
    second = run_entry("train.py", board_args(train, val, out, "--resume", "True"))
    assert second.returncode == 0, second.stderr[-2000:]
    assert len(os.listdir(board_dir)) == 3
    (resumed_scalars, resumed_images), (straight_scalars, straight_images) = (
        curves(read_board(board_dir)), curves(read_board(straight)))
    assert resumed_images == straight_images
    assert resumed_scalars.keys() == straight_scalars.keys()
    for tag, points in straight_scalars.items():
        assert [step for step, _ in resumed_scalars[tag]] == [step for step, _ in points], tag
        if not tag.startswith("time/"):  # training is deterministic; timings are not
            assert resumed_scalars[tag] == pytest.approx(points), tag


def test_tensorboard_dir_defaults_beside_the_loss_folder_and_empty_turns_it_off(tmp_path):
    """The flag alone: an empty value reaches the trainer as '' (which writes nothing; the
    learnable-toy run of test_train checks that no folder appears)."""
    default = parse_args("train", tiny_train_args("data", str(tmp_path)))
    assert default.tensorboard_dir == os.path.join(str(tmp_path), "tensorboard")
    assert parse_args("train", tiny_train_args("data", str(tmp_path), "--tensorboard_dir", "")).tensorboard_dir == ""
    assert parse_args("train", ["--train_data_dir", "d"]).tensorboard_dir == os.path.join("results", "tensorboard")


def test_flush_puts_every_event_on_disk(tmp_path):
    """The trainer flushes before it saves a resume state: the events up to it must then be in the
    file, not in a queue that a kill loses (tensorboardX's SummaryWriter.flush leaves them queued)."""
    board = TrainingBoard(str(tmp_path), 0)
    for step in (1, 2, 3):
        board.progress(step, {"loss_G": float(step)}, {"G": 1.0, "D": 1.0}, 0.5)
    board.flush()
    scalars, _ = curves(read_board(str(tmp_path)))  # read while the writer is still open
    assert scalars["loss/loss_G"] == [(1, 1.0), (2, 2.0), (3, 3.0)]
    board.close()
