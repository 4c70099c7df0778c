"""Check import_pytorch.py against the PyTorch reference's own networks at full size: unet_256 (ngf 64)
and the 70x70 PatchGAN (ndf 64) at 256x256, both of torch's file formats, and the exported MINDIR
and ONNX. Needs an interpreter with torch that also sees this project's packages (a venv made with
--system-site-packages, then pip install torch):

    python3 tools/check_pytorch_import.py --torch_python torch-venv/bin/python \
        --reference_dir ../shared/reference/pytorch-CycleGAN-and-pix2pix          # writes bench/PYTORCH_IMPORT.md

1. tools/reference_networks.py builds the networks with the reference's code and writes their .pth
   files (zip and legacy format), the same state dicts as .npz, an input and the reference's outputs.
2. import_pytorch.py imports each: the .pth files with the torch interpreter, the .npz with this one.
   The three generator checkpoints must hold the same tensors.
3. Ours against the reference, max |difference| on the [-1, 1] output: eval() against --bn_stats
   running (checkpoint, MINDIR, ONNX), train-mode batch norm with dropout off against --bn_stats image,
   and D's logits both ways. Target: <= 1e-4 each.
4. A truncated .pth must give one line and exit 2.
tests/test_pytorch_import.py runs steps 2 and 3 on small committed fixtures, without torch.
"""
import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

import numpy as np  # noqa: E402

TOLERANCE = 1e-4


def run(command, **kwargs):
    result = subprocess.run([str(part) for part in command], cwd=REPO, capture_output=True, text=True, **kwargs)
    if result.returncode:
        raise SystemExit(f"check_pytorch_import: {' '.join(map(str, command[:3]))} failed:\n{result.stderr[-3000:]}")
    return result


def import_files(python, generator, discriminator, out_dir):
    """import_pytorch.py on one pair of files with `python`; the checkpoints' folder."""
    run([python, os.path.join(REPO, "import_pytorch.py"), "--pth", generator, "--pth_D", discriminator,
         "--out_dir", out_dir])
    return out_dir


def differences(io_path, ckpt_dir, export_dir, exports=True):
    """{what: max |ours - reference|} for the imported checkpoints in `ckpt_dir` on io.npz's input
    (with `exports`, also of the generator exported to MINDIR and ONNX)."""
    import mindspore as ms
    from mindspore import Tensor
    from src import checkpoint
    from src.config import default_config, parse_args
    from src.exported_model import load_exported
    from src.exporter import export_generator
    from src.models import registry
    from src.pytorch_import import DISCRIMINATOR_FILE, GENERATOR_FILE
    from src.trained_generator import load_generator, resolve_checkpoint_flags

    ms.set_context(mode=ms.GRAPH_MODE)
    io = np.load(io_path)
    x, y = io["x"], io["y"]
    generator = os.path.join(ckpt_dir, GENERATOR_FILE)
    found = {}
    for mode, truth in (("running", "G_eval"), ("image", "G_batch")):
        cfg = resolve_checkpoint_flags(default_config(ckpt=generator, bn_stats=mode), warn=print)
        found[f"G, --bn_stats {mode}, checkpoint"] = _max_difference(load_generator(cfg)(Tensor(x)).asnumpy(),
                                                                     io[truth])
    for file_format, suffix in (("MINDIR", ".mindir"), ("ONNX", ".onnx")) if exports else ():
        name = os.path.join(export_dir, f"generator_{file_format.lower()}")
        export_generator(resolve_checkpoint_flags(parse_args("export", [
            "--ckpt", generator, "--bn_stats", "running", "--file_format", file_format, "--file_name", name])))
        flag = "--mindir" if file_format == "MINDIR" else "--onnx"
        found[f"G, --bn_stats running, {file_format}"] = _max_difference(
            load_exported(name + suffix, flag).forward(x), io["G_eval"])
    discriminator = os.path.join(ckpt_dir, DISCRIMINATOR_FILE)
    arch = checkpoint.read_recorded_arch(discriminator)
    cfg = default_config(**{name: value for name, value in arch.items() if name != "model"})
    netD = registry.build_discriminator(cfg)
    checkpoint.load_network(netD, discriminator, {"model": cfg.model, **registry.arch(cfg, "discriminator")})
    for train, truth, what in ((False, "D_eval", "running statistics"), (True, "D_batch", "batch statistics")):
        netD.set_train(train)
        found[f"D logits, {what}"] = _max_difference(netD(Tensor(x), Tensor(y)).asnumpy(), io[truth])
    return found


def _max_difference(ours, reference):
    return float(np.abs(np.asarray(ours) - reference).max())


def same_tensors(*paths):
    """Whether the checkpoints at `paths` hold identical tensors."""
    import mindspore as ms
    loaded = [{k: v.asnumpy() for k, v in ms.load_checkpoint(path).items() if hasattr(v, "asnumpy")}
              for path in paths]
    return all(set(other) == set(loaded[0]) and all(np.array_equal(other[k], loaded[0][k]) for k in loaded[0])
               for other in loaded[1:])


def truncated_file_error(python, path, work_dir):
    """import_pytorch.py's stderr and exit code on the first half of the .pth at `path`."""
    truncated = os.path.join(work_dir, "truncated_net_G.pth")
    with open(path, "rb") as src, open(truncated, "wb") as dst:
        data = src.read()
        dst.write(data[:len(data) // 2])
    result = subprocess.run([python, os.path.join(REPO, "import_pytorch.py"), "--pth", truncated, "--out_dir",
                             os.path.join(work_dir, "never")], cwd=REPO, capture_output=True, text=True)
    return result.stderr.strip().replace(work_dir, "<tmp>"), result.returncode


def report(found, identical, truncated, args):
    lines = ["# The PyTorch reference's checkpoints imported (generated by tools/check_pytorch_import.py)", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} cores, {datetime.date.today().isoformat()}. Networks "
             f"built by the reference's own code (`UnetGenerator` of {args.depth} levels, ngf {args.ngf}; basic "
             f"PatchGAN, ndf {args.ndf}; batch norm), {args.size}x{args.size} input, weights spread so that outputs "
             "cover tanh's range (tools/reference_networks.py). Target: max |ours - reference| <= "
             f"{TOLERANCE:g} on the [-1, 1] output.", "",
             "| ours | the reference | max abs difference | within target |", "| --- | --- | --- | --- |"]
    for what, value in found.items():
        truth = ("train-mode batch norm at batch 1, dropout off" if "image" in what or "batch" in what
                 else "eval()")
        lines.append(f"| {what} | {truth} | {value:.2e} | {'yes' if value <= TOLERANCE else 'NO'} |")
    lines += ["", f"- The generator imported from the zip-format .pth, the legacy-format .pth and the .npz: "
                  f"{'identical tensors' if identical else 'DIFFERENT tensors'}.",
              f"- A truncated .pth: exit {truncated[1]}, `{truncated[0]}`."]
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Check import_pytorch.py against the reference's networks at "
                                     "full size; writes a Markdown report.")
    parser.add_argument("--torch_python", required=True,
                        help="an interpreter with torch that also sees this project's packages")
    parser.add_argument("--reference_dir", required=True, help="the reference pix2pix's folder")
    parser.add_argument("--depth", type=int, default=8, help="U-Net levels (default: %(default)s, unet_256)")
    parser.add_argument("--ngf", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--ndf", type=int, default=64, help="(default: %(default)s)")
    parser.add_argument("--size", type=int, default=256, help="(default: %(default)s)")
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "PYTORCH_IMPORT.md"),
                        help="the report (default: bench/PYTORCH_IMPORT.md)")
    args = parser.parse_args(argv)
    from src.utils.files import atomic_write_text
    with tempfile.TemporaryDirectory(prefix="pytorch_import_") as work:
        run([args.torch_python, os.path.join(REPO, "tools", "reference_networks.py"), "--reference_dir",
             args.reference_dir, "--out_dir", work, "--depth", args.depth, "--ngf", args.ngf, "--ndf", args.ndf,
             "--size", args.size])
        files = {name: os.path.join(work, name) for name in ("G.pth", "G_legacy.pth", "G.npz", "D.pth", "D.npz")}
        zip_dir = import_files(args.torch_python, files["G.pth"], files["D.pth"], os.path.join(work, "from_pth"))
        legacy_dir = import_files(args.torch_python, files["G_legacy.pth"], files["D.pth"],
                                  os.path.join(work, "from_legacy"))
        npz_dir = import_files(sys.executable, files["G.npz"], files["D.npz"], os.path.join(work, "from_npz"))
        identical = same_tensors(*(os.path.join(folder, "Generator_imported.ckpt")
                                   for folder in (zip_dir, legacy_dir, npz_dir)))
        found = differences(os.path.join(work, "io.npz"), zip_dir, work)
        truncated = truncated_file_error(args.torch_python, files["G.pth"], work)
    text = report(found, identical, truncated, args)
    atomic_write_text(args.out, text)
    print(text)
    ok = identical and truncated[1] == 2 and all(value <= TOLERANCE for value in found.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
