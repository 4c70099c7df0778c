"""Inference at any size (src/inference.py) and checkpoints that describe themselves: padding and
tiles that reassemble exactly, a large image tiled as it is translated whole with no seam,
eval/export from the checkpoint alone, and the one-line errors of bad sizes and flags."""
import json
import os

import numpy as np
import pytest
import yaml
from PIL import Image

from conftest import run_entry, tiny_train_args, write_ab_folder
from src import checkpoint
from src.config import parse_args
from src.inference import layout_for, make_tiling, network_forward, translate
from src.trained_generator import load_generator, resolve_checkpoint_flags
from src.utils.errors import UserError


@pytest.mark.parametrize("height,width", [(40, 40), (17, 30), (100, 70), (200, 333), (64, 64)])
def test_tiles_reassemble_any_size_exactly(height, width):
    """A pixel-wise 'network' (x2) gives 2 x the image back through padding, tiles and blending;
    tiles start on the size unit and overlap by at least the overlap."""
    tiling = make_tiling(unit=16, tile_size=64, overlap=16)
    image = np.random.default_rng(0).normal(size=(2, height, width)).astype(np.float32)
    seen = []
    prediction = translate([image], lambda batch: seen.append(batch.shape) or batch * 2, 3, tiling)[0]
    assert prediction.shape == image.shape
    assert np.abs(prediction - 2 * image).max() < 1e-5
    assert all(shape[2] % 16 == 0 and shape[3] % 16 == 0 for shape in seen)
    layout = layout_for(height, width, tiling)
    for starts in (layout.tops, layout.lefts):
        assert all(start % 16 == 0 for start in starts)
        assert all(b - a <= 64 - 16 for a, b in zip(starts, starts[1:]))


def test_a_static_graph_gets_tiles_of_exactly_its_size():
    """A graph exported for 64x64 only: small images are padded up to it, large ones tiled by it."""
    tiling = make_tiling(unit=16, tile_size=64, exact=True)
    for height, width in ((40, 50), (40, 150)):
        image = np.random.default_rng(0).normal(size=(1, height, width)).astype(np.float32)
        seen = []
        prediction = translate([image], lambda batch: seen.append(batch.shape) or batch - 1, 2, tiling)[0]
        assert {shape[2:] for shape in seen} == {(64, 64)}
        assert np.abs(prediction - (image - 1)).max() < 1e-5


def test_inference_size_resizes_to_the_square_and_back():
    tiling = make_tiling(unit=16, tile_size=64, inference_size=32)
    image = np.random.default_rng(0).normal(size=(1, 50, 90)).astype(np.float32)
    seen = []
    prediction = translate([image], lambda batch: seen.append(batch.shape) or batch, 1, tiling)[0]
    assert seen == [(1, 1, 32, 32)] and prediction.shape == (1, 50, 90)


@pytest.mark.parametrize("make,message", [
    (lambda: make_tiling(32, 100), "--tile_size 100: must be a multiple of 32"),
    (lambda: make_tiling(32, 64, 32), "--tile_overlap 32: must be below half of --tile_size 64"),
    (lambda: make_tiling(32, 64, inference_size=48), "--inference_size 48: must be a multiple of 32"),
    (lambda: layout_for(0, 10, make_tiling(32, 64), "a.png"), "a.png: empty image (10x0)"),
    (lambda: layout_for(10, 40, make_tiling(32, 64), "a.png"),
     "a.png: 40x10 is less than half the 64x32 this network takes; translate it resized with --inference_size 32"),
])
def test_bad_sizes_are_one_line_errors(make, message):
    with pytest.raises(UserError) as raised:
        make()
    assert str(raised.value).startswith(message) and "\n" not in str(raised.value)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny U-Net (ngf 8, 32 px) trained for 120 steps on a pixel-wise colour map, with 8-bit
    limits that are not the default (so that reading them from the checkpoint matters). After 60
    steps the reference's U-Net (no encoder biases) with the clamped resize still gave a nearly flat
    output on the large image (std 0.077)."""
    root = tmp_path_factory.mktemp("trained")
    data = write_ab_folder(str(root / "ab"), 3, size=40)
    result = run_entry("train.py", [*tiny_train_args(data, str(root / "run")), "--n_epochs", "40",
                                    "--n_epochs_decay", "0", "--save_checkpoint_epochs", "40",
                                    "--print_interval", "20", "--saturation_upper_limit_target", "250"])
    assert result.returncode == 0, result.stderr[-2000:]
    return root, str(root / "run" / "ckpt" / "Generator_40.ckpt"), data


def large_image():
    """A smooth 1024x768 RGB image on the network's scale."""
    coarse = (np.random.default_rng(0).random((24, 32, 3)) * 255).astype(np.uint8)
    image = np.asarray(Image.fromarray(coarse).resize((1024, 768), Image.BICUBIC), np.float32)
    return np.transpose(image, (2, 0, 1)) / 127.5 - 1.0


@pytest.fixture(scope="module")
def tiled_and_whole(trained):
    """Running statistics: with per-image statistics (--bn_stats image) each tile is normalised
    by its own, which differ from the whole image's by design (docs/limitations.md)."""
    cfg = resolve_checkpoint_flags(parse_args("eval", ["--val_data_dir", "x", "--ckpt", trained[1],
                                                       "--bn_stats", "running"]))
    forward, image = network_forward(load_generator(cfg)), large_image()
    tiling = make_tiling(unit=32, tile_size=256, overlap=64)
    whole = translate([image], forward, 1, make_tiling(unit=32, tile_size=1024))[0]
    return translate([image], forward, 4, tiling)[0], whole, layout_for(768, 1024, tiling)


def test_tiled_matches_whole_in_the_interior(tiled_and_whole):
    """1024x768 in 256-px tiles overlapping by 64 vs in one pass, 64 px from the image's edges,
    on the [-1, 1] scale: mean |difference| < 0.02 and 99% of pixels within 0.15 (the tiles see
    less context than the whole image; measured: mean 0.010, 99th percentile 0.07)."""
    tiled, whole, layout = tiled_and_whole
    assert layout.count == 20
    difference = np.abs(tiled - whole)[:, 64:-64, 64:-64]
    assert difference.mean() < 0.02 and np.percentile(difference, 99) < 0.15
    assert whole.std() > 0.1  # the network translates: the bound is not met by a constant output


def test_no_seam_at_tile_borders(tiled_and_whole):
    """The mean |step| between neighbouring pixels across every tile border is no larger than
    across any column (row) that is not a border."""
    tiled, _, layout = tiled_and_whole
    for axis, starts, size in ((2, layout.lefts, layout.tile[1]), (1, layout.tops, layout.tile[0])):
        steps = np.abs(np.diff(tiled, axis=axis)).mean(axis=(0, 3 - axis))
        borders = sorted({start - 1 for start in starts[1:]} | {start + size - 1 for start in starts[:-1]})
        elsewhere = np.delete(steps, borders)
        assert len(borders) >= 4 and steps[borders].max() <= elsewhere.max()


def test_training_writes_its_config_and_the_generator_records_inference_flags(trained):
    root, ckpt, data = trained
    config = yaml.safe_load((root / "run" / "ckpt" / "config.yaml").read_text())
    assert config["train_data_dir"] == data and config["epoch_num"] == 40 and config["norm"] == "batch"
    recorded = checkpoint.read_recorded_config(ckpt)
    assert recorded["ngf"] == 8 and recorded["crop_size"] == 32 and recorded["direction"] == "AtoB"
    assert recorded["saturation_upper_limit_target"] == 250.0 and recorded["data_format_input"] == "image"
    assert "batch_size" not in recorded and "ckpt_dir" not in recorded


def test_eval_and_export_need_only_the_checkpoint(trained, tmp_path):
    root, ckpt, data = trained
    result = run_entry("eval.py", ["--ckpt", ckpt, "--val_data_dir", data, "--batch_size", "2",
                                   "--predict_dir", tmp_path / "pred", "--report_dir", tmp_path / "report"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert Image.open(tmp_path / "pred" / "000.png").size == (40, 40)
    same = run_entry("eval.py", ["--ckpt", ckpt, "--val_data_dir", data, "--crop_size", "32", "--ngf", "8",
                                 "--saturation_upper_limit_target", "250", "--predict_dir", tmp_path / "pred2",
                                 "--report_dir", tmp_path / "report2"])
    assert same.returncode == 0, same.stderr[-2000:]
    assert (tmp_path / "report" / "metrics.csv").read_text() == (tmp_path / "report2" / "metrics.csv").read_text()
    result = run_entry("export.py", ["--ckpt", ckpt, "--file_name", tmp_path / "g"])
    assert result.returncode == 0, result.stderr[-2000:]
    card = json.loads((tmp_path / "g.mindir.json").read_text())
    assert card["input_shape"] == [1, 3, None, None] and card["size_unit"] == 32
    assert card["data"]["saturation_upper_limit_target"] == 250.0


def test_a_contradicting_flag_stops_with_one_line(trained, tmp_path):
    _, ckpt, data = trained
    result = run_entry("eval.py", ["--ckpt", ckpt, "--val_data_dir", data, "--saturation_upper_limit_target", "255",
                                   "--predict_dir", tmp_path / "pred", "--report_dir", tmp_path / "report"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: --saturation_upper_limit_target 255.0 contradicts {ckpt}, which was trained with "
        "--saturation_upper_limit_target 250.0; drop the flag (the checkpoint records it)")
    assert not os.path.exists(tmp_path / "pred") and not os.path.exists(tmp_path / "report")


def test_a_checkpoint_without_records_works_with_flags_and_a_hint(trained, tmp_path):
    _, _, data = trained
    flags = ["--crop_size", "32", "--ngf", "8"]
    cfg = parse_args("eval", ["--val_data_dir", data, "--ckpt", "x", *flags])
    from src.models import registry
    old = str(tmp_path / "old.ckpt")
    checkpoint.save_network(registry.build_generator(cfg), old, {"model": cfg.model, **registry.arch(cfg, "generator")})
    result = run_entry("eval.py", ["--ckpt", old, "--val_data_dir", data, *flags,
                                   "--predict_dir", tmp_path / "pred", "--report_dir", tmp_path / "report"])
    assert result.returncode == 0, result.stderr[-2000:]
    hints = [line for line in result.stderr.splitlines() if line.startswith("note:")]
    assert len(hints) == 1 and "records no training flags" in hints[0]


def test_bn_stats_image_uses_each_images_statistics_and_exports(trained, tmp_path):
    """--bn_stats image differs from the running statistics, is deterministic, and the MINDIR
    exported with it gives the checkpoint's output and says so in its card (batch 1 only)."""
    import mindspore as ms
    from mindspore import Tensor, nn
    _, ckpt, _ = trained
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 96)).astype(np.float32)
    outputs = {}
    for stats in ("running", "image"):
        cfg = resolve_checkpoint_flags(parse_args("eval", ["--val_data_dir", "x", "--ckpt", ckpt, "--bn_stats", stats]))
        netG = load_generator(cfg)
        outputs[stats] = netG(Tensor(x)).asnumpy()
        assert np.array_equal(outputs[stats], netG(Tensor(x)).asnumpy())
    assert np.abs(outputs["running"] - outputs["image"]).mean() > 1e-3
    result = run_entry("export.py", ["--ckpt", ckpt, "--file_name", tmp_path / "g", "--bn_stats", "image"])
    assert result.returncode == 0, result.stderr[-2000:]
    graph = nn.GraphCell(ms.load(str(tmp_path / "g.mindir")))
    assert np.abs(graph(Tensor(x)).asnumpy() - outputs["image"]).max() < 1e-5
    card = json.loads((tmp_path / "g.mindir.json").read_text())
    assert card["bn_stats"] == "image" and card["dropout_at_inference"] is False
    result = run_entry("export.py", ["--ckpt", ckpt, "--file_name", tmp_path / "g2", "--bn_stats", "image",
                                     "--batch_size", "2"])
    assert result.returncode == 2 and "export with --batch_size 1" in result.stderr
    assert not os.path.exists(tmp_path / "g2.mindir")
