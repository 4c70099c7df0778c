"""Exporting a generator checkpoint to MINDIR, AIR or ONNX with its model card, and repairing
what MindSpore writes to ONNX so that ONNX runtimes take it at any size."""
import os

import mindspore as ms
import numpy as np
from mindspore import Tensor

from src.config import save_resolved_config
from src.model_card import symbolic_batch, write_model_card
from src.models import registry
from src.models.layers import use_onnx_forms
from src.trained_generator import load_generator, per_image_statistics, resolve_checkpoint_flags
from src.utils.device import set_context
from src.utils.errors import UserError
from src.utils.files import atomic_path, atomic_write_bytes, clear_stale_temporaries


def export(cfg):
    """export.py: the checkpoint's generator to --file_format, with its card and resolved flags."""
    cfg = resolve_checkpoint_flags(cfg)
    registry.check_model_config(cfg)
    set_context(cfg)
    exported = export_generator(cfg)
    save_resolved_config(cfg, exported + ".config.yaml")
    print(f"exported {exported}")
    return exported


def export_size(cfg):
    """The square size of the exported graph, or None for any height and width (MINDIR: MindSpore
    exports dynamic dimensions; ONNX: traced at --crop_size, then made symbolic by repair_onnx;
    AIR runtimes get the training size unless told)."""
    size = cfg.image_size or (None if cfg.file_format in ("MINDIR", "ONNX") else cfg.crop_size)
    unit = registry.size_unit(cfg)
    if size is not None and size % unit:
        raise UserError(f"--image_size {size}: must be a multiple of {unit}, the size unit of this network")
    return size


def export_generator(cfg):
    """Write the generator for inputs of batch_size x input_nc x H x W (H, W: export_size)."""
    if cfg.file_format == "AIR" and cfg.device_target != "Ascend":
        raise UserError("--file_format AIR is written only on Ascend (--device_target Ascend); "
                        "use MINDIR here")
    size = export_size(cfg)
    if per_image_statistics(cfg) and cfg.batch_size != 1:
        raise UserError(f"--bn_stats image (the default) takes the statistics of each forward pass: export "
                        f"with --batch_size 1 (not {cfg.batch_size}), or --bn_stats running for a batched graph")
    clear_stale_temporaries((os.path.dirname(os.path.abspath(cfg.file_name)),))
    netG = load_generator(cfg)
    traced = size or (cfg.crop_size if cfg.file_format == "ONNX" else None)
    if cfg.file_format == "ONNX":
        use_onnx_forms(netG)
    example = (Tensor(shape=[cfg.batch_size, cfg.input_nc, None, None], dtype=ms.float32) if traced is None
               else Tensor(np.zeros((cfg.batch_size, cfg.input_nc, traced, traced), np.float32)))
    suffix = {"MINDIR": ".mindir", "AIR": ".air", "ONNX": ".onnx"}[cfg.file_format]
    path = cfg.file_name if cfg.file_name.endswith(suffix) else cfg.file_name + suffix
    with atomic_path(path) as tmp:  # a kill or a full disk leaves the previous export
        try:
            ms.export(netG, example, file_name=tmp, file_format=cfg.file_format)
        except (RuntimeError, ValueError, TypeError) as err:
            first_line = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise UserError(f"export to {cfg.file_format} failed on {cfg.device_target}: {first_line}") from None
        if cfg.file_format == "ONNX":
            repair_onnx(tmp, symbolic_size=size is None, symbolic_batch=symbolic_batch(cfg))
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
    atomic_write_bytes(path, model.SerializeToString())
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
