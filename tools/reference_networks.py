"""Networks built by the PyTorch reference pix2pix's own code, their state dicts and their outputs: what
import_pytorch.py is checked against. Run it with an interpreter that has torch:

    torch-venv/bin/python tools/reference_networks.py --reference_dir ../shared/reference/pytorch-CycleGAN-and-pix2pix \
        --out_dir tests/data/pytorch --depth 6 --ngf 8 --ndf 8 --size 64          # the test fixtures
    torch-venv/bin/python tools/reference_networks.py --reference_dir ... --out_dir DIR   # unet_256 at 256 px

It builds the reference's UnetGenerator (`define_G(..., 'unet_256', ...)` is the 8-level one) and its
basic PatchGAN with weights that give outputs across tanh's range (Kaiming-scaled convolutions,
random biases and batch-norm affines, running statistics measured on random inputs, where the
reference's N(0, 0.02) initialisation would give near-constant outputs), and writes to --out_dir:
- G.pth and D.pth (torch's zip format), G_legacy.pth (its pre-1.6 format), the reference's files;
- G.npz and D.npz: the same state dicts as NumPy arrays, which import_pytorch.py reads without torch;
- io.npz: the input `x`, a target `y`, and the reference's outputs: `G_eval` (eval(): running
  statistics, no dropout), `G_batch` (train-mode batch norm at batch 1, dropout off), `D_eval` and
  `D_batch` (its logits for the pair (x, y) in the same two modes);
- with --resnet, resnet_G.npz: a small ResNet generator's state dict (the importer refuses it).
Nothing of the reference is copied: its modules are imported from --reference_dir and run.
"""
import argparse
import copy
import os
import sys

import numpy as np


def build_generator(networks, args):
    norm_layer = networks.get_norm_layer(args.norm)
    return networks.UnetGenerator(args.input_nc, args.output_nc, args.depth, args.ngf, norm_layer=norm_layer,
                                  use_dropout=True)


def build_discriminator(networks, args):
    return networks.define_D(args.input_nc + args.output_nc, args.ndf, "basic", norm=args.norm)


def spread_weights(torch, nn, network, generator):
    """Weights whose activations keep their scale through the depth: Kaiming-normal convolutions,
    small random biases, batch-norm affines around 1 and 0."""
    generator.manual_seed(0)
    with torch.no_grad():
        for module in network.modules():
            if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
                # A stride-2 transposed 4x4 convolution reaches each output pixel with 2x2 taps per input channel.
                fan_in = module.weight[0].numel() if isinstance(module, nn.Conv2d) else module.weight.shape[0] * 4
                module.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=generator)
                if module.bias is not None:
                    module.bias.normal_(0.0, 0.05, generator=generator)
            elif isinstance(module, nn.BatchNorm2d):
                module.weight.uniform_(0.6, 1.4, generator=generator)
                module.bias.normal_(0.0, 0.1, generator=generator)


def calibrate(torch, nn, network, inputs):
    """Running statistics measured on `inputs` (cumulative averages), as training leaves them."""
    batch_norms = [m for m in network.modules() if isinstance(m, nn.BatchNorm2d)]
    for module in batch_norms:
        module.reset_running_stats()
        module.momentum = None
    network.train()
    with torch.no_grad():
        for sample in inputs:
            network(*sample)
    for module in batch_norms:
        module.momentum = 0.1


def batch_mode(nn, network):
    """A copy of `network` in train-mode batch norm (each forward pass's statistics, which also move
    the running ones: hence the copy) with dropout off."""
    network = copy.deepcopy(network)
    network.train()
    for module in network.modules():
        if isinstance(module, nn.Dropout):
            module.eval()
    return network


def save_state(torch, network, out_dir, name, legacy=False):
    state = network.state_dict()
    torch.save(state, os.path.join(out_dir, f"{name}.pth"))
    if legacy:
        torch.save(state, os.path.join(out_dir, f"{name}_legacy.pth"), _use_new_zipfile_serialization=False)
    np.savez(os.path.join(out_dir, f"{name}.npz"), **{key: value.numpy() for key, value in state.items()})


def main(argv=None):
    parser = argparse.ArgumentParser(description="Build the reference pix2pix's networks with its own code and "
                                     "write their state dicts and outputs (the import check's truth).")
    parser.add_argument("--reference_dir", required=True, help="the reference's folder (models/networks.py)")
    parser.add_argument("--out_dir", required=True, help="where the files are written")
    parser.add_argument("--depth", type=int, default=8, help="U-Net levels: 8 is unet_256 (default: %(default)s)")
    parser.add_argument("--ngf", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--ndf", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="input height and width (default: %(default)s)")
    parser.add_argument("--input_nc", type=int, default=3, help="(default: %(default)s)")
    parser.add_argument("--output_nc", type=int, default=3, help="(default: %(default)s)")
    parser.add_argument("--norm", default="batch", choices=["batch", "instance"], help="(default: %(default)s)")
    parser.add_argument("--resnet", action="store_true", help="also write resnet_G.npz (a small ResNet generator)")
    args = parser.parse_args(argv)
    import torch
    import torch.nn as nn
    sys.path.insert(0, os.path.abspath(args.reference_dir))
    from models import networks

    torch.manual_seed(0)
    os.makedirs(args.out_dir, exist_ok=True)
    generator = torch.Generator().manual_seed(0)
    netG, netD = build_generator(networks, args), build_discriminator(networks, args)
    spread_weights(torch, nn, netG, generator)
    spread_weights(torch, nn, netD, generator)
    shape = (1, args.input_nc, args.size, args.size)
    x = torch.rand(shape, generator=generator) * 2 - 1
    y = torch.rand((1, args.output_nc, args.size, args.size), generator=generator) * 2 - 1
    calibrate(torch, nn, netG, [(torch.rand(shape, generator=generator) * 2 - 1,) for _ in range(4)])
    calibrate(torch, nn, netD, [(torch.cat((x, y), 1),) for _ in range(2)])
    outputs = {"x": x, "y": y}
    with torch.no_grad():
        netG.eval()
        netD.eval()
        outputs["G_eval"], outputs["D_eval"] = netG(x), netD(torch.cat((x, y), 1))
        outputs["G_batch"] = batch_mode(nn, netG)(x)
        outputs["D_batch"] = batch_mode(nn, netD)(torch.cat((x, y), 1))
    save_state(torch, netG, args.out_dir, "G", legacy=True)
    save_state(torch, netD, args.out_dir, "D")
    np.savez(os.path.join(args.out_dir, "io.npz"), **{key: value.numpy() for key, value in outputs.items()})
    if args.resnet:
        resnet = networks.define_G(args.input_nc, args.output_nc, 4, "resnet_6blocks", args.norm)
        np.savez(os.path.join(args.out_dir, "resnet_G.npz"),
                 **{key: value.numpy() for key, value in resnet.state_dict().items()})
    spread = outputs["G_eval"].numpy()
    print(f"wrote {args.out_dir}: G output range [{spread.min():.3f}, {spread.max():.3f}], std {spread.std():.3f}; "
          f"batch-statistics output std {outputs['G_batch'].numpy().std():.3f}")


if __name__ == "__main__":
    main()
