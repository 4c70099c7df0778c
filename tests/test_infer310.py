"""The Ascend 310 flow: the C++ harness library and its unit tests, the .bin contract between
Python and C++, and preprocess -> device step -> postprocess giving eval.py's predictions."""
import json
import os
import subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import REPO, run_entry, write_ab_folder
from src import checkpoint
from src.config import default_config, parse_args
from src.dataset.pairs import find_pairs, load_input
from src.infer310 import latency_report, read_bin, result_name, write_bin, write_manifest
from src.inference import layout_for, make_tiling, split
from src.model_card import card_config, read_model_card
from src.models import registry

MODELS = {
    "pix2pix": ["--crop_size", "32", "--ngf", "8"],
    "pix2pixcc": ["--model", "pix2pixcc", "--crop_size", "32", "--n_gf", "8", "--n_downsample", "2",
                  "--n_residual", "1"],
}


@pytest.fixture(scope="module")
def harness(tmp_path_factory):
    """ascend310_infer built by its build.sh (library, bin_copy, unit tests; no main here)."""
    build = tmp_path_factory.mktemp("harness") / "build"
    result = subprocess.run(["bash", os.path.join(REPO, "ascend310_infer", "build.sh"), str(build)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return build, result.stdout


@pytest.fixture(scope="module", params=sorted(MODELS))
def exported(request, tmp_path_factory):
    """(model flags, checkpoint, MINDIR exported with batch 1, a folder of AB pairs)."""
    flags = MODELS[request.param]
    root = tmp_path_factory.mktemp(request.param)
    cfg = parse_args("eval", ["--val_data_dir", "x", "--ckpt", "x", *flags])
    netG = registry.build_generator(cfg)
    ckpt = str(root / "Generator_1.ckpt")
    checkpoint.save_network(netG, ckpt, {"model": cfg.model, **registry.arch(cfg, "generator")})
    result = run_entry("export.py", ["--ckpt", ckpt, *flags, "--file_name", root / "g", "--batch_size", "1"])
    assert result.returncode == 0, result.stderr[-2000:]
    data = write_ab_folder(str(root / "ab"), 3, size=40)
    return flags, ckpt, str(root / "g.mindir"), data


def test_harness_library_builds_and_its_unit_tests_pass(harness):
    build, output = harness
    assert "100% tests passed" in output
    assert os.access(build / "bin_copy", os.X_OK)
    # main needs MindSpore's C++ API, which the pip package does not ship: build.sh says so.
    assert not (build / "main").exists() and "main skipped" in output


def test_python_and_cpp_agree_on_bin_files_bit_for_bit(harness, tmp_path):
    """preprocess's writer -> C++ reader/writer (bin_copy) -> postprocess's reader keeps every bit,
    including NaN payloads, signed zeros, infinities and subnormals."""
    build, _ = harness
    rng = np.random.default_rng(0)
    arrays = {"a.bin": rng.standard_normal((1, 3, 8, 8)).astype(np.float32),
              "b.bin": np.array([np.nan, -0.0, np.inf, -np.inf, 1e-45, -3.4e38], np.float32).reshape(1, 1, 2, 3)}
    for name, array in arrays.items():
        write_bin(str(tmp_path / name), array)
    write_manifest(str(tmp_path / "manifest.tsv"), [(name, array.shape) for name, array in arrays.items()])
    result = subprocess.run([str(build / "bin_copy"), "--input0_path", str(tmp_path), "--output_dir",
                             str(tmp_path / "out"), "--time_dir", str(tmp_path / "time")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for name, array in arrays.items():
        assert (tmp_path / "out" / result_name(name)).read_bytes() == (tmp_path / name).read_bytes()
        back = read_bin(str(tmp_path / "out" / result_name(name)), array.shape)
        assert np.array_equal(back.view(np.uint32), array.view(np.uint32))
    report = (tmp_path / "time" / "test_perform_static.txt").read_text()
    assert report.splitlines()[0] == "images: 2" and len(report.splitlines()) == 5


def test_cpp_reports_a_wrong_size_bin_in_one_line(harness, tmp_path):
    build, _ = harness
    write_bin(str(tmp_path / "a.bin"), np.zeros((1, 3, 4, 4), np.float32))
    write_manifest(str(tmp_path / "manifest.tsv"), [("a.bin", (1, 3, 8, 8))])
    result = subprocess.run([str(build / "bin_copy"), "--input0_path", str(tmp_path), "--output_dir",
                             str(tmp_path / "out")], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.strip() == f"error: {tmp_path / 'a.bin'}: 192 bytes, expected 768 (float32 1x3x8x8)"
    assert not os.listdir(tmp_path / "out")


def test_latency_report_has_the_cpp_format():
    # The same string the C++ unit test expects from FormatPerformanceReport({1, 2, 3}).
    assert latency_report([1, 2, 3]) == ("images: 3\nmean_ms_per_image: 2.000\np50_ms_per_image: 2.000\n"
                                         "p95_ms_per_image: 2.900\ntotal_ms: 6.000\n")


def test_preprocess_writes_what_eval_feeds_the_network(exported, tmp_path):
    flags, _, mindir, data = exported
    result = run_entry("preprocess.py", ["--mindir", mindir, "--dataset_path", data, "--output_path", tmp_path])
    assert result.returncode == 0, result.stderr[-2000:]
    cfg = card_config(read_model_card(mindir))
    lines = (tmp_path / "manifest.tsv").read_text().splitlines()
    assert lines[0] == "file\tdtype\tshape" and len(lines) == 4
    channels = cfg.input_nc
    # 40 px is reflect-padded to a multiple of the size unit: 64 for the U-Net, 40 for pix2pixCC's 4
    layout = layout_for(40, 40, make_tiling(unit=read_model_card(mindir)["size_unit"], tile_size=1024))
    shape = (1, channels, *layout.tile)
    assert shape[2] == {32: 64, 4: 40}[read_model_card(mindir)["size_unit"]]
    for pair, line in zip(find_pairs(data, "--train_data_dir", default_config()), lines[1:]):
        stem = os.path.splitext(pair.name)[0]
        assert line == f"{stem}.bin\tfloat32\t{','.join(map(str, shape))}"
        source = load_input(pair, cfg)
        padded = read_bin(str(tmp_path / f"{stem}.bin"), shape)[0]
        assert np.array_equal(padded, split(source, layout)[0])
        top, _, left, _ = layout.pad
        assert np.array_equal(padded[:, top:top + 40, left:left + 40], source)
    samples = json.loads((tmp_path / "samples.json").read_text())["samples"]
    assert [s["original_size"] for s in samples] == [[40, 40]] * 3


def test_preprocess_keeps_the_size_of_non_square_ab_halves(exported, tmp_path):
    flags, _, mindir, _ = exported
    data = write_ab_folder(str(tmp_path / "wide"), 1, size=40, width=56)
    result = run_entry("preprocess.py", ["--mindir", mindir, "--dataset_path", data, "--output_path",
                                         tmp_path / "bins"])
    assert result.returncode == 0, result.stderr[-2000:]
    samples = json.loads((tmp_path / "bins" / "samples.json").read_text())["samples"]
    assert [s["original_size"] for s in samples] == [[40, 56]]


def test_the_flow_on_cpu_gives_eval_predictions(exported, tmp_path):
    """run_infer_310.sh with DEVICE_TYPE CPU: preprocess -> build -> infer (Python stand-in) ->
    postprocess; the images and metrics equal eval.py's for the same checkpoint."""
    flags, ckpt, mindir, data = exported
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", "run_infer_310.sh"), mindir, data, "y", "CPU", "0"],
                            capture_output=True, text=True, timeout=600,
                            env={**os.environ, "P2P_RUN_DIR": str(tmp_path / "run")})
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "main was not built" in result.stdout
    for name in ("preprocess", "build", "infer", "postprocess"):
        assert (tmp_path / "run" / "logs" / f"{name}.log").stat().st_size > 0
    assert "p95_ms_per_image" in (tmp_path / "run" / "time_Result" / "test_perform_static.txt").read_text()
    evaluated = run_entry("eval.py", ["--val_data_dir", data, "--ckpt", ckpt, *flags,
                                      "--predict_dir", tmp_path / "eval_pred", "--report_dir", tmp_path / "eval_report"])
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    for file in sorted(os.listdir(data)):
        a = np.asarray(Image.open(tmp_path / "run" / "predict" / file), np.int16)
        b = np.asarray(Image.open(tmp_path / "eval_pred" / file), np.int16)
        assert a.shape == b.shape
        # MINDIR and checkpoint agree within 1e-5, which can round a pixel value apart (rarely)
        assert np.abs(a - b).max() <= 1 and np.mean(a != b) < 0.01
    ours = (tmp_path / "run" / "report" / "metrics.csv").read_text().splitlines()
    theirs = (tmp_path / "eval_report" / "metrics.csv").read_text().splitlines()
    assert ours[0] == theirs[0] and len(ours) == len(theirs) == 4
    for row_ours, row_theirs in zip(ours[1:], theirs[1:]):
        values = [list(map(float, row.split(",")[1:])) for row in (row_ours, row_theirs)]
        assert np.allclose(*values, rtol=1e-3, atol=1e-4)


def test_step_errors_name_the_file(exported, tmp_path):
    flags, ckpt, mindir, data = exported
    assert run_entry("preprocess.py", ["--mindir", mindir, "--dataset_path", data,
                                       "--output_path", tmp_path / "pre"]).returncode == 0
    bad = tmp_path / "pre" / "001.bin"
    bad.write_bytes(bad.read_bytes()[:100])
    result = run_entry("infer_bins.py", ["--mindir", mindir, "--input0_path", tmp_path / "pre",
                                         "--output_dir", tmp_path / "out", "--time_dir", tmp_path / "t"])
    assert result.returncode == 2 and f"error: {bad}: 100 bytes, expected" in result.stderr
    result = run_entry("postprocess.py", ["--preprocess_path", tmp_path / "pre", "--result_path", tmp_path / "none",
                                          "--predict_dir", tmp_path / "p", "--report_dir", tmp_path / "r"])
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[-1] == f"error: {tmp_path / 'none' / '000_0.bin'}: no such file"
    batch2 = tmp_path / "g2"
    assert run_entry("export.py", ["--ckpt", ckpt, *flags, "--file_name", batch2, "--batch_size", "2",
                                   "--bn_stats", "running"]).returncode == 0
    result = run_entry("preprocess.py", ["--mindir", f"{batch2}.mindir", "--dataset_path", data])
    assert result.returncode == 2 and "export with --batch_size 1" in result.stderr


@pytest.mark.parametrize("args,message", [
    ([], "expected at least 3 arguments"),
    (["MINDIR", "DATA", "maybe"], "NEED_PREPROCESS must be y or n"),
    (["MINDIR", "DATA", "y", "TPU"], "DEVICE_TYPE must be Ascend310"),
    (["MINDIR", "DATA", "y", "CPU", "-1"], "DEVICE_ID must be an integer"),
    (["MINDIR", "DATA", "n", "CPU"], "must be a folder preprocess.py wrote"),
    (["nowhere.mindir", "DATA", "y"], "MINDIR_PATH nowhere.mindir is not a file"),
])
def test_run_infer_310_checks_its_arguments(exported, args, message):
    _, _, mindir, data = exported
    args = [{"MINDIR": mindir, "DATA": data}.get(arg, arg) for arg in args]
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", "run_infer_310.sh"), *args],
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert message in result.stderr.splitlines()[0] and "usage: bash scripts/run_infer_310.sh" in result.stderr


def test_the_flow_tiles_large_images_as_eval_does(exported, tmp_path):
    """100x100 inputs in 64-px tiles: preprocess writes one .bin per tile, postprocess blends them
    back into eval.py's prediction at the input's size."""
    flags, ckpt, mindir, _ = exported
    data = write_ab_folder(str(tmp_path / "ab"), 2, size=100)
    tiles = ["--tile_size", "64", "--tile_overlap", "16"]
    assert run_entry("preprocess.py", ["--mindir", mindir, "--dataset_path", data, "--output_path",
                                       tmp_path / "pre", *tiles]).returncode == 0
    lines = (tmp_path / "pre" / "manifest.tsv").read_text().splitlines()
    count = layout_for(100, 100, make_tiling(read_model_card(mindir)["size_unit"], 64, 16)).count
    assert count >= 4 and len(lines) == 1 + 2 * count
    assert all(line.split("\t")[2] == "1,3,64,64" for line in lines[1:]) and lines[1].startswith("000.tile0.bin")
    assert run_entry("infer_bins.py", ["--mindir", mindir, "--input0_path", tmp_path / "pre", "--output_dir",
                                       tmp_path / "out", "--time_dir", tmp_path / "t"]).returncode == 0
    result = run_entry("postprocess.py", ["--preprocess_path", tmp_path / "pre", "--result_path", tmp_path / "out",
                                          "--predict_dir", tmp_path / "p310", "--report_dir", tmp_path / "r310"])
    assert result.returncode == 0, result.stderr[-2000:]
    evaluated = run_entry("eval.py", ["--val_data_dir", data, "--ckpt", ckpt, *flags, *tiles,
                                      "--predict_dir", tmp_path / "pe", "--report_dir", tmp_path / "re"])
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    for file in sorted(os.listdir(data)):
        a = np.asarray(Image.open(tmp_path / "p310" / file), np.int16)
        b = np.asarray(Image.open(tmp_path / "pe" / file), np.int16)
        assert a.shape == (100, 100, 3) and np.abs(a - b).max() <= 1
