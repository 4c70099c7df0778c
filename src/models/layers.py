"""Building blocks shared by the generators and discriminators."""
import mindspore.nn as nn
import mindspore.ops as ops
import numpy as np
from mindspore import Tensor


class InstanceNorm2d(nn.Cell):
    """Instance normalisation without affine parameters, as the PyTorch pix2pix uses it.

    Written with mean/variance ops because MindSpore's InstanceNorm kernel has no CPU
    implementation; this form runs on CPU, GPU and Ascend alike.
    """

    def __init__(self, eps=1e-5):
        super().__init__()
        self.eps = eps

    def construct(self, x):
        mean = ops.mean(x, (2, 3), keep_dims=True)
        centred = x - mean
        var = ops.mean(centred * centred, (2, 3), keep_dims=True)
        return centred / ops.sqrt(var + self.eps)


def norm_layer(norm, channels):
    if norm == "batch":
        # MindSpore's momentum is the weight of the running value: 0.9 here is PyTorch's 0.1.
        return nn.BatchNorm2d(channels, momentum=0.9)
    if norm == "instance":
        return InstanceNorm2d()
    raise ValueError(f"unknown norm {norm!r}")


def uses_bias(norm):
    """Batch norm has its own shift, so the convolution before it needs no bias."""
    return norm != "batch"


def down_conv(in_channels, out_channels, padding_type, has_bias, stride=2):
    """4x4 convolution with 1 pixel of padding (zero, reflection or replication): halves the size
    at stride 2."""
    if padding_type == "zero":
        return nn.Conv2d(in_channels, out_channels, 4, stride=stride, pad_mode="pad", padding=1,
                         has_bias=has_bias)
    return nn.SequentialCell([
        Pad2d(1, padding_type),
        nn.Conv2d(in_channels, out_channels, 4, stride=stride, pad_mode="valid", has_bias=has_bias),
    ])


def up_conv(in_channels, out_channels, has_bias):
    """4x4 transposed convolution, stride 2, padding 1: doubles the size."""
    return nn.Conv2dTranspose(in_channels, out_channels, 4, stride=2, pad_mode="pad", padding=1,
                              has_bias=has_bias)


# Nearest x2 then a 3x3 convolution, per axis: the even output row 2i sees (x[i-1], x[i], x[i]) and
# the odd row 2i+1 sees (x[i], x[i], x[i+1]), so the 3 taps (w-1, w0, w1) act as the 4 taps
# (w1, w0 + w1, w-1 + w0, w-1) of a stride-2 transposed convolution: K = A w A^T with this A.
_RESIZE_TAPS = np.array([[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], np.float32)


class ResizeConv(nn.Cell):
    """Nearest-neighbour x2, then a 3x3 convolution (padding 1 of `padding_type`): the
    resize-convolution of Odena et al. 2016 ("Deconvolution and Checkerboard Artifacts"), which
    doubles the size like up_conv without its uneven kernel overlap.

    Two exact formulations of the same function and parameters (`conv.weight`, `conv.bias`, so
    checkpoints of either load in both), chosen by `transposed` for speed alone:
    - transposed: the 4x4, stride-2 transposed convolution it equals, its kernel built from the
      3x3 weights in the graph: up_conv's arithmetic, where upsampling first runs the 3x3
      convolution at four times the pixels. Reflection and replication padding of the upsampled
      map both repeat the low-resolution edge, so those replicate one low-resolution pixel first
      and crop it (padding 3) from the transposed output.
    - explicit: upsample, pad, convolve. On maps of a few pixels the cost is the weights, and
      this form touches 9 taps per channel pair where building the kernel touches 9 + 16.
    """

    def __init__(self, in_channels, out_channels, has_bias, padding_type="zero", transposed=True):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, 3, pad_mode="valid", has_bias=has_bias)
        self.out_channels = out_channels
        self.transposed = transposed
        self.onnx_form = False
        if not transposed:
            self.pad = Pad2d(1, padding_type)
            return
        self.edge = None if padding_type == "zero" else Pad2d(1, "replication")
        self.crop = 1 if padding_type == "zero" else 3
        self.transposed_conv = ops.Conv2DTranspose(out_channel=in_channels, kernel_size=4, mode=1,
                                                   pad_mode="pad", pad=self.crop, stride=2)
        # (3x3 taps) -> (4x4 taps), transposed for the matmul that builds the kernel.
        self.taps = Tensor(np.kron(_RESIZE_TAPS, _RESIZE_TAPS).T)

    def construct(self, x):
        if self.transposed:
            return self._transposed(x)
        if self.onnx_form:  # _nearest_2x's reshapes are written to ONNX with the traced sizes
            height, width = ops.shape(x)[2:]
            return self.conv(self.pad(ops.ResizeNearestNeighbor((2 * height, 2 * width))(x)))
        return self.conv(self.pad(_nearest_2x(x)))

    def _transposed(self, x):
        if self.edge is not None:
            x = self.edge(x)
        batch, _, height, width = ops.shape(x)
        size = (batch, self.out_channels, 2 * height + 2 - 2 * self.crop, 2 * width + 2 - 2 * self.crop)
        # Kernel and bias follow the input's dtype: float16 under --amp_level O2/O3.
        y = self.transposed_conv(x, ops.cast(self._kernel(), x.dtype), size)
        if self.conv.has_bias:
            y = ops.bias_add(y, ops.cast(self.conv.bias, y.dtype))
        return y

    def _kernel(self):
        """The (in, out, 4, 4) transposed-convolution kernel of the (out, in, 3, 3) weights."""
        weight = ops.transpose(self.conv.weight, (1, 0, 2, 3))
        in_channels, out_channels = ops.shape(weight)[:2]
        # The taps follow the weights' dtype: float16 under --amp_level O2/O3.
        flat = ops.matmul(ops.reshape(weight, (in_channels * out_channels, 9)), ops.cast(self.taps, weight.dtype))
        return ops.reshape(flat, (in_channels, out_channels, 4, 4))


def _nearest_2x(x):
    """Nearest x2 as a broadcast and a reshape: their gradient is a sum, where the gradient of
    MindSpore's nearest resize on CPU took minutes per step."""
    batch, channels, height, width = ops.shape(x)
    doubled = ops.broadcast_to(ops.reshape(x, (batch, channels, height, 1, width, 1)),
                               (batch, channels, height, 2, width, 2))
    return ops.reshape(doubled, (batch, channels, height * 2, width * 2))


class Pad2d(nn.Cell):
    """Spatial padding by `size` pixels: "reflection", "replication" or "zero" (pix2pixCC's names).

    Zeros go through the Pad primitive: with ops.pad's constant mode, MindSpore 2.10's CPU graph
    stalls on the third training step of a U-Net with resize-convolutions (the step never returns;
    reflection and replication are unaffected). MindSpore 2.10 cannot write reflection or
    replication padding (PadV3) to ONNX: with `onnx_form` (use_onnx_forms) the edges are sliced
    and concatenated instead, which it writes as Slice and Concat for any height and width."""

    MODES = {"reflection": "reflect", "replication": "replicate"}

    def __init__(self, size, padding_type):
        super().__init__()
        self.padding = (size, size, size, size)
        self.zero = ops.Pad(((0, 0), (0, 0), (size, size), (size, size))) if padding_type == "zero" else None
        self.mode = self.MODES.get(padding_type)
        self.edges = _edge_slices(size, self.mode)
        self.onnx_form = False

    def construct(self, x):
        if self.zero is not None:
            return self.zero(x)
        if self.onnx_form:
            return _pad_by_slices(_pad_by_slices(x, self.edges, 2), self.edges, 3)
        return ops.pad(x, self.padding, mode=self.mode)


# A slice end past any image side: the exporter writes the bounds of x[a:] as traced.
_PAST_THE_END = 2 ** 31 - 1


def _edge_slices(size, mode):
    """(start, end) of the rows that pad the top, then the bottom, by `size`, bottom rows counted
    from the end (so that they hold for any height): reflection mirrors about the edge row,
    replication repeats it."""
    if mode == "reflect":
        return (tuple((k, k + 1) for k in range(size, 0, -1)),
                tuple((-k - 1, -k) for k in range(1, size + 1)))
    return ((0, 1),) * size, ((-1, _PAST_THE_END),) * size


def _pad_by_slices(x, edges, axis):
    top, bottom = edges
    if axis == 2:
        return ops.concat([x[:, :, a:b] for a, b in top] + [x] + [x[:, :, a:b] for a, b in bottom], 2)
    return ops.concat([x[:, :, :, a:b] for a, b in top] + [x] + [x[:, :, :, a:b] for a, b in bottom], 3)


def use_onnx_forms(network):
    """Cells of `network` that MindSpore cannot write to ONNX as they are use their ONNX form (the
    same output, see Pad2d and Upsample2x): for export to ONNX only."""
    for _, cell in network.cells_and_names():
        if hasattr(cell, "onnx_form"):
            cell.onnx_form = True
    return network


class LeakyReLU(nn.Cell):
    """max(x, slope * x) for 0 < slope < 1, with a hand-written gradient.

    nn.LeakyReLU's automatic gradient of maximum() costs three selects and three comparisons per
    call; this one is a single select on the sign of the output, which the next layer keeps for
    its own gradient anyway, so no mask is held in memory."""

    def __init__(self, slope=0.2):
        super().__init__()
        self.slope = slope

    def construct(self, x):
        return ops.maximum(x, x * self.slope)

    def bprop(self, x, out, dout):
        return (ops.select(out >= 0, dout, dout * self.slope),)


class Mish(nn.Cell):
    """x * tanh(softplus(x)), the activation of the pix2pixCC generator. The Softplus primitive, not
    ops.softplus, whose threshold form compiles to ZerosLikeExt, declared for Ascend only."""

    def __init__(self):
        super().__init__()
        self.softplus = ops.Softplus()

    def construct(self, x):
        return x * ops.tanh(self.softplus(x))
