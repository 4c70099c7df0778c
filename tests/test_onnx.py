"""ONNX export that onnxruntime runs at any size, and --onnx in predict.py, eval.py and serve.py."""
import json
import os
import shutil
import socket

import numpy as np
import pytest
from mindspore import Tensor

from conftest import copy_card_claiming, run_entry, write_ab_folder
from src import checkpoint
from src.config import parse_args
from src.exported_model import load_exported
from src.exporter import export_generator
from src.models import registry
from src.trained_generator import load_generator, resolve_checkpoint_flags
from src.utils.errors import UserError

onnxruntime = pytest.importorskip("onnxruntime")

UNET = ["--crop_size", "32", "--ngf", "8"]
CC = ["--model", "pix2pixcc", "--crop_size", "32", "--ngf", "8", "--n_residual", "1", "--n_downsample", "2"]
# Every generator the project trains: both U-Net decoders, both pix2pixCC upsamplings (with its
# replication padding; reflection padding with the bilinear one).
GENERATORS = {"unet_transpose": [*UNET, "--upsample", "transpose"], "unet_resize": [*UNET, "--upsample", "resize"],
              "pix2pixcc": CC,
              "pix2pixcc_bilinear": [*CC, "--trans_conv", "False", "--padding_type", "reflection", "--norm", "batch"]}
# Sizes other than the traced 32x32 (multiples of the U-Net's 32), and other batch sizes.
SIZES = ((64, 96), (96, 32))


def save_checkpoint(folder, flags):
    cfg = parse_args("eval", ["--val_data_dir", "x", "--ckpt", "x", *flags])
    path = os.path.join(folder, "Generator_1.ckpt")
    checkpoint.save_network(registry.build_generator(cfg), path, {"model": cfg.model, **registry.arch(cfg, "generator")})
    return path


def export(ckpt, flags, file_name, *extra):
    cfg = parse_args("export", ["--ckpt", ckpt, *flags, "--file_name", file_name, *extra])
    return export_generator(resolve_checkpoint_flags(cfg, warn=lambda line: None))


# Per-image batch-norm statistics on the U-Nets (pix2pixCC's default instance norm is per image anyway).
CASES = [(name, "running") for name in GENERATORS] + [("unet_transpose", "image"), ("unet_resize", "image")]


@pytest.mark.parametrize("generator,bn_stats", CASES)
def test_onnx_gives_the_checkpoint_output_at_sizes_and_batches_it_was_not_traced_at(tmp_path, generator, bn_stats):
    flags = [*GENERATORS[generator], "--bn_stats", bn_stats]
    ckpt = save_checkpoint(str(tmp_path), GENERATORS[generator])
    batch = 2 if bn_stats == "running" else 1
    path = export(ckpt, flags, str(tmp_path / "g"), "--file_format", "ONNX", "--batch_size", str(batch))
    card = json.loads(open(path + ".json").read())
    assert card["input_shape"] == [None if bn_stats == "running" else 1, 3, None, None] and card["file_format"] == "ONNX"
    import onnx
    onnx.checker.check_model(onnx.load(path), full_check=True)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    netG = load_generator(parse_args("eval", ["--val_data_dir", "x", "--ckpt", ckpt, *flags]))
    for number, size in enumerate(SIZES):
        x = np.random.default_rng(number).uniform(-1, 1, (batch + number if batch > 1 else 1, 3, *size)).astype(np.float32)
        reference = netG(Tensor(x)).asnumpy()
        output = session.run(None, {session.get_inputs()[0].name: x})[0]
        assert output.shape == reference.shape
        assert np.abs(output - reference).max() < 1e-4 * max(1.0, np.abs(reference).max())


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A tiny U-Net's checkpoint, its MINDIR and its ONNX (batch 1, per-image statistics), and inputs."""
    root = tmp_path_factory.mktemp("onnx")
    ckpt = save_checkpoint(str(root), UNET)
    mindir = export(ckpt, UNET, str(root / "g"))
    onnx_path = export(ckpt, UNET, str(root / "g"), "--file_format", "ONNX")
    return {"root": root, "ckpt": ckpt, "mindir": mindir, "onnx": onnx_path,
            "data": write_ab_folder(str(root / "ab"), 2, size=40)}


def test_onnx_runs_as_the_mindir_does(exported):
    by_onnx, by_mindir = load_exported(exported["onnx"], "--onnx"), load_exported(exported["mindir"], "--mindir")
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 64, 96)).astype(np.float32)
    assert np.abs(by_onnx.forward(x) - by_mindir.forward(x)).max() < 1e-4
    assert by_onnx.runtime.startswith("onnxruntime") and "CPUExecutionProvider" in by_onnx.runtime
    assert by_mindir.runtime.startswith("MindSpore")


def test_predict_and_eval_take_the_onnx(exported, tmp_path):
    predicted = run_entry("predict.py", ["--onnx", exported["onnx"], "--input_dir", exported["data"],
                                         "--predict_dir", tmp_path / "p"])
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    card = json.loads((tmp_path / "p_report" / "model_card.json").read_text())
    assert card["runtime"].startswith("onnxruntime") and "run by onnxruntime" in predicted.stdout
    evaluated = run_entry("eval.py", ["--onnx", exported["onnx"], "--val_data_dir", exported["data"],
                                      "--predict_dir", tmp_path / "e", "--report_dir", tmp_path / "r"])
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "e")) == sorted(os.listdir(exported["data"]))
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["L1"]["n"] == 2


def bad_onnx(case, exported, tmp_path):
    path = str(tmp_path / "model.onnx")
    if case == "no card":
        shutil.copy(exported["onnx"], path)
    elif case == "not ONNX":
        open(path, "wb").write(b"not a graph")
        copy_card_claiming(exported["onnx"] + ".json", path)
    elif case == "card of another model":
        other = export(save_checkpoint(str(tmp_path), UNET), UNET, str(tmp_path / "other"), "--file_format", "ONNX")
        shutil.copy(exported["onnx"], path)
        shutil.copy(other + ".json", path + ".json")
    else:  # a MINDIR's card
        shutil.copy(exported["onnx"], path)
        shutil.copy(exported["mindir"] + ".json", path + ".json")
    return path


BAD_ONNX = [("no card", "model.onnx.json is missing; export.py writes it beside the model"),
            ("not ONNX", "not a loadable ONNX model"),
            ("card of another model", "does not match this file"),
            ("card of the MINDIR", "is the card of a MINDIR export")]


@pytest.mark.parametrize("case,message", BAD_ONNX)
def test_an_onnx_that_cannot_run_is_one_line(exported, tmp_path, case, message):
    with pytest.raises(UserError, match=message):
        load_exported(bad_onnx(case, exported, tmp_path), "--onnx")


@pytest.mark.parametrize("entry", ["predict.py", "serve.py"])
def test_predict_and_serve_stop_with_one_line_on_an_onnx_without_its_card(exported, tmp_path, entry):
    path = bad_onnx("no card", exported, tmp_path)
    args = ["--onnx", path, *(["--input_dir", exported["data"], "--predict_dir", tmp_path / "p"]
                              if entry == "predict.py" else ["--port", free_port()])]
    result = run_entry(entry, args, timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and BAD_ONNX[0][1] in errors[0] and "Traceback" not in result.stderr


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_serve_takes_the_onnx_and_says_which_runtime_serves(exported):
    from fastapi.testclient import TestClient
    from src.serve.app import create_app
    from src.serve.model import load_served_model
    cfg = parse_args("serve", ["--onnx", exported["onnx"]])
    with TestClient(create_app(load_served_model(cfg), cfg)) as client:
        serving = client.get("/model").json()["serving"]
        assert serving["kind"] == "onnx" and serving["runtime"].startswith("onnxruntime")
        with open(os.path.join(exported["data"], "000.png"), "rb") as handle:
            response = client.post("/translate", files={"file": ("000.png", handle.read(), "image/png")})
        assert response.status_code == 200 and response.content.startswith(b"\x89PNG")


def test_an_input_the_graph_cannot_take_is_one_line(exported):
    model = load_exported(exported["onnx"], "--onnx")
    with pytest.raises(UserError, match=r"g.onnx takes 1x3xheightxwidth inputs, not 1x4x32x32"):
        model.forward(np.zeros((1, 4, 32, 32), np.float32))
