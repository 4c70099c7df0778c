"""PatchGAN discriminator: classifies overlapping patches of an (input, image) pair as real or fake."""
import mindspore.nn as nn
import mindspore.ops as ops

from src.models.layers import InstanceNorm2d, LeakyReLU, down_conv, norm_layer, uses_bias


class NLayerDiscriminator(nn.Cell):
    """C64-C128-C256-C512 then a 1-channel map of logits; n_layers=3 is the 70x70 PatchGAN.

    The input is the channel concatenation of the conditioning image and the real or generated
    image, so D judges the pair (30x30 logits at 256x256).
    """

    def __init__(self, in_channels, ndf=64, n_layers=3, norm="batch", padding_type="zero"):
        super().__init__()
        bias = uses_bias(norm)
        layers = [down_conv(in_channels, ndf, padding_type, has_bias=True), LeakyReLU(0.2)]
        width = ndf
        for n in range(1, n_layers + 1):
            next_width = ndf * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [down_conv(width, next_width, padding_type, has_bias=bias, stride=stride),
                       norm_layer(norm, next_width), LeakyReLU(0.2)]
            width = next_width
        layers.append(down_conv(width, 1, padding_type, has_bias=True, stride=1))
        self.model = nn.SequentialCell(layers)

    def construct(self, condition, image):
        return self.model(ops.concat((condition, image), 1))


def balanced_channel_repeats(input_nc, output_nc, ch_balance):
    """How many copies of (input, image) pix2pixCC stacks so neither side dominates D's input.

    With ch_balance > 0 and ratio r = ch_balance * input_nc / output_nc: r > 1 repeats the image
    int(r) times, r < 1 repeats the input int(1/r) times (pix2pixCC_Networks.PatchDiscriminator).
    """
    if ch_balance <= 0:
        return 1, 1
    ratio = ch_balance * input_nc / output_nc
    if ratio > 1:
        return 1, int(ratio)
    if ratio < 1:
        return int(1 / ratio), 1
    return 1, 1


class FeaturePatchDiscriminator(nn.Cell):
    """pix2pixCC's PatchDiscriminator: five blocks, returning every block's output (features for
    the feature-matching loss; the last one is the 1-channel LSGAN map). Instance norm, as there."""

    def __init__(self, in_channels, ndf=64):
        super().__init__()
        widths = [in_channels, ndf, ndf * 2, ndf * 4, ndf * 8]
        blocks = []
        for index in range(4):
            layers = [nn.Conv2d(widths[index], widths[index + 1], 4, stride=2 if index < 3 else 1,
                                pad_mode="pad", padding=1, has_bias=True)]
            if index > 0:
                layers.append(InstanceNorm2d())
            layers.append(LeakyReLU(0.2))
            blocks.append(nn.SequentialCell(layers))
        blocks.append(nn.Conv2d(ndf * 8, 1, 4, stride=1, pad_mode="pad", padding=1, has_bias=True))
        self.blocks = nn.CellList(blocks)

    def construct(self, x):
        features = ()
        for block in self.blocks:
            x = block(x)
            features += (x,)
        return features


class MultiScaleDiscriminator(nn.Cell):
    """`n_D` feature PatchGANs, the k-th on the pair average-pooled k times (3x3, stride 2, as
    pix2pixHD/pix2pixCC). Returns one tuple of features per scale."""

    def __init__(self, input_nc, output_nc, ndf=64, n_D=1, ch_balance=1.0):
        super().__init__()
        self.repeats = balanced_channel_repeats(input_nc, output_nc, ch_balance)
        in_channels = input_nc * self.repeats[0] + output_nc * self.repeats[1]
        self.scales = nn.CellList([FeaturePatchDiscriminator(in_channels, ndf) for _ in range(n_D)])
        self.pool = nn.AvgPool2d(kernel_size=3, stride=2, pad_mode="pad", padding=1, count_include_pad=False)

    def construct(self, condition, image):
        x = ops.concat((condition,) * self.repeats[0] + (image,) * self.repeats[1], 1)
        outputs = ()
        for index, scale in enumerate(self.scales):
            if index > 0:
                x = self.pool(x)
            outputs += (scale(x),)
        return outputs
