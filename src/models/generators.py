"""Generators. The U-Net follows Isola et al. (CVPR 2017) and the PyTorch pix2pix reference.

Dropout is driven by noise that the caller passes in (`dropout_noise`, uniform in [0, 1), one
row per sample) instead of an RNG kernel inside the graph. MindSpore's in-graph dropout keeps its
random state in the kernel, which a checkpoint cannot hold; with the noise drawn on the host from
(seed, epoch, sample), a resumed run and a data-parallel run draw exactly the masks an
uninterrupted single-process run draws. Without noise (eval, export) dropout is off.
"""
import mindspore.nn as nn
import mindspore.ops as ops

from src.models.layers import LeakyReLU, Mish, Pad2d, ResizeConv, down_conv, norm_layer, up_conv, uses_bias
from src.utils.errors import UserError

MIN_UNET_SIZE = 32
MAX_UNET_DOWNS = 8
# Resize-convolution decoder blocks whose input is at most this wide at the training size take the
# explicit form (bench/RESULTS.md: fastest on the 64-px and 256-px steps).
EXPLICIT_RESIZE_MAX_SIZE = 2


def unet_depth(size):
    """Downsamplings for a square training size: 8 at 256 (1x1 bottleneck), 7 at 128 ... 5 at 32.

    Larger sizes keep 8 (the bottleneck grows); the size must halve cleanly that many times.
    """
    if size < MIN_UNET_SIZE or size % MIN_UNET_SIZE:
        raise UserError(f"--crop_size {size}: the U-Net needs a multiple of {MIN_UNET_SIZE} "
                        "(32, 64, 128, 256, ...)")
    depth = 0
    while size % 2 == 0 and depth < MAX_UNET_DOWNS:
        size //= 2
        depth += 1
    return depth


class UnetDown(nn.Cell):
    """[LeakyReLU 0.2] -> 4x4 conv stride 2 -> [norm]: the activation of the block before it
    is applied here so that the skip connection carries the un-activated features."""

    def __init__(self, in_channels, out_channels, norm, padding_type, outermost, innermost):
        super().__init__()
        with_norm = not (outermost or innermost)
        layers = [] if outermost else [LeakyReLU(0.2)]
        # No bias under batch norm even on the outermost and innermost blocks, which have no norm
        # layer: the reference's encoder convolutions all follow its use_bias rule.
        layers.append(down_conv(in_channels, out_channels, padding_type, has_bias=uses_bias(norm)))
        if with_norm:
            layers.append(norm_layer(norm, out_channels))
        self.block = nn.SequentialCell(layers)

    def construct(self, x):
        return self.block(x)


class UnetUp(nn.Cell):
    """ReLU -> ResizeConv (or, with upsample "transpose", a 4x4 transposed conv stride 2) -> norm,
    or -> tanh on the outermost block. `train_input_size`: the block's input size at the training
    size, which picks ResizeConv's faster formulation."""

    def __init__(self, in_channels, out_channels, norm, outermost, upsample="transpose", padding_type="zero",
                 train_input_size=None):
        super().__init__()
        has_bias = outermost or uses_bias(norm)
        up = (ResizeConv(in_channels, out_channels, has_bias, padding_type,
                         transposed=train_input_size is None or train_input_size > EXPLICIT_RESIZE_MAX_SIZE)
              if upsample == "resize" else up_conv(in_channels, out_channels, has_bias=has_bias))
        layers = [nn.ReLU(), up]
        layers.append(nn.Tanh() if outermost else norm_layer(norm, out_channels))
        self.block = nn.SequentialCell(layers)

    def construct(self, x):
        return self.block(x)


class UnetGenerator(nn.Cell):
    """U-Net with `num_downs` levels: C64-C128-C256-C512-C512... down, mirrored up, with skips.

    Level k's encoder output is concatenated to the decoder's input at level k. The 512-channel
    levels between the fourth and the innermost carry dropout while training (three at 256 px).
    """

    def __init__(self, input_nc, output_nc, ngf, num_downs, norm="batch", padding_type="zero",
                 use_dropout=True, dropout_rate=0.5, train_size=256, upsample="transpose"):
        super().__init__()
        widths = [ngf, ngf * 2, ngf * 4] + [ngf * 8] * (num_downs - 3)
        self.num_downs = num_downs
        downs, ups = [], []
        for level in range(num_downs):
            outermost, innermost = level == 0, level == num_downs - 1
            outer = widths[level - 1] if level else None
            downs.append(UnetDown(input_nc if outermost else outer, widths[level], norm, padding_type,
                                  outermost, innermost))
            up_in = widths[level] if innermost else widths[level] * 2
            ups.append(UnetUp(up_in, output_nc if outermost else outer, norm, outermost, upsample, padding_type,
                              train_size // 2 ** (level + 1)))
        self.downs = nn.CellList(downs)
        self.ups = nn.CellList(ups)
        self.dropout_rate = dropout_rate
        # (level, offset, size) of each dropout layer's slice of the per-sample noise row.
        self.dropout_slices = []
        offset = 0
        if use_dropout:
            for level in range(4, num_downs - 1):
                size = widths[level - 1] * (train_size // 2 ** level) ** 2
                self.dropout_slices.append((level, offset, size))
                offset += size
        self.dropout_noise_size = offset

    def construct(self, x, dropout_noise=None):
        features = ()
        h = x
        for level in range(self.num_downs):
            h = self.downs[level](h)
            features += (h,)
        h = self.ups[self.num_downs - 1](features[self.num_downs - 1])
        h = self._dropout(h, self.num_downs - 1, dropout_noise)
        for level in range(self.num_downs - 2, -1, -1):
            h = self.ups[level](ops.concat((features[level], h), 1))
            h = self._dropout(h, level, dropout_noise)
        return h

    def _dropout(self, h, level, noise):
        if noise is None:
            return h
        for noise_level, offset, size in self.dropout_slices:
            if noise_level == level:
                keep = ops.reshape(noise[:, offset:offset + size], ops.shape(h)) >= self.dropout_rate
                h = h * ops.cast(keep, h.dtype) / (1.0 - self.dropout_rate)
        return h


class ResidualBlock(nn.Cell):
    def __init__(self, channels, padding_type, norm):
        super().__init__()
        self.block = nn.SequentialCell([
            Pad2d(1, padding_type), nn.Conv2d(channels, channels, 3, pad_mode="valid", has_bias=True),
            norm_layer(norm, channels), Mish(),
            Pad2d(1, padding_type), nn.Conv2d(channels, channels, 3, pad_mode="valid", has_bias=True),
            norm_layer(norm, channels)])

    def construct(self, x):
        return x + self.block(x)


class Upsample2x(nn.Cell):
    """Bilinear x2 (align_corners, as torch's UpsamplingBilinear2d), then a 3x3 convolution.

    MindSpore 2.10 cannot write a bilinear resize to ONNX: with `onnx_form` (use_onnx_forms) a
    nearest x2 with align_corners stands in for it, which src/exporter.py's repair_onnx turns into
    ONNX's bilinear Resize with align_corners."""

    def __init__(self, in_channels, out_channels, padding_type):
        super().__init__()
        self.pad = Pad2d(1, padding_type)
        self.conv = nn.Conv2d(in_channels, out_channels, 3, pad_mode="valid", has_bias=True)
        self.onnx_form = False

    def construct(self, x):
        height, width = ops.shape(x)[2:]
        if self.onnx_form:
            x = ops.ResizeNearestNeighbor((height * 2, width * 2), align_corners=True)(x)
        else:
            x = ops.interpolate(x, size=(height * 2, width * 2), mode="bilinear", align_corners=True)
        return self.conv(self.pad(x))


class ResidualGenerator(nn.Cell):
    """The pix2pixHD global generator as pix2pixCC builds it (Jeong et al. 2022, ApJL 929 L3;
    github.com/JeongHyunJin/Pix2PixCC, pix2pixCC_Networks.Generator):

    pad 3 + 7x7 conv -> norm -> Mish; `n_downsample` x (5x5 conv stride 2, channels x2);
    `n_residual` residual blocks; `n_downsample` x (3x3 transposed conv stride 2 with output
    padding 1, or bilinear x2 + 3x3 conv; channels /2); pad 3 + 7x7 conv to the output channels.
    The output is linear, as in pix2pixCC (physical values may exceed [-1, 1]); "tanh" bounds it.
    No dropout: `dropout_noise_size` is 0 and the noise argument is ignored.
    """

    dropout_noise_size = 0

    def __init__(self, input_nc, output_nc, ngf=64, n_downsample=4, n_residual=9, trans_conv=True,
                 norm="instance", padding_type="replication", output_activation="linear"):
        super().__init__()
        layers = [Pad2d(3, padding_type), nn.Conv2d(input_nc, ngf, 7, pad_mode="valid", has_bias=True),
                  norm_layer(norm, ngf), Mish()]
        width = ngf
        for _ in range(n_downsample):
            layers += [nn.Conv2d(width, width * 2, 5, stride=2, pad_mode="pad", padding=2, has_bias=True),
                       norm_layer(norm, width * 2), Mish()]
            width *= 2
        layers += [ResidualBlock(width, padding_type, norm) for _ in range(n_residual)]
        for _ in range(n_downsample):
            up = (nn.Conv2dTranspose(width, width // 2, 3, stride=2, pad_mode="pad", padding=1,
                                     output_padding=1, has_bias=True)
                  if trans_conv else Upsample2x(width, width // 2, padding_type))
            layers += [up, norm_layer(norm, width // 2), Mish()]
            width //= 2
        layers += [Pad2d(3, padding_type), nn.Conv2d(width, output_nc, 7, pad_mode="valid", has_bias=True)]
        if output_activation == "tanh":
            layers.append(nn.Tanh())
        self.model = nn.SequentialCell(layers)

    def construct(self, x, dropout_noise=None):
        return self.model(x)
