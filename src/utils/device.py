"""Backend context and distributed initialisation, the same for CPU, GPU and Ascend."""
import json
import os
from dataclasses import dataclass
from typing import Optional

import mindspore as ms


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self):
        """Only rank 0 writes checkpoints, images and plots."""
        return self.rank == 0


# What each device gets unless the flags say otherwise (docs/devices.md says why).
JIT_LEVEL = {"CPU": None, "GPU": "O0", "Ascend": "O0"}
ASCEND_PRECISION_MODE = "must_keep_origin_dtype"
AUDIT = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                     "docs", "devices_audit.json")


@dataclass(frozen=True)
class DeviceSettings:
    target: str
    device_id: int
    jit_level: Optional[str]
    precision_mode: Optional[str]


def device_settings(cfg, environ=os.environ):
    """The context settings for cfg's device. DEVICE_ID, which launchers and rank tables set per
    process, wins over --device_id; CPU keeps MindSpore's own compile level."""
    target = cfg.device_target
    device_id = int(environ.get("DEVICE_ID", cfg.device_id)) if target != "CPU" else 0
    jit_level = getattr(cfg, "jit_level", None) or JIT_LEVEL[target]
    precision = (getattr(cfg, "ascend_precision_mode", None) or ASCEND_PRECISION_MODE) if target == "Ascend" else None
    return DeviceSettings(target, device_id, jit_level, precision)


def untested_device_line(target, audit_path=AUDIT):
    """The line a GPU or Ascend run prints first: neither has run this project's code."""
    try:
        with open(audit_path, encoding="utf-8") as handle:
            audit = json.load(handle)
        audited = f"operators audited for Ascend and GPU on {audit['date']} with MindSpore {audit['mindspore']}"
    except (OSError, ValueError, KeyError):
        audited = "no operator audit found"
    return (f"MindSpore {ms.__version__} on {target}: this project was tested on CPU only; {audited}; "
            f"what was and was not run: docs/devices.md")


def set_context(cfg):
    """Graph mode on the chosen device; under --run_distribute, join the job and go data parallel.

    Launchers (msrun, mpirun, or the Ascend rank table) start one process per device and set
    its rank in the environment; `init()` reads it and picks HCCL, NCCL or the CPU collective.
    """
    settings = device_settings(cfg)
    ms.set_context(mode=ms.GRAPH_MODE)
    if settings.target == "CPU":
        ms.set_device("CPU")
    else:
        print(untested_device_line(settings.target), flush=True)
        ms.set_device(settings.target, settings.device_id)
    if settings.jit_level:
        ms.set_context(jit_config={"jit_level": settings.jit_level})
    if settings.precision_mode:
        from mindspore.device_context.ascend.op_precision import precision_mode
        precision_mode(settings.precision_mode)
    if not cfg.run_distribute:
        return Ranks()
    from mindspore.communication import get_group_size, get_rank, init
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=get_group_size())
    return Ranks(get_rank(), get_group_size())
