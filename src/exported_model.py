"""An exported generator ready to translate: a MINDIR run by MindSpore, or an ONNX file run by
onnxruntime, each with the model card beside it (`ExportedModel`)."""
import os
import sys
from dataclasses import dataclass

import mindspore as ms
import numpy as np
from mindspore import nn

from src.inference import graph_forward
from src.model_card import read_model_card
from src.utils.errors import UserError


def load_mindir(path):
    """(GraphCell, model card) of an exported MINDIR and the card export.py wrote beside it."""
    card = read_model_card(path)
    try:
        graph = ms.load(path)
    except (RuntimeError, ValueError) as err:
        raise UserError(f"--mindir {path}: not a loadable MINDIR ({str(err).strip().splitlines()[0]})") from None
    return nn.GraphCell(graph), card


@dataclass(frozen=True)
class ExportedModel:
    """An exported generator ready to translate: `forward` maps an NCHW batch of up to `batch_size`
    images to the NCHW output; `runtime` names what runs it (MindSpore or onnxruntime and its
    execution provider)."""
    card: dict
    forward: object
    batch_size: int
    runtime: str


def exported_model(cfg):
    """The ExportedModel of --onnx or --mindir."""
    if getattr(cfg, "onnx", None):
        return load_exported(cfg.onnx, "--onnx", cfg.device_target)
    return load_exported(cfg.mindir, "--mindir", cfg.device_target)


def load_exported(path, flag, device_target="CPU"):
    """The ExportedModel of a MINDIR (`flag` --mindir, run by MindSpore) or an ONNX file (--onnx,
    run by onnxruntime: on CUDA for --device_target GPU when onnxruntime-gpu provides it, else on
    CPU), with the card beside it; what cannot be run is a one-line UserError."""
    if flag == "--mindir":
        graph, card = load_mindir(path)
        return ExportedModel(card, graph_forward(graph, card["input_shape"][0]), card["input_shape"][0],
                             f"MindSpore {ms.__version__} ({device_target})")
    card = read_model_card(path, flag)
    session = _onnx_session(path, flag, device_target)
    fixed_batch = card["input_shape"][0]
    return ExportedModel(card, _onnx_forward(session, fixed_batch, path), fixed_batch or card["batch_size"],
                         f"onnxruntime {_onnxruntime().__version__} ({session.get_providers()[0]})")


def _onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise UserError("--onnx needs onnxruntime: pip install onnxruntime (onnxruntime-gpu for CUDA)") from None
    return onnxruntime


def _onnx_session(path, flag, device_target):
    onnxruntime = _onnxruntime()
    providers = ["CPUExecutionProvider"]
    if device_target == "GPU":
        if "CUDAExecutionProvider" in onnxruntime.get_available_providers():
            providers.insert(0, "CUDAExecutionProvider")
        else:
            print("note: this onnxruntime has no CUDAExecutionProvider (pip install onnxruntime-gpu); "
                  "running on the CPU", file=sys.stderr)
    try:
        return onnxruntime.InferenceSession(path, providers=providers)
    except Exception as err:  # onnxruntime raises its own exception types for unreadable graphs
        raise UserError(f"{flag} {path}: not a loadable ONNX model ({str(err).strip().splitlines()[0]})") from None


def _onnx_forward(session, fixed_batch, path):
    """NCHW batch -> NCHW output of an onnxruntime session; a short batch is padded with copies
    of its first image for a graph of fixed batch size."""
    name = session.get_inputs()[0].name
    expected = session.get_inputs()[0].shape

    def forward(batch):
        padded = batch if fixed_batch is None else np.concatenate(
            [batch, np.repeat(batch[:1], fixed_batch - len(batch), axis=0)])
        try:
            return session.run(None, {name: np.ascontiguousarray(padded, np.float32)})[0][:len(batch)]
        except Exception as err:  # onnxruntime's InvalidArgument and Fail carry no common base class
            raise UserError(f"{os.path.basename(path)} takes {'x'.join(map(str, expected))} inputs, not "
                            f"{'x'.join(map(str, padded.shape))} ({str(err).strip().splitlines()[0][:200]})") from None
    return forward
