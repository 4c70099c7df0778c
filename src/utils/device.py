"""Backend context and distributed initialisation, the same for CPU, GPU and Ascend."""
import os
from dataclasses import dataclass

import mindspore as ms


@dataclass(frozen=True)
class Ranks:
    rank: int = 0
    size: int = 1

    @property
    def is_main(self):
        """Only rank 0 writes checkpoints, images and plots."""
        return self.rank == 0


def set_context(cfg):
    """Graph mode on the chosen device; under --run_distribute, join the job and go data parallel.

    Launchers (msrun, mpirun, or the Ascend rank table) start one process per device and set
    its rank in the environment; `init()` reads it and picks HCCL, NCCL or the CPU collective.
    """
    ms.set_context(mode=ms.GRAPH_MODE)
    if cfg.device_target == "CPU":
        ms.set_device("CPU")
    else:
        device_id = int(os.environ.get("DEVICE_ID", cfg.device_id))
        ms.set_device(cfg.device_target, device_id)
    if not cfg.run_distribute:
        return Ranks()
    from mindspore.communication import get_group_size, get_rank, init
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                                 device_num=get_group_size())
    return Ranks(get_rank(), get_group_size())
