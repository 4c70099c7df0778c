"""Data parallel on two CPU workers (msrun), as the 8-card launchers run it, on one "machine"
and on two (the second in a network namespace of its own, as msrun cannot run two nodes on
one address: each would start the scheduler)."""
import os
import re
import signal
import socket
import subprocess
import time

import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor
from tensorboard.backend.event_processing import event_accumulator

from conftest import REPO, run_entry, tiny_train_args, write_ab_folder
from src import checkpoint
from src.config import parse_args
from src.models import registry

pytestmark = pytest.mark.skipif(subprocess.run(["which", "msrun"], capture_output=True).returncode != 0,
                                reason="msrun (MindSpore's launcher) is not on PATH")

FLAGS = ["--n_epochs", "1", "--n_epochs_decay", "1"]
# Batch norm normalises each rank's share by its own statistics (SyncBatchNorm is Ascend-only), so
# only instance norm trains exactly like one process with the global batch.
INSTANCE = ["--norm", "instance"]


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def distributed_command(data, run_dir, workers=2, extra=(), out_dir=None):
    """The CPU launcher with `workers` workers on this machine; outputs under `out_dir` (default
    run_dir), the launcher's logs in run_dir/logs."""
    return ["bash", os.path.join(REPO, "scripts", "run_distribute_train_cpu.sh"), data, "toy", str(workers),
            *tiny_train_args(data, str(out_dir or run_dir))[2:], *FLAGS, *extra]


def run_env(run_dir, **extra):
    return {**os.environ, "P2P_FOREGROUND": "1", "P2P_RUN_DIR": str(run_dir), "MASTER_PORT": str(free_port()),
            **extra}


def run_job(data, run_dir, extra=()):
    result = subprocess.run(distributed_command(data, run_dir, extra=extra), cwd=REPO, capture_output=True,
                            text=True, timeout=600, env=run_env(run_dir))
    logs = {rank: (run_dir / "logs" / f"worker_{rank}.log").read_text() for rank in (0, 1)}
    assert result.returncode == 0, result.stderr + logs[0][-3000:] + logs[1][-3000:]
    return logs


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory):
    """The default batch norm, with validation."""
    root = tmp_path_factory.mktemp("dist")
    data = write_ab_folder(str(root / "data"), 6)
    val = write_ab_folder(str(root / "val"), 2, seed=1)
    run_dir = root / "run"
    return root, data, run_dir, run_job(data, run_dir, ["--val_data_dir", val])


@pytest.fixture(scope="module")
def single_process_global_batch(tmp_path_factory, two_workers):
    """One process, batch 2 (the two ranks' global batch), instance norm, over two_workers' data."""
    out = tmp_path_factory.mktemp("single")
    single = run_entry("train.py", tiny_train_args(two_workers[1], str(out), *FLAGS, *INSTANCE, "--batch_size", "2"))
    assert single.returncode == 0, single.stderr[-2000:]
    return out / "ckpt"


def test_ranks_end_with_identical_weights_and_batch_norm_statistics(two_workers):
    """The fingerprint covers weights, optimiser state and the (averaged) running statistics."""
    _, _, _, logs = two_workers
    prints = [re.findall(r"rank (\d): parameter fingerprint (\w+)", logs[rank]) for rank in (0, 1)]
    assert prints[0][0][0] == "0" and prints[1][0][0] == "1"
    assert prints[0][0][1] == prints[1][0][1]
    assert "3 steps per epoch" in logs[0] and "3 steps per epoch" in logs[1]  # 6 pairs over 2 ranks


def test_only_rank_0_writes(two_workers):
    _, _, run_dir, logs = two_workers
    assert sorted(os.listdir(run_dir / "ckpt")) == sorted(
        [f"{net}_{e}.ckpt" for net in ("Generator", "Discriminator") for e in (1, 2)]
        + [os.path.basename(checkpoint.resume_state_path(run_dir / "ckpt")), "resume.json", "config.yaml", "Generator_best.ckpt", "Generator_best.json"])
    assert sorted(os.listdir(run_dir / "img")) == ["epoch_001.png", "epoch_002.png"]
    assert "saved Generator" in logs[0] and "saved Generator" not in logs[1]
    assert logs[0].count("validation on 2 pairs") == 2 and "validation" not in logs[1]
    events, = os.listdir(run_dir / "tensorboard")  # one set of TensorBoard logs, rank 0's, by global step
    reader = event_accumulator.EventAccumulator(str(run_dir / "tensorboard"))
    reader.Reload()
    assert [e.step for e in reader.Scalars("loss/loss_G")] == list(range(1, 7))
    assert [e.step for e in reader.Scalars("val/L1")] == [3, 6]


def assert_trains_like_one_process(data, ckpt_dir, single_ckpt_dir):
    """2 ranks x batch 1 vs 1 process x batch 2 over the same samples, gradients averaged, 6 steps.

    The two runs sum the same gradients in a different order (all-reduce of per-rank means vs
    one batch mean), so they differ by float rounding, which Adam's first steps amplify for
    elements whose gradient is near 0 (Adam moves any element by up to ~lr per step). Measured
    on this CPU: weight differences median 4e-7, 99.9th percentile 9e-5, max 7e-4 (under the
    bound 2 x lr x steps); G and D outputs differ by up to 1.1e-3 on the [-1, 1] scale (tolerance
    5e-3).
    """
    a = ms.load_checkpoint(checkpoint.resume_state_path(ckpt_dir))
    b = ms.load_checkpoint(checkpoint.resume_state_path(single_ckpt_dir))
    diffs = np.concatenate([np.abs(a[n].asnumpy() - b[n].asnumpy()).ravel() for n in a
                            if n.endswith("weight") and "moment" not in n])
    assert np.median(diffs) < 1e-6 and np.percentile(diffs, 99.9) < 2e-4
    assert diffs.max() <= 2 * 2e-4 * 6  # Adam moves an element by at most ~lr per step
    cfg = parse_args("train", tiny_train_args(data, "unused", *FLAGS, *INSTANCE))
    x = Tensor(np.random.default_rng(0).uniform(-1, 1, (2, 3, 32, 32)).astype(np.float32))
    outputs = []
    for directory in (ckpt_dir, single_ckpt_dir):
        netG, netD = registry.build_generator(cfg), registry.build_discriminator(cfg)
        checkpoint.load_network(netG, str(directory / "Generator_2.ckpt"),
                                {"model": "pix2pix", **registry.arch(cfg, "generator")})
        checkpoint.load_network(netD, str(directory / "Discriminator_2.ckpt"),
                                {"model": "pix2pix", **registry.arch(cfg, "discriminator")})
        netG.set_train(False)
        netD.set_train(False)
        fake = netG(x)
        outputs.append((fake.asnumpy(), netD(x, fake).asnumpy()))
    np.testing.assert_allclose(outputs[0][0], outputs[1][0], atol=5e-3)
    np.testing.assert_allclose(outputs[0][1], outputs[1][1], atol=5e-3)


def test_two_workers_train_like_one_process_with_the_global_batch(two_workers, single_process_global_batch):
    root, data, _, _ = two_workers
    run_dir = root / "instance"
    run_job(data, run_dir, INSTANCE)
    assert_trains_like_one_process(data, run_dir / "ckpt", single_process_global_batch)


def test_a_failing_rank_fails_the_job_and_leaves_no_partial_checkpoint(tmp_path):
    data = write_ab_folder(str(tmp_path / "data"), 40)
    run_dir = tmp_path / "run"
    process = subprocess.Popen(distributed_command(data, run_dir), cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=run_env(run_dir))
    log = run_dir / "logs" / "worker_1.log"
    deadline = time.time() + 300
    while time.time() < deadline and not (log.exists() and " step 3/" in log.read_text()):
        time.sleep(0.2)
    victims = [int(pid) for pid in subprocess.run(["pgrep", "-f", f"train.py.*{run_dir}"], capture_output=True,
                                                  text=True).stdout.split()
               if "RANK_ID=1" in open(f"/proc/{pid}/environ").read().replace("\0", " ")]
    assert victims, "rank 1's process was not found"
    os.kill(victims[0], signal.SIGKILL)
    process.communicate(timeout=300)
    assert process.returncode != 0
    leftovers = [n for n in os.listdir(run_dir / "ckpt") if n.startswith(".")] if (run_dir / "ckpt").exists() else []
    assert leftovers == []


@pytest.fixture(scope="module")
def second_machine():
    """A network namespace joined to this one by a veth pair: (namespace, this side's address).
    msrun starts the scheduler on every node whose own address is --master_addr, so two nodes
    on 127.0.0.1 would both start one; the namespace is a second machine with its own addresses."""
    tag = os.getpid() % 10000
    namespace, here, there = f"p2p{tag}", f"p2p{tag}a", f"p2p{tag}b"
    subnet = f"10.216.{tag % 250}"
    if subprocess.run(["ip", "netns", "add", namespace], capture_output=True).returncode != 0:
        pytest.skip("cannot create a network namespace (needs root / CAP_SYS_ADMIN)")
    try:
        for command in (f"ip link add {here} type veth peer name {there} netns {namespace}",
                        f"ip addr add {subnet}.1/30 dev {here}", f"ip link set {here} up",
                        f"ip netns exec {namespace} ip addr add {subnet}.2/30 dev {there}",
                        f"ip netns exec {namespace} ip link set {there} up",
                        f"ip netns exec {namespace} ip link set lo up"):
            subprocess.run(command.split(), check=True, capture_output=True)
        yield namespace, f"{subnet}.1"
    finally:
        subprocess.run(["ip", "netns", "del", namespace], capture_output=True)  # takes the veth pair along


def start_two_nodes(second_machine, data, root, extra_node_1=()):
    """Node 0 here, node 1 in the namespace: one worker each, separate run folders and logs, one
    master port, outputs (written by rank 0 only) under root/out. Returns the two launchers."""
    namespace, master = second_machine
    port = str(free_port())
    processes = []
    for node, prefix, extra in ((0, [], ()), (1, ["ip", "netns", "exec", namespace], extra_node_1)):
        run_dir = root / f"node{node}"
        env = run_env(run_dir, NODE_NUM="2", NODE_RANK=str(node), MASTER_ADDR=master, MASTER_PORT=port,
                      CLUSTER_TIMEOUT="20")
        processes.append(subprocess.Popen(prefix + distributed_command(data, run_dir, 1, [*INSTANCE, *extra],
                                                                       out_dir=root / "out"),
                                          cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          env=env))
    return processes


def test_two_nodes_train_like_one_process_with_the_global_batch(second_machine, two_workers,
                                                                 single_process_global_batch, tmp_path):
    _, data, _, _ = two_workers
    nodes = start_two_nodes(second_machine, data, tmp_path)
    outputs = [node.communicate(timeout=600) for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs
    assert "node 1 of 2: ranks 1..1 of 2" in outputs[1][0]
    logs = [(tmp_path / f"node{rank}" / "logs" / f"worker_{rank}.log").read_text() for rank in (0, 1)]
    assert "rank 0/2" in logs[0] and "rank 1/2" in logs[1] and "3 steps per epoch" in logs[1]
    prints = [re.findall(r"parameter fingerprint (\w+)", log) for log in logs]
    assert prints[0] == prints[1] and len(prints[0]) == 1
    assert_trains_like_one_process(data, tmp_path / "out" / "ckpt", single_process_global_batch)


def test_a_failing_node_fails_the_whole_job_with_a_clear_message(second_machine, two_workers, tmp_path):
    """Node 1's worker stops on a bad flag before it joins: node 1's launcher fails at once, node 0's
    within CLUSTER_TIMEOUT (20 s) plus start-up, and says what happened, instead of waiting forever."""
    _, data, _, _ = two_workers
    nodes = start_two_nodes(second_machine, data, tmp_path, ["--crop_size", "48"])
    outputs = [node.communicate(timeout=400) for node in nodes]  # raises if a node hangs
    assert nodes[0].returncode != 0 and nodes[1].returncode != 0
    assert "--crop_size 48 is larger than --load_size" in (tmp_path / "node1" / "logs" / "worker_1.log").read_text()
    last_line = outputs[0][1].strip().splitlines()[-1]
    assert last_line.startswith("error: node 0 of 2: the distributed job failed") and "CLUSTER_TIMEOUT=20s" in last_line
    assert not (tmp_path / "out" / "ckpt").exists() or not os.listdir(tmp_path / "out" / "ckpt")
