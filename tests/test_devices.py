"""What each device gets from the flags, the line GPU and Ascend runs print first, and the operator
audit of the compiled graphs (tools/device_audit.py) on small configurations."""
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from src.config import parse_args
from src.utils.device import device_settings, untested_device_line

sys.path.insert(0, os.path.join(REPO, "tools"))
import device_audit  # noqa: E402 (tools/ is not a package)


def settings(*flags, environ=None):
    cfg = parse_args("export", ["--ckpt", "unused.ckpt", *flags])
    return device_settings(cfg, environ or {})


def test_cpu_keeps_mindspores_own_compile_level_and_no_precision_mode():
    cpu = settings()
    assert (cpu.target, cpu.device_id, cpu.jit_level, cpu.precision_mode) == ("CPU", 0, None, None)
    assert settings("--jit_level", "O1").jit_level == "O1"  # asked for, it is given


def test_gpu_compiles_kernel_by_kernel_unless_fusion_is_asked_for():
    assert settings("--device_target", "GPU").jit_level == "O0"
    assert settings("--device_target", "GPU", "--jit_level", "O1").jit_level == "O1"
    assert settings("--device_target", "GPU").precision_mode is None
    assert settings("--device_target", "GPU", "--ascend_precision_mode", "force_fp16").precision_mode is None


def test_ascend_keeps_float32_unless_told_and_takes_the_launchers_device_id():
    ascend = settings("--device_target", "Ascend", "--device_id", "3")
    assert (ascend.jit_level, ascend.precision_mode, ascend.device_id) == ("O0", "must_keep_origin_dtype", 3)
    assert settings("--device_target", "Ascend", "--ascend_precision_mode",
                    "allow_fp32_to_fp16").precision_mode == "allow_fp32_to_fp16"
    # A rank table launch sets DEVICE_ID per process: it wins over the flag.
    assert settings("--device_target", "Ascend", "--device_id", "3", environ={"DEVICE_ID": "6"}).device_id == 6


def test_a_run_on_an_untested_device_names_version_device_audit_and_page(tmp_path):
    audit = tmp_path / "audit.json"
    audit.write_text(json.dumps({"date": "2026-12-05", "mindspore": "2.10.0", "graphs": {}}))
    line = untested_device_line("Ascend", str(audit))
    import mindspore
    assert f"MindSpore {mindspore.__version__} on Ascend" in line
    assert "2026-12-05" in line and "docs/devices.md" in line and "\n" not in line
    assert "no operator audit found" in untested_device_line("GPU", str(tmp_path / "missing.json"))


def test_the_committed_audit_covers_every_graph_and_passes():
    with open(os.path.join(REPO, "docs", "devices_audit.json")) as handle:
        audit = json.load(handle)
    assert set(audit["graphs"]) == set(device_audit.GRAPHS)
    assert audit["failures"] == []


def test_platforms_are_read_from_mindspores_docstrings():
    assert device_audit.declared_platforms("Conv2D")[1] == ["Ascend", "GPU", "CPU"]
    assert device_audit.declared_platforms("Tanh")[1] == ["Ascend", "GPU", "CPU"]  # via mindspore.ops.tanh
    assert device_audit.declared_platforms("UpsampleNearest2D")[1] == ["Ascend"]
    assert device_audit.declared_platforms("BatchNormGrad") == (None, None)


@pytest.mark.parametrize("graphs", ["train_transpose,export_onnx", "train_amp_O2,weight_average,validation"])
def test_audit_of_small_graphs_finds_their_operators_on_ascend_and_gpu(tmp_path, graphs):
    out = tmp_path / "audit.md"
    done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "device_audit.py"), "--graphs", graphs,
                           "--out", str(out)], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    audit = json.loads((tmp_path / "audit.json").read_text())
    used = {name: {row["primitive"] for row in graph["primitives"]} for name, graph in audit["graphs"].items()}
    if "train_transpose" in used:
        assert {"Conv2D", "Conv2DTranspose", "BatchNorm", "Adam", "Tanh"} <= used["train_transpose"]
        assert {"Conv2DBackpropInput", "BatchNormGrad"} <= used["train_transpose"]  # the backward pass is there
        assert "ResizeNearestNeighbor" in used["export_onnx"]  # the resize decoder's ONNX form
        assert "| Conv2D | Ascend GPU CPU |" in out.read_text()
    else:  # float16 under O2: the resize decoder's kernel follows its input's dtype
        assert {"Cast", "Conv2DTranspose", "BatchNorm"} <= used["train_amp_O2"]
        assert {"AssignSub", "Pow", "Minimum"} <= used["weight_average"]
        assert "BatchNorm" in used["validation"]
