"""Which operators the project's compiled graphs use, and the platforms MindSpore declares for each.

    python3 tools/device_audit.py                      # every graph; writes docs/devices_audit.md
    python3 tools/device_audit.py --graphs train,export_onnx --out /tmp/audit.md

Each graph is compiled in a process of its own with MindSpore's IR dump on
(MS_DEV_SAVE_GRAPHS=1), and its primitives are read from the front end's final graph (the
`validate` IR): the graph MindSpore hands to the Ascend, GPU or CPU backend, before any backend
pass. That graph exists even where CPU cannot finish a compile (float16 convolutions under
--amp_level O2/O3). For each primitive the "Supported Platforms" of its MindSpore docstring is
read (or of the function its docstring refers to). The exit code is 1 if a documented primitive
lacks Ascend or GPU; primitives MindSpore does not document (graph plumbing, the gradient kernels
its automatic differentiation emits) are listed with the source line they come from.
"""
import argparse
import collections
import datetime
import glob
import importlib
import inspect
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

TINY = ["--crop_size", "32", "--load_size", "36", "--ngf", "8", "--ndf", "8", "--num_parallel_workers", "1"]
# name: (what is compiled, train.py flags that change the graph, run under msrun as data parallel)
GRAPHS = {
    "train": ("train", [], False),
    "train_transpose": ("train", ["--upsample", "transpose"], False),
    "train_instance_reflection": ("train", ["--norm", "instance", "--padding_type", "reflection"], False),
    "train_replication": ("train", ["--padding_type", "replication"], False),
    "train_lsgan": ("train", ["--gan_mode", "lsgan"], False),
    "train_loss_scale": ("train", ["--loss_scale", "1024"], False),
    "train_amp_O2": ("train", ["--amp_level", "O2"], False),
    "train_amp_O3": ("train", ["--amp_level", "O3"], False),
    "train_data_parallel": ("train", ["--run_distribute", "True"], True),
    "train_pix2pixcc": ("train", ["--model", "pix2pixcc"], False),
    "weight_average": ("ema", [], False),
    "validation": ("forward", [], False),
    "export_mindir": ("export_mindir", [], False),
    "export_mindir_running": ("export_mindir", ["--bn_stats", "running"], False),
    "export_onnx": ("export_onnx", [], False),
    "export_onnx_replication": ("export_onnx", ["--padding_type", "replication"], False),
    "export_mindir_pix2pixcc": ("export_mindir", ["--model", "pix2pixcc"], False),
    "export_onnx_pix2pixcc": ("export_onnx", ["--model", "pix2pixcc"], False),
}
# Graph plumbing of MindSpore's front end: no kernel on any device.
PLUMBING = {"Load", "UpdateState", "Depend", "MakeTuple", "TupleGetItem", "Return", "Partial", "Switch",
            "MakeList", "ListGetItem", "StopGradient", "make_tuple", "tuple_getitem", "TensorMove"}
PRIMITIVE = re.compile(r"^\s*%\d+\([^)]*\) = (?:PrimFunc_)?([A-Z][A-Za-z0-9_]*)\(")
SOURCE = re.compile(r"# In file (\S+?):(\d+)[^/]*/(.*)/")
CALL = re.compile(r"\b((?:ops|mint)(?:\.\w+)*\.[a-z_0-9]+)\(")
PLATFORMS = re.compile(r"Supported Platforms:\s*((?:``\w+``\s*)+)")
REFERS_TO = re.compile(r":func:`(mindspore\.[\w.]+)`")
DEVICES = ("Ascend", "GPU")


def primitives_of(ir_dir):
    """{primitive: (innermost source line, that line's code)} over the `validate` IR files in
    `ir_dir`: the innermost frame of the project where there is one, else of MindSpore."""
    found, frames = {}, {}
    for path in sorted(glob.glob(os.path.join(ir_dir, "**", "*validate*.ir"), recursive=True)):
        pending = None
        with open(path, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                match = PRIMITIVE.match(line)
                if match:
                    pending = match.group(1)
                    frames.setdefault(pending, [])
                    continue
                source = SOURCE.search(line)
                if source and pending:
                    frames[pending].append((source.group(1), source.group(2), source.group(3).strip()))
    for primitive, stack in frames.items():
        ours = [frame for frame in stack if frame[0].startswith(REPO + os.sep)]
        file, line, code = (ours or stack or [("", "", "")])[-1]
        found[primitive] = (_short_source(file, line) if file else "", code)
    return found


def _short_source(path, line):
    if path.startswith(REPO):
        return f"{os.path.relpath(path, REPO)}:{line}"
    return f"mindspore/{path.split('/mindspore/', 1)[-1]}:{line}" if "/mindspore/" in path else f"{path}:{line}"


def called_function(code):
    """The MindSpore function a line of the project's code calls (`ops.matmul(` -> mindspore.ops.matmul)."""
    call = CALL.search(code)
    return f"mindspore.{call.group(1)}" if call else None


def _resolve(dotted):
    parts = dotted.split(".")
    value = importlib.import_module(parts[0])
    for part in parts[1:]:
        value = getattr(value, part, None)
        if value is None:
            return None
    return value


def declared_platforms(name):
    """(where the declaration was read, [platforms]) or (None, None) for an undocumented primitive."""
    modules = ["mindspore.ops.operations", "mindspore.ops.auto_generate", "mindspore.ops.operations._inner_ops",
               "mindspore.ops.operations._grad_ops", "mindspore.ops.operations.comm_ops"]
    for module in map(importlib.import_module, modules):
        primitive = getattr(module, name, None)
        if not inspect.isclass(primitive):
            continue
        doc = primitive.__doc__ or ""
        declared = PLATFORMS.search(doc)
        if declared:
            return f"{module.__name__}.{name}", re.findall(r"``(\w+)``", declared.group(1))
        for reference in REFERS_TO.findall(doc):
            function = _resolve(reference)
            declared = PLATFORMS.search((function.__doc__ or "") if function is not None else "")
            if declared:
                return reference, re.findall(r"``(\w+)``", declared.group(1))
        return None, None
    return None, None


def _normalised(name):
    """MatMulExt, matmul and mat_mul_ext all become "matmul"."""
    name = name.rsplit(".", 1)[-1].replace("_", "").lower()
    return name[:-3] if name.endswith("ext") else name


def _platforms_of(function):
    value = _resolve(function) if function else None
    declared = PLATFORMS.search((value.__doc__ or "") if value is not None else "")
    return re.findall(r"``(\w+)``", declared.group(1)) if declared else None


_WRAPPERS = []


def _public_wrappers():
    """(qualified name, source) of MindSpore's public Python functions, read once."""
    if not _WRAPPERS:
        for module_name in ("mindspore.mint", "mindspore.mint.nn.functional", "mindspore.ops"):
            module = importlib.import_module(module_name)
            for name in dir(module):
                value = getattr(module, name)
                if name.startswith("_") or not inspect.isfunction(value):
                    continue
                try:
                    _WRAPPERS.append((f"{module_name}.{name}", inspect.getsource(value)))
                except (OSError, TypeError):
                    continue
    return _WRAPPERS


def function_platforms(primitive, code, source):
    """For a primitive with no declaration of its own (MatMulExt, SumExt): the platforms of the
    public function that wraps it, either the MindSpore function called on the project's source
    line when its name is the primitive's (ops.matmul -> MatMulExt), or a mint/ops function of the
    primitive's name whose body calls it (ops.sum -> sum_ext_op). Nothing else is guessed."""
    called = called_function(code)
    if called and _normalised(called) == _normalised(primitive):
        platforms = _platforms_of(called)
        if platforms:
            return f"{called}, called at {source}", platforms
    snake = re.sub(r"(?<!^)(?=[A-Z])", "_", primitive).lower()
    calls = re.compile(rf"\b({snake}|{snake.replace('mat_mul', 'matmul')})_op\(")
    for function, body in _public_wrappers():
        # A wrapper of another name (kl_div calls divs_op) declares its own platforms, not the primitive's.
        named = _normalised(function) == _normalised(primitive)
        platforms = named and calls.search(body) and _platforms_of(function)
        if platforms:
            return f"{function} (wraps it)", platforms
    return None, None


def _origin(name, source):
    if name in PLUMBING:
        return "graph plumbing (no kernel)"
    if any(word in name for word in ("Grad", "Backprop", "Backward")):
        return f"gradient kernel of automatic differentiation ({source or 'bprop'})"
    return source or "MindSpore internals"


# ----- the child process: compile one graph with the IR dump on ----------------------------------

def _config(flags, data_dir):
    from src.config import parse_args
    amp = None
    if "--amp_level" in flags:  # CPU refuses O2/O3 at validation; the graph is built all the same
        index = flags.index("--amp_level")
        amp, flags = flags[index + 1], flags[:index] + flags[index + 2:]
    cfg = parse_args("train", ["--train_data_dir", data_dir, *TINY, *flags])
    if amp:
        cfg.amp_level = amp
    return cfg


def compile_one(kind, flags, data_dir, work_dir):
    """Compile the graph `kind` for train.py `flags`; the IR lands in MS_DEV_SAVE_GRAPHS_PATH."""
    import mindspore as ms
    import numpy as np
    from mindspore import Tensor

    from src.models import registry
    from src.models.layers import use_onnx_forms
    from src.trained_generator import use_image_statistics
    from src.utils.device import set_context
    from src.utils.lr import learning_rates

    cfg = _config(flags, data_dir)
    set_context(cfg)
    netG, netD = registry.build_generator(cfg), registry.build_discriminator(cfg)
    x = Tensor(np.zeros((1, cfg.input_nc, cfg.crop_size, cfg.crop_size), np.float32))
    y = Tensor(np.zeros((1, cfg.output_nc, cfg.crop_size, cfg.crop_size), np.float32))
    if kind in ("train", "ema"):
        step = registry.build_train_step(cfg, netG, netD, learning_rates(cfg.lr_policy, cfg.lr, 4, 1, 1, 2))
        step.set_train(True)
        if kind == "train":
            step.compile(x, y, Tensor(np.zeros((1, max(1, netG.dropout_noise_size)), np.float32)))
        else:
            step.ema.compile(Tensor(10.0, ms.float32))
        return
    netG.set_train(False)
    if cfg.bn_stats == "image":
        use_image_statistics(netG)
    if kind == "forward":
        netG.compile(x)
        return
    if kind == "export_onnx":
        use_onnx_forms(netG)
        ms.export(netG, x, file_name=os.path.join(work_dir, "g"), file_format="ONNX")
    else:
        dynamic = Tensor(shape=[1, cfg.input_nc, None, None], dtype=ms.float32)
        ms.export(netG, dynamic, file_name=os.path.join(work_dir, "g"), file_format="MINDIR")


def run_graph(name, work_dir):
    """Compile graph `name` in a child process; returns (primitives, compile error or "")."""
    kind, flags, distributed = GRAPHS[name]
    ir_dir, data_dir = os.path.join(work_dir, name, "ir"), os.path.join(work_dir, "data")
    os.makedirs(data_dir, exist_ok=True)
    env = {**os.environ, "MS_DEV_SAVE_GRAPHS": "1", "MS_DEV_SAVE_GRAPHS_PATH": ir_dir, "GLOG_v": "3"}
    child = [os.path.abspath(__file__), "--_compile", name, "--work_dir", work_dir]
    if distributed:
        command = ["msrun", "--worker_num=1", "--local_worker_num=1", f"--master_port={8200 + os.getpid() % 500}",
                   f"--log_dir={os.path.join(work_dir, name, 'msrun')}", "--join=True", *child]
    else:
        command = [sys.executable, *child]
    done = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800)
    error = ""
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines()
                 if line.strip() and not line.startswith(("[WARNING]", "[INFO]"))]
        error = next((line for line in lines if "Error" in line), lines[-1] if lines else "failed")[:200]
    return primitives_of(ir_dir), error


# ----- the report ---------------------------------------------------------------------------------

def audit(names, work_dir):
    graphs, failures = {}, []
    for name in names:
        print(f"compiling {name}...", flush=True)
        primitives, error = run_graph(name, work_dir)
        if not primitives:
            raise SystemExit(f"device_audit: {name}: no graph was written ({error or 'no validate IR'})")
        rows = []
        for primitive, (source, code) in sorted(primitives.items()):
            where, platforms = declared_platforms(primitive)
            if platforms is None and primitive not in PLUMBING:
                where, platforms = function_platforms(primitive, code, source)
            missing = [d for d in DEVICES if platforms is not None and d not in platforms]
            rows.append({"primitive": primitive, "platforms": platforms, "declared_in": where,
                         "origin": source if platforms is not None else _origin(primitive, source), "missing": missing})
            if missing:
                failures.append(f"{name}: {primitive} is declared for {', '.join(platforms)} only ({where})")
        graphs[name] = {"flags": GRAPHS[name][1], "compile_error_on_cpu": error, "primitives": rows}
    return graphs, failures


def markdown(graphs, failures):
    import mindspore
    lines = [f"# Operator audit (generated by tools/device_audit.py)", "",
             f"MindSpore {mindspore.__version__}, {datetime.date.today().isoformat()}. Each graph's primitives are "
             "read from the front end's final IR (`validate`), the graph every backend receives; the "
             "platforms are those of the primitive's MindSpore docstring (\"Supported Platforms\"). "
             "[devices.md](devices.md) says what this does and does not prove.", "",
             f"**Result: {'every documented primitive declares Ascend and GPU' if not failures else 'FAILED'}.**", ""]
    lines += [f"- {failure}" for failure in failures]
    for name, graph in graphs.items():
        flags = " ".join(graph["flags"]) or "defaults"
        note = f" CPU could not finish the compile ({graph['compile_error_on_cpu']}); the front end's graph was read." \
            if graph["compile_error_on_cpu"] else ""
        lines += ["", f"## {name} (`{flags}`)", "", note.strip(), "", "| primitive | platforms | declared in, or where it comes from |",
                  "| --- | --- | --- |"]
        for row in graph["primitives"]:
            platforms = " ".join(row["platforms"]) if row["platforms"] is not None else "undocumented"
            where = row["declared_in"] or row["origin"]
            lines.append(f"| {row['primitive']} | {platforms} | `{where}` |")
    return "\n".join(line for line in lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], epilog=__doc__.split("\n\n", 1)[1],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--graphs", default=",".join(GRAPHS),
                        help="comma-separated graphs to compile (default: all: %(default)s)")
    parser.add_argument("--out", default=os.path.join(REPO, "docs", "devices_audit.md"),
                        help="Markdown report (default: docs/devices_audit.md); a .json beside it holds the same")
    parser.add_argument("--work_dir", help="keep the IR dumps here (default: a temporary folder)")
    parser.add_argument("--_compile", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args._compile:
        import src  # noqa: F401 (first: the project's oneDNN cap and log level)
        compile_one(*GRAPHS[args._compile][:2], os.path.join(args.work_dir, "data"), os.path.join(args.work_dir, args._compile))
        return 0
    names = args.graphs.split(",")
    unknown = [name for name in names if name not in GRAPHS]
    if unknown:
        parser.error(f"--graphs: unknown {', '.join(unknown)}; choose from {', '.join(GRAPHS)}")
    work_dir = args.work_dir or tempfile.mkdtemp(prefix="device_audit_")
    try:
        graphs, failures = audit(names, work_dir)
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)
    from src.utils.files import atomic_write_text
    atomic_write_text(args.out, markdown(graphs, failures))
    import mindspore
    record = {"date": datetime.date.today().isoformat(), "mindspore": mindspore.__version__,
              "graphs": graphs, "failures": failures}
    atomic_write_text(os.path.splitext(args.out)[0] + ".json", json.dumps(record, indent=1) + "\n")
    counts = collections.Counter(row["platforms"] is None for graph in graphs.values() for row in graph["primitives"])
    print(f"{len(graphs)} graphs, {counts[False]} documented and {counts[True]} undocumented primitive uses; "
          f"report: {args.out}")
    for failure in failures:
        print("NOT ON ALL DEVICES:", failure)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
