"""The quickstart script end to end at a tiny size: data, training, eval, export, MINDIR predict."""
import json
import os
import re
import subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import REPO
from src.dataset.collages import LABEL_BAND

pytest.importorskip("skimage")


def test_quickstart_runs_end_to_end(tmp_path):
    out = tmp_path / "qs"
    env = {**os.environ, "P2P_SKIP_INSTALL": "1", "QUICKSTART_DIR": str(out), "QUICKSTART_EPOCHS": "1",
           "QUICKSTART_CROPS": "2"}
    result = subprocess.run(["bash", os.path.join(REPO, "scripts", "run_quickstart.sh")], cwd=REPO,
                            capture_output=True, text=True, timeout=900, env=env)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    train_names = {n.rsplit("_", 1)[0] for n in os.listdir(out / "data" / "train")}
    test_names = {n.rsplit("_", 1)[0] for n in os.listdir(out / "data" / "test")}
    assert train_names and test_names and not train_names & test_names  # whole photographs held out
    assert len(os.listdir(out / "predict_mindir")) == len(os.listdir(out / "data" / "test_inputs")) == 12
    assert os.path.getsize(out / "eval" / "report.pdf") > 1000
    card = json.loads((out / "generator.mindir.json").read_text())
    assert card["checkpoint"] == str(out / "ckpt" / "Generator_best.ckpt")  # the one validation kept
    picture = np.asarray(Image.open(out / "quickstart.png").convert("L"))
    crop, rows, gap = 72, 4, 4  # 2x enlarged: one band of column labels, then four collage rows
    assert picture.shape == (2 * (LABEL_BAND + rows * crop + (rows - 1) * gap), 2 * (4 * crop + 3 * gap))
    assert picture[:2 * LABEL_BAND].min() < 100 and picture[:2 * LABEL_BAND].max() == 255  # text on white
    # the estimate printed first counts the steps the training ran
    steps = re.search(r"== expected: about \d+ min after the install \((\d+) training steps", result.stdout)
    assert steps and f"{steps.group(1)} steps per epoch, 1 epochs" in result.stdout
    assert re.search(r"== done in \d+ min \d+ s after the install", result.stdout)
    assert "report:" in result.stdout
    assert f"bash scripts/run_serve.sh {out}/generator.onnx 8000" in result.stdout
    assert os.path.isfile(out / "generator.onnx.json")
