"""PatchGAN discriminator: classifies overlapping patches of an (input, image) pair as real or fake."""
import mindspore.nn as nn
import mindspore.ops as ops

from src.models.layers import down_conv, norm_layer, uses_bias


class NLayerDiscriminator(nn.Cell):
    """C64-C128-C256-C512 then a 1-channel map of logits; n_layers=3 is the 70x70 PatchGAN.

    The input is the channel concatenation of the conditioning image and the real or generated
    image, so D judges the pair (30x30 logits at 256x256).
    """

    def __init__(self, in_channels, ndf=64, n_layers=3, norm="batch", pad_mode="CONSTANT"):
        super().__init__()
        bias = uses_bias(norm)
        layers = [down_conv(in_channels, ndf, pad_mode, has_bias=True), nn.LeakyReLU(0.2)]
        width = ndf
        for n in range(1, n_layers + 1):
            next_width = ndf * min(2 ** n, 8)
            stride = 2 if n < n_layers else 1
            layers += [down_conv(width, next_width, pad_mode, has_bias=bias, stride=stride),
                       norm_layer(norm, next_width), nn.LeakyReLU(0.2)]
            width = next_width
        layers.append(down_conv(width, 1, pad_mode, has_bias=True, stride=1))
        self.model = nn.SequentialCell(layers)

    def construct(self, condition, image):
        return self.model(ops.concat((condition, image), 1))
