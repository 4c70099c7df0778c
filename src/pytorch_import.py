"""Checkpoints of the PyTorch reference pix2pix (`*_net_G.pth`, `*_net_D.pth`), as checkpoints of ours.

The reference's U-Net nests one block per level: block k's layers are `P_k.<index>`, with
P_0 = `model.model.`, P_1 = P_0 + `1.model.` (the outermost block's submodule is its layer 1) and
P_k = P_{k-1} + `3.model.` below (a middle block's submodule is its layer 3). Its PatchGAN is one
Sequential whose layer indices are those of ours. The architecture (U-Net depth, ngf, channels,
batch or instance norm; PatchGAN depth and ndf) is read from the state dict, the networks are built
by the model registry with the reference's decoder (`--upsample transpose`), every tensor is
mapped by name, and checkpoints are written as train.py writes them, with the flags they record.

Its forward equals ours: the reference's in-place LeakyReLU makes its skip connections carry
LeakyReLU(x) where ours carry x, but both go straight into the decoder's ReLU, and
ReLU(LeakyReLU(x)) = ReLU(x).
"""
import os
import zipfile

import numpy as np
from mindspore import Tensor

from src import checkpoint
from src.config import validate
from src.models import registry
from src.models.generators import MAX_UNET_DOWNS
from src.trained_generator import recorded_flags
from src.utils.errors import UserError

GENERATOR_FILE = "Generator_imported.ckpt"
DISCRIMINATOR_FILE = "Discriminator_imported.ckpt"
# The reference builds U-Nets of 5 levels and more (its innermost, outermost and three 64-256 levels).
MIN_REFERENCE_DOWNS = 5
# Batch norm's tensors: the reference's names -> ours.
BATCH_NORM = {"weight": "gamma", "bias": "beta", "running_mean": "moving_mean", "running_var": "moving_variance"}
INSTALL_TORCH = ("reading a PyTorch .pth needs torch, which is not installed: pip install torch (the CPU wheel "
                 "is enough; a venv made with --system-site-packages keeps it beside this project's packages), "
                 "or save the state dict as .npz where torch is and pass that")


def read_state_dict(path, what):
    """{name: float32 array} of a reference checkpoint: a .pth (torch.load, either of torch's file
    formats) or a .npz of the same names (NumPy, no torch needed)."""
    if not os.path.isfile(path):
        raise UserError(f"{what} {path}: no such file")
    state = _read_npz(path, what) if path.endswith(".npz") else _read_pth(path, what)
    if not state:
        raise UserError(f"{what} {path}: holds no tensors")
    names = list(state)
    if all(name.startswith("module.") for name in names):  # saved from a DataParallel wrapper
        state = {name[len("module."):]: value for name, value in state.items()}
    return state


def _read_npz(path, what):
    try:
        with np.load(path, allow_pickle=False) as archive:
            return {name: np.asarray(archive[name]) for name in archive.files}
    except (OSError, ValueError, EOFError, KeyError, zipfile.BadZipFile) as err:
        raise UserError(f"{what} {path}: not a readable .npz ({_first_line(err)})") from None


def _read_pth(path, what):
    try:
        import torch
    except ImportError:
        raise UserError(f"{what} {path}: {INSTALL_TORCH}") from None
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch.load raises a dozen types for a damaged file
        raise UserError(f"{what} {path}: not a readable PyTorch state dict ({_first_line(err)}); a truncated "
                        "or damaged file, or a whole pickled model rather than its state_dict()") from None
    if isinstance(loaded, dict) and isinstance(loaded.get("state_dict"), dict):
        loaded = loaded["state_dict"]
    if not isinstance(loaded, dict) or not all(torch.is_tensor(value) for value in loaded.values()):
        raise UserError(f"{what} {path}: not a state dict (a dict of tensors, as the reference's "
                        "save_networks writes)")
    return {name: value.detach().cpu().numpy() for name, value in loaded.items()}


def _first_line(err, limit=160):
    text = str(err).strip()
    line = text.splitlines()[0] if text else type(err).__name__
    return line if len(line) <= limit else line[:limit] + "..."


def _level_prefixes(state):
    """P_0, P_1, ... of the U-Net blocks present in the state dict."""
    prefixes = ["model.model."]
    while True:
        deeper = prefixes[-1] + ("1.model." if len(prefixes) == 1 else "3.model.")
        if not any(name.startswith(deeper) for name in state):
            return prefixes
        prefixes.append(deeper)


def _not_a_unet(state, path, what):
    names = sorted(state)
    if any(".conv_block." in name for name in names):
        return UserError(f"{what} {path}: a ResNet generator (the reference's resnet_*blocks); this project's "
                         "pix2pix generator is the U-Net: import a unet_128 or unet_256 generator")
    if "model.0.weight" in state and state["model.0.weight"].ndim == 4:
        return UserError(f"{what} {path}: a PatchGAN discriminator's state dict, not a generator's; "
                         "pass it with --pth_D")
    return UserError(f"{what} {path}: not the state dict of the reference's U-Net generator (its first "
                     f"names: {', '.join(names[:3])})")


def unet_architecture(state, path, what="--pth"):
    """{input_nc, output_nc, ngf, norm, unet_depth} of a reference U-Net state dict."""
    if "model.model.0.weight" not in state:
        raise _not_a_unet(state, path, what)
    prefixes = _level_prefixes(state)
    depth = len(prefixes)
    if not MIN_REFERENCE_DOWNS <= depth <= MAX_UNET_DOWNS:
        raise UserError(f"{what} {path}: a U-Net of {depth} levels; this project's U-Net has "
                        f"{MIN_REFERENCE_DOWNS} to {MAX_UNET_DOWNS} (unet_256 has 8, unet_128 7)")
    first, last = state[prefixes[0] + "0.weight"], state.get(prefixes[0] + "3.weight")
    if first.ndim != 4 or last is None or last.ndim != 4:
        raise _not_a_unet(state, path, what)
    if prefixes[1] + "2.running_mean" in state:
        norm = "batch"
    elif prefixes[1] + "2.weight" in state:
        raise UserError(f"{what} {path}: batch norm without running statistics (track_running_stats=False); "
                        "this project's batch norm keeps them")
    elif prefixes[0] + "0.bias" in state:
        norm = "instance"
    else:
        raise UserError(f"{what} {path}: a U-Net without normalisation (--norm none); this project's U-Net "
                        "takes batch or instance norm")
    return {"input_nc": int(first.shape[1]), "output_nc": int(last.shape[1]), "ngf": int(first.shape[0]),
            "norm": norm, "unet_depth": depth}


def unet_names(depth, norm):
    """{our parameter name: the reference's} for a U-Net of `depth` levels."""
    prefixes = ["model.model."]
    for level in range(1, depth):
        prefixes.append(prefixes[-1] + ("1.model." if level == 1 else "3.model."))
    names = {}
    for level, prefix in enumerate(prefixes):
        outermost, innermost = level == 0, level == depth - 1
        down_conv, down_norm = ("0", None) if outermost else ("1", None if innermost else "2")
        up_conv, up_norm = ("3", None) if outermost else ("3", "4") if innermost else ("5", "6")
        # Ours: the down block is [LeakyReLU] conv [norm], the up block ReLU conv norm|tanh.
        ours_down, ours_up = f"netG.downs.{level}.block.", f"netG.ups.{level}.block."
        ours_down_conv = ours_down + ("0" if outermost else "1")
        names[ours_down_conv + ".weight"] = prefix + down_conv + ".weight"
        names[ours_up + "1.weight"] = prefix + up_conv + ".weight"
        if outermost or norm == "instance":
            names[ours_up + "1.bias"] = prefix + up_conv + ".bias"
        if norm == "instance":
            names[ours_down_conv + ".bias"] = prefix + down_conv + ".bias"
            continue
        if down_norm:
            names.update({ours_down + "2." + mine: prefix + down_norm + "." + theirs
                          for theirs, mine in BATCH_NORM.items()})
        if up_norm:
            names.update({ours_up + "2." + mine: prefix + up_norm + "." + theirs
                          for theirs, mine in BATCH_NORM.items()})
    return names


def patchgan_architecture(state, path, what="--pth_D"):
    """{in_channels, ndf, n_layers_D, norm} of a reference PatchGAN (netD basic or n_layers) state dict."""
    convs = sorted(int(name.split(".")[1]) for name in state if name.count(".") == 2 and
                   name.split(".")[1].isdigit() and name.endswith(".weight") and state[name].ndim == 4)
    if not convs or convs[0] != 0 or "model.model.0.weight" in state:
        raise UserError(f"{what} {path}: not the state dict of the reference's PatchGAN discriminator "
                        f"(its first names: {', '.join(sorted(state)[:3])})")
    if len(convs) < 3:
        raise UserError(f"{what} {path}: a PatchGAN of {len(convs)} convolutions (the pixel discriminator?); "
                        "this project takes the reference's basic or n_layers PatchGAN")
    if "model.3.running_mean" in state:
        norm = "batch"
    elif "model.2.bias" in state:
        norm = "instance"
    else:
        raise UserError(f"{what} {path}: a PatchGAN without normalisation; this project's takes batch or instance norm")
    first = state["model.0.weight"]
    return {"in_channels": int(first.shape[1]), "ndf": int(first.shape[0]), "n_layers_D": len(convs) - 2,
            "norm": norm, "convs": convs}


def patchgan_names(convs, norm):
    """{our parameter name: the reference's}: the same Sequential indices, batch norm renamed."""
    names = {}
    for position, index in enumerate(convs):
        names[f"netD.model.{index}.weight"] = f"model.{index}.weight"
        if position in (0, len(convs) - 1) or norm == "instance":
            names[f"netD.model.{index}.bias"] = f"model.{index}.bias"
        elif norm == "batch":
            names.update({f"netD.model.{index + 1}.{mine}": f"model.{index + 1}.{theirs}"
                          for theirs, mine in BATCH_NORM.items()})
    return names


def load_mapped(network, state, names, path, what):
    """Copy the reference's tensors into `network` by `names`; every tensor on both sides is used
    (batch norm's num_batches_tracked aside) and every shape agrees, or UserError naming the first."""
    ours = {param.name: param for param in network.get_parameters()}
    missing = sorted(set(ours) - set(names))
    if missing:
        raise UserError(f"{what} {path}: nothing maps to {missing[0]} ({len(missing)} parameters)")
    used = set(names.values())
    unused = sorted(name for name in state if name not in used and not name.endswith("num_batches_tracked"))
    if unused:
        raise UserError(f"{what} {path}: {unused[0]} has no place in this network ({len(unused)} tensors "
                        "left over): not the architecture its other tensors describe")
    for mine, theirs in names.items():
        if theirs not in state:
            raise UserError(f"{what} {path}: has no {theirs}, which {mine} needs")
        value = np.asarray(state[theirs], np.float32)
        if value.shape != tuple(ours[mine].shape):
            raise UserError(f"{what} {path}: {theirs} has shape {value.shape}, this network's {mine} "
                            f"{tuple(ours[mine].shape)}")
        ours[mine].set_data(Tensor(np.ascontiguousarray(value)))


def generator_config(cfg, architecture):
    """cfg with the state dict's generator architecture, the reference's decoder, and the training
    size of its depth (2**depth: 256 for unet_256; a fine-tune may train at a multiple of it)."""
    cfg.model = "pix2pix"
    cfg.upsample = "transpose"
    cfg.padding_type = "zero"
    cfg.crop_size = 2 ** architecture["unet_depth"]
    for name in ("input_nc", "output_nc", "ngf", "norm"):
        setattr(cfg, name, architecture[name])
    validate(cfg)
    return cfg


def import_checkpoints(cfg):
    """import_pytorch.py: write Generator_imported.ckpt (and Discriminator_imported.ckpt with
    --pth_D) in --out_dir once both are mapped; returns their paths."""
    state_G = read_state_dict(cfg.pth, "--pth")
    architecture = unet_architecture(state_G, cfg.pth)
    cfg = generator_config(cfg, architecture)
    netG = registry.build_generator(cfg)
    load_mapped(netG, state_G, unet_names(architecture["unet_depth"], architecture["norm"]), cfg.pth, "--pth")
    netD = imported_discriminator(cfg) if cfg.pth_D else None
    written = [_save(netG, cfg, "generator", GENERATOR_FILE, config=recorded_flags(cfg))]
    if netD is not None:
        written.append(_save(netD, cfg, "discriminator", DISCRIMINATOR_FILE))
    print(f"imported {cfg.pth}: U-Net of {architecture['unet_depth']} levels, ngf {cfg.ngf}, {cfg.input_nc} -> "
          f"{cfg.output_nc} channels, {cfg.norm} norm, training size {cfg.crop_size}"
          + (f"; {cfg.pth_D}: PatchGAN of {cfg.n_layers_D} layers, ndf {cfg.ndf}" if netD is not None else ""))
    for path in written:
        print(f"wrote {path}")
    print(f"use it: python eval.py --ckpt {written[0]} --val_data_dir DIR; fine-tune: python train.py "
          f"--pretrained_G {written[0]}" + (f" --pretrained_D {written[1]}" if netD is not None else "")
          + " --train_data_dir DIR")
    return written


def imported_discriminator(cfg):
    """Our PatchGAN holding --pth_D's weights; it must judge the generator's pairs (cfg) alike."""
    state = read_state_dict(cfg.pth_D, "--pth_D")
    layout = patchgan_architecture(state, cfg.pth_D)
    if layout["in_channels"] != cfg.input_nc + cfg.output_nc or layout["norm"] != cfg.norm:
        raise UserError(f"--pth_D {cfg.pth_D}: a discriminator of {layout['in_channels']} input channels with "
                        f"{layout['norm']} norm; the generator's pairs have {cfg.input_nc + cfg.output_nc} "
                        f"with {cfg.norm} norm: not the same model's D")
    cfg.ndf, cfg.n_layers_D = layout["ndf"], layout["n_layers_D"]
    netD = registry.build_discriminator(cfg)
    load_mapped(netD, state, patchgan_names(layout["convs"], layout["norm"]), cfg.pth_D, "--pth_D")
    return netD


def _save(network, cfg, which, file_name, config=None):
    os.makedirs(cfg.out_dir, exist_ok=True)
    path = os.path.join(cfg.out_dir, file_name)
    checkpoint.save_network(network, path, {"model": cfg.model, **registry.arch(cfg, which)}, config=config)
    return path
