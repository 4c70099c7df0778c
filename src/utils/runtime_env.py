"""Process settings that must be in place before MindSpore loads: oneDNN's CPU ISA and the log level.

`src/__init__.py` applies them, so every entry point, launcher, msrun worker, bench process and
test gets them without the user knowing about oneDNN. A value already in the environment is
never overridden. MindSpore must not be imported here.

    python3 -c 'import src.utils.runtime_env as e; e.print_exports()'   # as shell `export` lines

Why the ISA cap: MindSpore 2.10's CPU convolutions go through oneDNN 3.10, which on AVX-512 CPUs
runs the plain-NCHW tensors MindSpore passes on a reference kernel (`jit_uni_ncsp:conv+ref:any`,
about 35x slower). Capped at AVX2 it picks its `gemm:jit` kernels. `ONEDNN_MAX_CPU_ISA=ALL` in the
environment turns the cap off.
"""
import os
import re
import shlex

ISA_VARIABLE = "ONEDNN_MAX_CPU_ISA"
# oneDNN also reads its older name; a user who set either has chosen.
ISA_VARIABLES = (ISA_VARIABLE, "DNNL_MAX_CPU_ISA")
ISA_ON_AVX512 = "AVX2"
# MindSpore's GLOG_v: 0 debug, 1 info, 2 warnings, 3 errors. Errors only unless the user asks.
LOG_VARIABLE = "GLOG_v"
QUIET_LOG_LEVEL = "3"


def _cpuinfo_field(name, cpuinfo="/proc/cpuinfo"):
    """The value of the first `name` line in /proc/cpuinfo, or None (no such file, e.g. macOS)."""
    try:
        with open(cpuinfo, encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.split(":", 1)[0].strip() == name:
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_flags():
    """The ISA flags of this machine's CPU (avx2, avx512f, ...)."""
    return set((_cpuinfo_field("flags") or "").split())


def cpu_model():
    return _cpuinfo_field("model name") or "unknown"


def choose_onednn_isa(environ, flags):
    """Cap oneDNN at AVX2 on an AVX-512 CPU unless the user chose an ISA; returns the value in force."""
    for name in ISA_VARIABLES:
        if name in environ:
            return environ[name]
    if "avx512f" in flags:
        environ[ISA_VARIABLE] = ISA_ON_AVX512
    return environ.get(ISA_VARIABLE)


def configure(environ=None, flags=None):
    """Apply both settings to `environ` (default: this process's environment)."""
    environ = os.environ if environ is None else environ
    choose_onednn_isa(environ, cpu_flags() if flags is None else flags)
    environ.setdefault(LOG_VARIABLE, QUIET_LOG_LEVEL)
    return {name: environ[name] for name in (*ISA_VARIABLES, LOG_VARIABLE) if name in environ}


# One line of ONEDNN_VERBOSE=1 output per executed primitive, e.g.
# onednn_verbose,v1,primitive,exec,cpu,convolution,x64:gemm:jit,forward_training,...
_EXEC_LINE = re.compile(r"^onednn_verbose,(?:v\d+,)?(?:primitive,)?exec,cpu,([\w]+),([^,]+),([^,]*),")


_REFERENCE = re.compile(r"(?<![a-z])ref(?![a-z])")


def onednn_implementations(text):
    """{(primitive kind, propagation): {implementation: count}} from ONEDNN_VERBOSE=1 output."""
    found = {}
    for line in text.splitlines():
        match = _EXEC_LINE.match(line)
        if match:
            kind, impl, prop = match.groups()
            counts = found.setdefault((kind, prop), {})
            counts[impl] = counts.get(impl, 0) + 1
    return found


def reference_convolutions(implementations):
    """The (kind, propagation, implementation) of every convolution or deconvolution that ran on a
    oneDNN reference kernel (its name contains `ref`)."""
    return [(kind, prop, impl) for (kind, prop), counts in sorted(implementations.items())
            for impl in counts
            if kind in ("convolution", "deconvolution") and _REFERENCE.search(impl)]


def print_exports():
    """The settings as shell `export` lines, for programs that are not Python (the 310 harness)."""
    for name, value in configure().items():
        print(f"export {name}={shlex.quote(value)}")
