"""The launchers: argument checks, dataset presets, and the exact commands they start."""
import os
import stat
import subprocess

import pytest

from conftest import REPO, write_ab_folder


def run_script(script, args, env=None, path_dir=None):
    environment = {**os.environ, "P2P_FOREGROUND": "1", **(env or {})}
    if path_dir:
        environment["PATH"] = f"{path_dir}:{environment['PATH']}"
    return subprocess.run(["bash", os.path.join(REPO, script), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, env=environment)


def recorder(folder, name):
    """A fake executable that writes its arguments and rank environment, one line per call."""
    path = os.path.join(folder, name)
    with open(path, "w") as handle:
        handle.write('#!/usr/bin/env bash\n'
                     f'echo "{name} $* | RANK_ID=${{RANK_ID:-}} DEVICE_ID=${{DEVICE_ID:-}} '
                     'RANK_SIZE=${RANK_SIZE:-} RANK_TABLE_FILE=${RANK_TABLE_FILE:-}" >> "$RECORD"\n')
    os.chmod(path, os.stat(path).st_mode | stat.S_IEXEC)
    return path


@pytest.fixture
def fakes(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name in ("msrun", "mpirun", "python-fake"):
        recorder(str(bin_dir), name)
    data = write_ab_folder(str(tmp_path / "facades" / "train"), 1)
    record = tmp_path / "record.txt"
    env = {"RECORD": str(record), "PYTHON": str(bin_dir / "python-fake"), "P2P_RUN_DIR": str(tmp_path / "run")}
    return bin_dir, str(tmp_path / "facades"), data, record, env


def test_gpu_distributed_uses_msrun_with_every_device(fakes):
    bin_dir, root, data, record, env = fakes
    result = run_script("scripts/run_distribute_train_gpu.sh", [root, "facades", 8, "--batch_size", 4],
                        env, bin_dir)
    assert result.returncode == 0, result.stderr
    line = record.read_text().strip()
    assert line.startswith("msrun --worker_num=8 --local_worker_num=8 --node_rank=0 --master_addr=127.0.0.1 "
                           "--master_port=8118 --cluster_time_out=300 ")
    assert f"--log_dir={env['P2P_RUN_DIR']}/logs --join=True {REPO}/train.py --device_target GPU " \
           f"--run_distribute True --train_data_dir {data} --config_path {REPO}/configs/facades.yaml" in line
    assert line.split(" | ")[0].endswith("--batch_size 4")  # extra flags passed on


def test_gpu_distributed_with_mpirun(fakes):
    bin_dir, root, data, record, env = fakes
    result = run_script("scripts/run_distribute_train_gpu.sh", [root, "maps", 2], {**env, "P2P_LAUNCHER": "mpirun"},
                        bin_dir)
    assert result.returncode == 0, result.stderr
    line = record.read_text()
    assert line.startswith("mpirun -n 2 ") and f"{env['PYTHON']} {REPO}/train.py --device_target GPU" in line
    assert f"--config_path {REPO}/configs/maps.yaml" in line  # the dataset's config: direction AtoB


def test_ascend_rank_table_starts_one_process_per_card(fakes, tmp_path):
    bin_dir, root, data, record, env = fakes
    table = tmp_path / "rank_table_8pcs.json"
    table.write_text("{}")
    result = run_script("scripts/run_distribute_train_ascend.sh", [8, "True", table, root, "facades"], env, bin_dir)
    assert result.returncode == 0, result.stderr
    lines = sorted(record.read_text().strip().splitlines(), key=lambda l: int(l.split("RANK_ID=")[1].split()[0]))
    assert len(lines) == 8
    for rank, line in enumerate(lines):
        assert f"--device_id {rank} " in line and "--device_target Ascend --run_distribute True" in line
        assert line.endswith(f"RANK_ID={rank} DEVICE_ID={rank} RANK_SIZE=8 RANK_TABLE_FILE={table}")
    assert sorted(os.listdir(tmp_path / "run" / "logs")) == [f"train_rank{r}.log" for r in range(8)]


def test_ascend_msrun_form_needs_no_rank_table(fakes):
    bin_dir, root, data, record, env = fakes
    result = run_script("scripts/run_distribute_train_ascend.sh", [4, "True", "none", root, "facades"], env, bin_dir)
    assert result.returncode == 0, result.stderr
    assert record.read_text().startswith("msrun --worker_num=4 --local_worker_num=4 ")


MULTI_NODE = {"NODE_NUM": "2", "NODE_RANK": "1", "MASTER_ADDR": "10.1.2.3", "MASTER_PORT": "9000",
              "CLUSTER_TIMEOUT": "60"}


@pytest.mark.parametrize("script, args", [("scripts/run_distribute_train_gpu.sh", ["{root}", "facades", 8]),
                                          ("scripts/run_distribute_train_cpu.sh", ["{root}", "facades", 8]),
                                          ("scripts/run_distribute_train_ascend.sh", [8, "True", "none", "{root}", "x"])])
def test_msrun_launchers_take_their_share_of_a_multi_node_job(fakes, script, args):
    bin_dir, root, data, record, env = fakes
    args = [a.format(root=root) if isinstance(a, str) else a for a in args]
    result = run_script(script, args, {**env, **MULTI_NODE}, bin_dir)
    assert result.returncode == 0, result.stderr
    assert record.read_text().startswith("msrun --worker_num=16 --local_worker_num=8 --node_rank=1 "
                                         "--master_addr=10.1.2.3 --master_port=9000 --cluster_time_out=60 ")
    assert "node 1 of 2: ranks 8..15 of 16, master 10.1.2.3:9000" in result.stdout


def test_ascend_rank_table_on_the_second_machine(fakes, tmp_path):
    bin_dir, root, data, record, env = fakes
    table = tmp_path / "rank_table_16pcs.json"
    table.write_text("{}")
    result = run_script("scripts/run_distribute_train_ascend.sh", [8, "True", table, root, "facades"],
                        {**env, "NODE_NUM": "2", "RANK_START": "8"}, bin_dir)
    assert result.returncode == 0, result.stderr
    lines = sorted(record.read_text().strip().splitlines(), key=lambda l: int(l.split("RANK_ID=")[1].split()[0]))
    for device, line in enumerate(lines):
        assert f"--device_id {device} " in line
        assert line.endswith(f"RANK_ID={8 + device} DEVICE_ID={device} RANK_SIZE=16 RANK_TABLE_FILE={table}")


@pytest.mark.parametrize("variables, message", [({"NODE_NUM": "2", "NODE_RANK": "2"}, "NODE_RANK 2 must be below NODE_NUM 2"),
                                                ({"NODE_NUM": "0"}, "NODE_NUM must be a positive integer"),
                                                ({"CLUSTER_TIMEOUT": "soon"}, "CLUSTER_TIMEOUT must be")])
def test_multi_node_mistakes_print_usage_and_exit_2(fakes, variables, message):
    bin_dir, root, data, record, env = fakes
    result = run_script("scripts/run_distribute_train_cpu.sh", [root, "facades", 2], {**env, **variables}, bin_dir)
    assert result.returncode == 2 and message in result.stderr and "usage:" in result.stderr
    assert not record.exists()


@pytest.mark.parametrize("script", ["cpu", "gpu", "ascend"])
def test_distributed_help_documents_the_multi_node_variables(fakes, script):
    bin_dir, root, data, record, env = fakes
    result = run_script(f"scripts/run_distribute_train_{script}.sh", ["--help"], env, bin_dir)
    assert result.returncode == 0
    for variable in ("NODE_NUM", "NODE_RANK", "MASTER_ADDR", "MASTER_PORT", "CLUSTER_TIMEOUT"):
        assert variable in result.stdout
    assert ("RANK_START" in result.stdout) == (script == "ascend")


def test_single_card_and_eval_scripts(fakes, tmp_path):
    bin_dir, root, data, record, env = fakes
    assert run_script("scripts/run_train_ascend.sh", [root, "facades", 3], env, bin_dir).returncode == 0
    assert run_script("scripts/run_train_gpu.sh", [root, "facades"], env, bin_dir).returncode == 0
    ckpt = tmp_path / "Generator_1.ckpt"
    ckpt.write_text("x")
    for device, target in (("ascend", "Ascend"), ("gpu", "GPU"), ("cpu", "CPU")):
        assert run_script(f"scripts/run_eval_{device}.sh", [root, "facades", ckpt, tmp_path / "res"], env,
                          bin_dir).returncode == 0
    lines = record.read_text().strip().splitlines()
    assert "--device_target Ascend " in lines[0] and "--device_id 3" in lines[0] and "DEVICE_ID=3" in lines[0]
    assert "--device_target GPU --train_data_dir" in lines[1]
    for line, target in zip(lines[2:], ("Ascend", "GPU", "CPU")):
        assert f"eval.py --device_target {target} --val_data_dir {root} --ckpt {ckpt}" in line


@pytest.mark.parametrize("script,args,message", [
    ("scripts/run_train_cpu.sh", [], "expected at least 2 arguments"),
    ("scripts/run_train_cpu.sh", ["/no/such/dir", "facades"], "DATASET_PATH /no/such/dir is not a folder"),
    ("scripts/run_distribute_train_cpu.sh", ["{data}", "facades", "two"], "WORKER_NUM must be a positive integer"),
    ("scripts/run_distribute_train_ascend.sh", [8, "maybe", "none", "{data}", "x"], "DISTRIBUTE must be True or False"),
    ("scripts/run_distribute_train_ascend.sh", [8, "True", "/no/table.json", "{data}", "x"], "RANK_TABLE_FILE"),
    ("scripts/run_eval_cpu.sh", ["{data}", "facades", "/no/ckpt", "/tmp/x"], "CKPT_PATH /no/ckpt is not a file"),
    ("data/download_Pix2Pix_dataset.sh", ["nosuchset"], "unknown dataset"),
])
def test_mistakes_print_usage_and_exit_2(fakes, script, args, message):
    bin_dir, root, data, record, env = fakes
    result = run_script(script, [a.format(data=root) if isinstance(a, str) else a for a in args], env, bin_dir)
    assert result.returncode == 2
    assert message in result.stderr and "usage:" in result.stderr


def test_cpu_training_script_runs_for_real(tmp_path):
    data = write_ab_folder(str(tmp_path / "set" / "train"), 2)
    run = tmp_path / "run"
    result = run_script("scripts/run_train_cpu.sh", [tmp_path / "set", "facades", "--crop_size", 32, "--load_size",
                                                     36, "--ngf", 8, "--ndf", 8, "--n_epochs", 1, "--n_epochs_decay", 0],
                        {"P2P_RUN_DIR": str(run)})
    assert result.returncode == 0, result.stderr
    assert os.path.isfile(run / "ckpt" / "Generator_1.ckpt")
    assert "done: checkpoints" in (run / "logs" / "train.log").read_text()
    assert data


def test_serve_script_needs_the_model_card_and_passes_port_and_flags(fakes, tmp_path):
    bin_dir, _, _, record, env = fakes
    mindir = tmp_path / "generator.mindir"
    mindir.write_bytes(b"graph")
    result = run_script("scripts/run_serve.sh", [mindir], env, bin_dir)
    assert result.returncode == 2 and "has no model card" in result.stderr
    (tmp_path / "generator.mindir.json").write_text("{}")
    assert run_script("scripts/run_serve.sh", [mindir, 8123, "--host", "0.0.0.0"], env, bin_dir).returncode == 0
    assert run_script("scripts/run_serve.sh", [mindir, "--workers", 2], env, bin_dir).returncode == 0
    lines = [line.split(" | ")[0] for line in record.read_text().splitlines()]
    assert lines == [f"python-fake {REPO}/serve.py --mindir {mindir} --port 8123 --host 0.0.0.0",
                     f"python-fake {REPO}/serve.py --mindir {mindir} --port 8000 --workers 2"]
    result = run_script("scripts/run_serve.sh", [mindir, "80x"], env, bin_dir)
    assert result.returncode == 2 and "PORT must be an integer" in result.stderr
    onnx = tmp_path / "generator.onnx"
    onnx.write_bytes(b"graph")
    (tmp_path / "generator.onnx.json").write_text("{}")
    assert run_script("scripts/run_serve.sh", [onnx], env, bin_dir).returncode == 0
    assert record.read_text().splitlines()[-1].split(" | ")[0] == f"python-fake {REPO}/serve.py --onnx {onnx} --port 8000"
