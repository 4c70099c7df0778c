"""The quickstart script end to end at a tiny size: data, training, eval, export, MINDIR predict."""
import os
import subprocess

import pytest
from PIL import Image

from conftest import REPO

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
    picture = Image.open(out / "quickstart.png")
    assert picture.width > 4 * 64
    assert "report:" in result.stdout
    assert f"bash scripts/run_serve.sh {out}/generator.onnx 8000" in result.stdout
    assert os.path.isfile(out / "generator.onnx.json")
