"""The trained generator for inference: from a checkpoint, to MINDIR/AIR/ONNX, and back.

Inference mode everywhere: dropout off and batch-norm running statistics. The paper keeps
dropout at test time as a noise source; we do not, so that a translation is deterministic and
the exported model gives exactly the checkpoint's output.
"""
import hashlib
import json
import os
import sys
from dataclasses import dataclass

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn

from src.dataset.pairs import DATA_FLAGS
from src.inference import graph_run
from src.models import registry
from src.models.layers import use_onnx_forms
from src.utils import checkpoint
from src.utils.config import apply_recorded_flags, settings
from src.utils.errors import UserError


def recorded_flags(cfg):
    """{flag: value} a generator checkpoint records: what eval and export need to build the
    generator and read data as training did (model, its architecture flags and channels, the crop
    size the U-Net's depth follows, direction, formats, normalisation, FITS settings). Flags
    that shape only training (loss weights, the discriminator) or the evaluation (the CC
    metrics' --ccc, --n_CC), and run settings (batch size, folders, tiles) are free."""
    names = ("model", "crop_size", *registry.arch(cfg, "generator"), *DATA_FLAGS)
    return {name: getattr(cfg, name) for name in names if hasattr(cfg, name)}


def resolve_checkpoint_flags(cfg, warn=lambda line: print(line, file=sys.stderr)):
    """Take the training flags `cfg.ckpt` records (a contradicting flag is a UserError). A
    checkpoint written before checkpoints recorded them is used with the flags given, and a hint."""
    recorded = checkpoint.read_recorded_config(cfg.ckpt)
    if recorded is None:
        warn(f"note: {cfg.ckpt} records no training flags (written before checkpoints did); using the "
             "flags given here, which must repeat training's model, size, format and normalisation flags")
        return cfg
    return apply_recorded_flags(cfg, recorded, cfg.ckpt)


def load_generator(cfg):
    """The generator of `cfg.ckpt` in inference mode (dropout off; batch norm with the running
    statistics, or each forward pass's own with --bn_stats image); a checkpoint of another
    architecture is a one-line UserError naming the flags that differ."""
    netG = registry.build_generator(cfg)
    checkpoint.load_network(netG, cfg.ckpt, {"model": cfg.model, **registry.arch(cfg, "generator")})
    netG.set_train(False)
    if per_image_statistics(cfg):
        use_image_statistics(netG)
    return netG


def per_image_statistics(cfg):
    """Whether translation takes each forward pass's batch-norm statistics (--bn_stats image on a
    batch-norm generator; instance norm is per image anyway)."""
    return cfg.bn_stats == "image" and cfg.norm == "batch"


def use_image_statistics(netG):
    """Batch norm in `netG` normalises with each forward pass's own statistics (it also moves the
    running averages then: use a network whose averages are not kept)."""
    for _, cell in netG.cells_and_names():
        if isinstance(cell, nn.BatchNorm2d):
            cell.use_batch_statistics = True
    return netG


def inference_batch_size(cfg):
    """Images per forward pass: one under --bn_stats image, whose statistics are per pass."""
    return 1 if per_image_statistics(cfg) else cfg.batch_size


def export_size(cfg):
    """The square size of the exported graph, or None for any height and width (MINDIR: MindSpore
    exports dynamic dimensions; ONNX: traced at --crop_size, then made symbolic by repair_onnx;
    AIR runtimes get the training size unless told)."""
    size = cfg.image_size or (None if cfg.file_format in ("MINDIR", "ONNX") else cfg.crop_size)
    unit = registry.size_unit(cfg)
    if size is not None and size % unit:
        raise UserError(f"--image_size {size}: must be a multiple of {unit}, the size unit of this network")
    return size


def symbolic_batch(cfg):
    """Whether an ONNX export takes any batch size: not under per-image statistics, which the
    graph takes over its whole batch."""
    return cfg.file_format == "ONNX" and not per_image_statistics(cfg)


def export_generator(cfg):
    """Write the generator for inputs of batch_size x input_nc x H x W (H, W: export_size)."""
    if cfg.file_format == "AIR" and cfg.device_target != "Ascend":
        raise UserError("--file_format AIR is written only on Ascend (--device_target Ascend); "
                        "use MINDIR here")
    size = export_size(cfg)
    if per_image_statistics(cfg) and cfg.batch_size != 1:
        raise UserError(f"--bn_stats image (the default) takes the statistics of each forward pass: export "
                        f"with --batch_size 1 (not {cfg.batch_size}), or --bn_stats running for a batched graph")
    netG = load_generator(cfg)
    traced = size or (cfg.crop_size if cfg.file_format == "ONNX" else None)
    if cfg.file_format == "ONNX":
        use_onnx_forms(netG)
    example = (Tensor(shape=[cfg.batch_size, cfg.input_nc, None, None], dtype=ms.float32) if traced is None
               else Tensor(np.zeros((cfg.batch_size, cfg.input_nc, traced, traced), np.float32)))
    directory = os.path.dirname(os.path.abspath(cfg.file_name))
    os.makedirs(directory, exist_ok=True)
    try:
        ms.export(netG, example, file_name=cfg.file_name, file_format=cfg.file_format)
    except (RuntimeError, ValueError, TypeError) as err:
        first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise UserError(f"export to {cfg.file_format} failed on {cfg.device_target}: {first_line}") from None
    suffix = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}[cfg.file_format]
    path = cfg.file_name if cfg.file_name.endswith(suffix) else cfg.file_name + suffix
    if cfg.file_format == "ONNX":
        repair_onnx(path, symbolic_size=size is None, symbolic_batch=symbolic_batch(cfg))
    write_model_card(path, cfg, size)
    return path


def repair_onnx(path, symbolic_size, symbolic_batch):
    """Rewrite MindSpore 2.10's ONNX of a generator at `path` into a valid graph that ONNX
    runtimes load, for any height and width (`symbolic_size`) and batch (`symbolic_batch`):
    - ConvTranspose: MindSpore writes output_shape as the full NCHW shape where ONNX defines the
      spatial shape, and onnxruntime refuses it. It is dropped; the node's pads give the same
      output, with output_padding set where the traced output is one row/column longer.
    - Resize: fixed output sizes become scales, so they follow the input; the nearest resize with
      align_corners that stands in for a bilinear one (Upsample2x) becomes bilinear.
    - Batch-norm statistics of each forward pass: the variance, a sum of squares divided by the
      traced element count, becomes a mean of squares.
    - The graph's input and output dimensions become symbolic ("batch", "height", "width").
    Shapes are read from ONNX's shape inference of the traced graph (the weight of a
    transposed convolution may be computed in the graph). The result passes onnx.checker."""
    import onnx
    from onnx import helper, numpy_helper, shape_inference
    model = onnx.load(path)
    for node in model.graph.node:  # first a valid graph to infer shapes from: spatial output_shape
        for attribute in node.attribute:
            if node.op_type == "ConvTranspose" and attribute.name == "output_shape" and len(attribute.ints) == 4:
                attribute.ints[:] = attribute.ints[2:]
    inferred = shape_inference.infer_shapes(model)
    shapes = {value.name: [dim.dim_value for dim in value.type.tensor_type.shape.dim]
              for value in (*inferred.graph.value_info, *inferred.graph.input, *inferred.graph.output)}
    shapes.update({tensor.name: list(tensor.dims) for tensor in model.graph.initializer})
    for node in model.graph.node:
        attributes = {attribute.name: attribute for attribute in node.attribute}
        if node.op_type == "ConvTranspose" and "output_shape" in attributes:
            kernel = shapes[node.input[1]][2:]
            pads, strides = list(attributes["pads"].ints), list(attributes["strides"].ints)
            dilations = list(attributes["dilations"].ints) if "dilations" in attributes else [1, 1]
            natural = [strides[i] * (shapes[node.input[0]][2 + i] - 1) + dilations[i] * (kernel[i] - 1) + 1
                       - pads[i] - pads[i + 2] for i in range(2)]
            extra = [want - got for want, got in zip(attributes["output_shape"].ints, natural)]
            node.attribute.remove(attributes["output_shape"])
            if any(extra):
                node.attribute.append(helper.make_attribute("output_padding", extra))
        elif node.op_type == "Resize" and len(node.input) == 4 and node.input[3]:
            source, sizes = shapes[node.input[0]], shapes[node.output[0]]
            scales = numpy_helper.from_array(np.array(sizes, np.float32) / np.array(source, np.float32),
                                             node.output[0] + "_scales")
            model.graph.initializer.append(scales)
            node.input[:] = [node.input[0], node.input[1], scales.name]
            if attributes.get("coordinate_transformation_mode", helper.make_attribute("m", "")).s == b"align_corners":
                for name in ("mode", "nearest_mode"):
                    if name in attributes:
                        node.attribute.remove(attributes[name])
                node.attribute.append(helper.make_attribute("mode", "linear"))
    _mean_of_squares_at_any_size(model, shapes)
    for value in (*model.graph.input, *model.graph.output):
        dims = value.type.tensor_type.shape.dim
        for index, name in ((0, "batch" if symbolic_batch else None), (2, "height" if symbolic_size else None),
                            (3, "width" if symbolic_size else None)):
            if name:
                dims[index].dim_param = name
    del model.graph.value_info[:]
    used = {name for node in model.graph.node for name in node.input} | {value.name for value in model.graph.output}
    for node in [node for node in model.graph.node if node.op_type == "Constant" and node.output[0] not in used]:
        model.graph.node.remove(node)  # the fixed sizes the scales replace
    for tensor in [tensor for tensor in model.graph.initializer if tensor.name not in used]:
        model.graph.initializer.remove(tensor)
    onnx.checker.check_model(model, full_check=True)
    checkpoint.atomic_write_bytes(path, model.SerializeToString())
    return model


def _mean_of_squares_at_any_size(model, shapes):
    """ReduceSumSquare -> Div by the traced count of the reduced elements (how MindSpore writes
    batch norm's variance) becomes Mul -> ReduceMean, which holds at any size."""
    from onnx import helper, numpy_helper
    constants = {tensor.name: numpy_helper.to_array(tensor) for tensor in model.graph.initializer}
    constants.update({node.output[0]: numpy_helper.to_array(node.attribute[0].t)
                      for node in model.graph.node if node.op_type == "Constant" and node.attribute[0].name == "value"})
    for index, node in enumerate(list(model.graph.node)):
        if node.op_type != "ReduceSumSquare":
            continue
        axes = next(attribute.ints for attribute in node.attribute if attribute.name == "axes")
        count = int(np.prod([shapes[node.input[0]][axis] for axis in axes]))
        for divide in model.graph.node:
            if (divide.op_type == "Div" and divide.input[0] == node.output[0]
                    and constants.get(divide.input[1], np.nan).size == 1
                    and float(constants[divide.input[1]].ravel()[0]) == count):
                squares = node.output[0] + "_squares"
                model.graph.node.insert(list(model.graph.node).index(node),
                                        helper.make_node("Mul", [node.input[0], node.input[0]], [squares]))
                node.op_type, node.input[0] = "ReduceMean", squares
                divide.op_type = "Identity"
                del divide.input[1]


CARD_KEYS = ("input_shape", "size_unit", "output_nc", "data", "metrics", "checkpoint", "arch")


def model_card(cfg, size):
    """What a generator exported from `cfg` expects (input_shape: null height and width for any
    size, multiples of size_unit; a null batch for any batch, of which batch_size at a time) and how its data is read and normalised: all that predict.py,
    the 310 flow and the server know of the training flags."""
    batch = None if symbolic_batch(cfg) else cfg.batch_size
    return {"input_shape": [batch, cfg.input_nc, size, size], "batch_size": cfg.batch_size,
            "file_format": cfg.file_format, "size_unit": registry.size_unit(cfg),
            "output_nc": cfg.output_nc,
            "data": {name: getattr(cfg, name) for name in DATA_FLAGS},
            "metrics": {name: getattr(cfg, name) for name in registry.metric_flags()},
            "checkpoint": os.path.abspath(cfg.ckpt), "bn_stats": cfg.bn_stats, "dropout_at_inference": False,
            "arch": {"model": cfg.model, **registry.arch(cfg, "generator")}}


def write_model_card(exported_path, cfg, size):
    """`<exported file>.json`: the model card of the exported graph (an ONNX card also holds the
    file's SHA-256, so that a card cannot be taken for another model's)."""
    card = model_card(cfg, size)
    if cfg.file_format == "ONNX":
        card["sha256"] = file_sha256(exported_path)
    checkpoint.atomic_write_text(exported_path + ".json", json.dumps(card, indent=1))
    return card


def file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_model_card(path, flag="--mindir"):
    """The model card export.py wrote beside the exported model `path` (given as `flag`)."""
    if not os.path.isfile(path):
        raise UserError(f"{flag} {path}: no such file")
    card_path = path + ".json"
    if not os.path.isfile(card_path):
        raise UserError(f"{flag} {path}: {card_path} is missing; export.py writes it beside the model")
    try:
        with open(card_path, encoding="utf-8") as handle:
            card = json.load(handle)
    except ValueError as err:
        raise UserError(f"{card_path}: not valid JSON ({err})") from None
    missing = [key for key in CARD_KEYS if key not in card] if isinstance(card, dict) else ["fields"]
    if missing:
        raise UserError(f"{card_path}: no {', '.join(missing)}: written by an older export.py; "
                        "export the checkpoint again")
    return card


def data_config(card):
    """The settings the data layer and the metrics read (channels, direction, formats,
    normalisation, CC scales), as the model was trained with them: how predict.py and the 310
    flow read and score data exactly like eval.py."""
    return settings(**card["data"], **card["metrics"], input_nc=card["input_shape"][1],
                    output_nc=card["output_nc"], model=card["arch"]["model"], ckpt=card["checkpoint"])



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
    """An exported generator ready to translate: `run` maps an NCHW batch of up to `batch_size`
    images to the NCHW output; `runtime` names what runs it (MindSpore or onnxruntime and its
    execution provider)."""
    card: dict
    run: object
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
        return ExportedModel(card, graph_run(graph, card["input_shape"][0]), card["input_shape"][0],
                             f"MindSpore {ms.__version__} ({device_target})")
    card = read_model_card(path, flag)
    if card.get("file_format", "ONNX") != "ONNX":
        raise UserError(f"{flag} {path}: {path}.json is the card of a {card['file_format']} export, not of "
                        "this ONNX file; export the checkpoint with --file_format ONNX")
    session = _onnx_session(path, flag, device_target)
    if card.get("sha256") != file_sha256(path):
        raise UserError(f"{flag} {path}: {path}.json is the card of another model (its SHA-256 is not this "
                        "file's); export the checkpoint again, which writes both")
    fixed_batch = card["input_shape"][0]
    return ExportedModel(card, _onnx_run(session, fixed_batch, path), fixed_batch or card["batch_size"],
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


def _onnx_run(session, fixed_batch, path):
    """NCHW batch -> NCHW output of an onnxruntime session; a short batch is padded with copies
    of its first image for a graph of fixed batch size."""
    name = session.get_inputs()[0].name
    expected = session.get_inputs()[0].shape

    def run(batch):
        padded = batch if fixed_batch is None else np.concatenate(
            [batch, np.repeat(batch[:1], fixed_batch - len(batch), axis=0)])
        try:
            return session.run(None, {name: np.ascontiguousarray(padded, np.float32)})[0][:len(batch)]
        except Exception as err:  # onnxruntime's InvalidArgument and Fail carry no common base class
            raise UserError(f"{os.path.basename(path)} takes {'x'.join(map(str, expected))} inputs, not "
                            f"{'x'.join(map(str, padded.shape))} ({str(err).strip().splitlines()[0][:200]})") from None
    return run
