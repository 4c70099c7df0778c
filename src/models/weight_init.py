"""Weight initialisation of convolutions and normalisation layers (as pix2pix's init_weights)."""
import mindspore.nn as nn
from mindspore.common import initializer as init


def _weight_initializer(init_type, gain):
    if init_type == "normal":
        return init.Normal(sigma=gain, mean=0.0)
    if init_type == "xavier":
        return init.XavierNormal(gain=gain)
    if init_type == "kaiming":
        return init.HeNormal(negative_slope=0, mode="fan_in")
    if init_type == "orthogonal":
        return init.Orthogonal(gain=gain)
    raise ValueError(f"unknown init_type {init_type!r}")


def init_weights(net, init_type="normal", init_gain=0.02):
    """Conv weights from `init_type`, biases 0; batch-norm gamma ~ N(1, gain), beta 0.

    The draws come from MindSpore's global seed, so `mindspore.set_seed` makes them repeatable.
    """
    for _, cell in net.cells_and_names():
        if isinstance(cell, (nn.Conv2d, nn.Conv2dTranspose, nn.Dense)):
            weight = cell.weight
            weight.set_data(init.initializer(_weight_initializer(init_type, init_gain),
                                             weight.shape, weight.dtype))
            if cell.bias is not None:
                cell.bias.set_data(init.initializer("zeros", cell.bias.shape, cell.bias.dtype))
        elif isinstance(cell, nn.BatchNorm2d):
            cell.gamma.set_data(init.initializer(init.Normal(sigma=init_gain, mean=1.0),
                                                 cell.gamma.shape, cell.gamma.dtype))
            cell.beta.set_data(init.initializer("zeros", cell.beta.shape, cell.beta.dtype))
