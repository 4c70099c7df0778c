"""eval.py, export.py and predict.py: outputs people read, and exported models that match."""
import csv
import json
import os

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor, nn
from PIL import Image

from conftest import run_entry, write_ab_folder
from src import checkpoint
from src.config import parse_args
from src.models import registry

MODEL_FLAGS = ["--crop_size", "32", "--ngf", "8"]


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A generator checkpoint (freshly initialised: matching outputs do not need training)."""
    root = tmp_path_factory.mktemp("model")
    cfg = parse_args("eval", ["--val_data_dir", "x", "--ckpt", "x", *MODEL_FLAGS])
    netG = registry.build_generator(cfg)
    path = str(root / "Generator_1.ckpt")
    checkpoint.save_network(netG, path, {"model": cfg.model, **registry.arch(cfg, "generator")})
    data = write_ab_folder(str(root / "ab"), 3, size=40)
    return root, path, data


def test_eval_writes_predictions_metrics_and_report(model, tmp_path):
    root, ckpt, data = model
    result = run_entry("eval.py", ["--val_data_dir", data, "--ckpt", ckpt, *MODEL_FLAGS, "--batch_size", "2",
                                   "--predict_dir", tmp_path / "pred", "--report_dir", tmp_path / "report"])
    assert result.returncode == 0, result.stderr[-2000:]
    names = sorted(os.listdir(data))
    assert sorted(os.listdir(tmp_path / "pred")) == names
    assert Image.open(tmp_path / "pred" / names[0]).size == (40, 40)  # the input's size
    with open(tmp_path / "report" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["name"] for row in rows] == names
    assert set(rows[0]) == {"name", "L1", "MSE", "PSNR", "SSIM", "CC"}
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["L1"]["n"] == 3 and summary["L1"]["min"] <= summary["L1"]["median"] <= summary["L1"]["max"]
    for name in ("report.pdf", "metrics.png"):
        assert os.path.getsize(tmp_path / "report" / name) > 1000
    assert (tmp_path / "report" / "report.pdf").read_bytes().startswith(b"%PDF")
    collage = Image.open(tmp_path / "report" / "collages" / names[0].replace(".png", ".png"))
    assert collage.size[0] > 4 * 40  # input | target | prediction | error
    assert "L1" in result.stdout and "report.pdf" in result.stdout


@pytest.mark.parametrize("size", [32, 72, 256])
def test_collage_columns_are_labelled_over_their_panels_and_kept_once_in_a_stack(size):
    from src.dataset.collages import LABEL_BAND, stack_labelled_strips
    from src.evaluate import collage
    panels = np.random.default_rng(0).uniform(-1, 1, (3, 3, size, size)).astype(np.float32)
    strip = collage(panels[0], panels[1], panels[2])
    assert strip.shape == (LABEL_BAND + size, 4 * size + 3 * 4, 3)
    band = strip[:LABEL_BAND].min(axis=2)
    for column in range(4):  # dark text over each panel, none over the gaps between them
        left = column * (size + 4)
        assert band[:, left:left + size].min() < 100
        assert column == 3 or band[:, left + size:left + size + 4].min() == 255
    stacked = stack_labelled_strips([strip, strip, strip], gap=4)
    assert stacked.shape[0] == LABEL_BAND + 3 * size + 2 * 4
    np.testing.assert_array_equal(stacked[:LABEL_BAND + size], strip)
    np.testing.assert_array_equal(stacked[LABEL_BAND + size + 4:LABEL_BAND + 2 * size + 4], strip[LABEL_BAND:])


def test_eval_takes_ab_images_with_non_square_halves(model, tmp_path):
    """An AB image 96x40 is two 48x40 halves: predictions and collages keep that size."""
    _, ckpt, _ = model
    data = write_ab_folder(str(tmp_path / "wide"), 2, size=40, width=48)
    result = run_entry("eval.py", ["--val_data_dir", data, "--ckpt", ckpt, *MODEL_FLAGS,
                                   "--predict_dir", tmp_path / "pred", "--report_dir", tmp_path / "report"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert {Image.open(tmp_path / "pred" / name).size for name in os.listdir(data)} == {(48, 40)}
    with open(tmp_path / "report" / "metrics.csv") as handle:
        assert len(list(csv.DictReader(handle))) == 2


def exported_and_reference(model, tmp_path, file_format, suffix, sizes=((32, 32),), flags=MODEL_FLAGS):
    """(exported file, [input of each size], [the checkpoint's output for it]): a graph of batch 2,
    so with the running batch-norm statistics (per-image statistics export batch 1 only)."""
    root, ckpt, _ = model
    name = str(tmp_path / "generator")
    flags = [*flags, "--bn_stats", "running"]
    result = run_entry("export.py", ["--ckpt", ckpt, *flags, "--file_name", name,
                                     "--file_format", file_format, "--batch_size", "2"])
    assert result.returncode == 0, result.stderr[-2000:]
    cfg = parse_args("eval", ["--val_data_dir", "x", "--ckpt", ckpt, *flags])
    from src.trained_generator import load_generator
    netG = load_generator(cfg)
    inputs = [np.random.default_rng(0).uniform(-1, 1, (2, 3, *size)).astype(np.float32) for size in sizes]
    return name + suffix, inputs, [netG(Tensor(x)).asnumpy() for x in inputs]


def test_exported_mindir_gives_the_checkpoint_output_at_any_size(model, tmp_path):
    path, inputs, references = exported_and_reference(model, tmp_path, "MINDIR", ".mindir", ((32, 32), (64, 96)))
    graph = nn.GraphCell(ms.load(path))
    for x, reference in zip(inputs, references):
        assert np.abs(graph(Tensor(x)).asnumpy() - reference).max() < 1e-5
    card = json.loads(open(path + ".json").read())
    assert card["input_shape"] == [2, 3, None, None] and card["size_unit"] == 32


def test_predict_with_the_mindir_matches_eval(model, tmp_path):
    root, ckpt, data = model
    name = str(tmp_path / "generator")
    assert run_entry("export.py", ["--ckpt", ckpt, *MODEL_FLAGS, "--file_name", name]).returncode == 0
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for file in os.listdir(data):
        Image.open(os.path.join(data, file)).crop((0, 0, 40, 40)).save(inputs / file)
    predicted = run_entry("predict.py", ["--mindir", name + ".mindir", "--input_dir", inputs,
                                         "--predict_dir", tmp_path / "by_mindir"])
    assert predicted.returncode == 0, predicted.stderr[-2000:]
    evaluated = run_entry("eval.py", ["--val_data_dir", data, "--ckpt", ckpt, *MODEL_FLAGS,
                                      "--predict_dir", tmp_path / "by_ckpt", "--report_dir", tmp_path / "r"])
    assert evaluated.returncode == 0
    for file in os.listdir(data):
        a = np.asarray(Image.open(tmp_path / "by_mindir" / file), np.int16)
        b = np.asarray(Image.open(tmp_path / "by_ckpt" / file), np.int16)
        assert np.abs(a - b).max() <= 1  # float differences below 1e-5 may round apart


@pytest.mark.parametrize("entry,extra,message", [
    ("eval.py", ["--ngf", "16", "--norm", "instance"], "ngf=8 (this run: 16), norm=batch (this run: instance)"),
    ("export.py", ["--crop_size", "64"], "unet_depth=5 (this run: 6)"),
    ("export.py", ["--file_format", "AIR"], "AIR is written only on Ascend"),
])
def test_one_line_errors(model, tmp_path, entry, extra, message):
    root, ckpt, data = model
    args = ["--ckpt", ckpt, *MODEL_FLAGS, *extra]
    args += (["--val_data_dir", data, "--predict_dir", tmp_path / "p", "--report_dir", tmp_path / "r"]
             if entry == "eval.py" else ["--file_name", tmp_path / "g"])
    result = run_entry(entry, args)
    assert result.returncode == 2
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-1500:]
    assert "Traceback" not in result.stderr
