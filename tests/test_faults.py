"""Faults survived with nothing lost: a disk that fills, kills at any moment, damaged files.

The full disk is a size-limited tmpfs (root can mount one) holding --ckpt_dir, with a filler file
that is deleted to free space; `ulimit -f` (a file size limit, no root needed) is the second way.
"""
import os
import resource
import subprocess
import sys

import pytest

from conftest import REPO, run_entry, tiny_train_args, write_ab_folder
from src import checkpoint
from test_train import assert_same_final_state

MB = 1 << 20


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("faults") / "data"
    write_ab_folder(folder, 4)
    return folder


@pytest.fixture
def small_disk(tmp_path):
    """A 12 MB tmpfs, unmounted afterwards."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m", "tmpfs", str(mount)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.strip() or 'mount failed'}); "
                    "the ulimit -f test covers the full disk")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def temporary_files(folder):
    return [name for name in os.listdir(folder) if name.startswith(".") or ".tmp" in name]


def test_a_full_disk_stops_training_with_one_line_and_the_run_resumes_once_space_is_freed(data, small_disk, tmp_path):
    # The tiny model's resume state is 3.7 MB, its checkpoints 1 MB a pair: with 8 MB free, the
    # state at step 2 fits and the one at step 4 (beside the old state and the epoch's
    # checkpoints) does not.
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * 4 * MB)
    every = ["--save_checkpoint_steps", "2"]
    full = run_entry("train.py", tiny_train_args(data, small_disk, *every))
    assert full.returncode == 2, full.stderr[-2000:]
    error = full.stderr.strip().splitlines()[-1]
    assert error.startswith("error: cannot write ") and "no space left on the device" in error
    assert "MB free in" in error and "MB needed" in error and "--resume True" in error
    assert "Traceback" not in full.stderr
    ckpt = small_disk / "ckpt"
    assert temporary_files(ckpt) == []
    state = checkpoint.resume_state_path(ckpt)
    assert os.path.basename(state) in error  # the state it will continue from
    import mindspore as ms
    assert len(ms.load_checkpoint(state)) > 0  # the previous state, whole

    filler.unlink()
    resumed = run_entry("train.py", tiny_train_args(data, small_disk, *every, "--resume", "True"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resuming from {state}" in resumed.stdout
    assert temporary_files(ckpt) == []
    straight = run_entry("train.py", tiny_train_args(data, tmp_path / "straight", *every))
    assert straight.returncode == 0, straight.stderr[-2000:]
    assert_same_final_state(str(tmp_path / "straight"), str(small_disk))


def test_a_file_size_limit_gives_the_same_line_and_leaves_no_temporary_file(data, tmp_path):
    def limit_files_to_3_mb():
        resource.setrlimit(resource.RLIMIT_FSIZE, (3 * MB, 3 * MB))
    args = [sys.executable, os.path.join(REPO, "train.py"), *tiny_train_args(data, tmp_path, "--save_checkpoint_steps", "2")]
    done = subprocess.run(args, cwd=REPO, capture_output=True, text=True, timeout=600, preexec_fn=limit_files_to_3_mb)
    assert done.returncode == 2, done.stderr[-2000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith("error: cannot write ") and "train_state_2.ckpt" in error
    assert "file size limit (ulimit -f)" in error and "it continues from the start" in error
    assert temporary_files(tmp_path / "ckpt") == []
    assert not (tmp_path / "ckpt" / "resume.json").exists()


@pytest.fixture(scope="module")
def trained(data, tmp_path_factory):
    out = tmp_path_factory.mktemp("faults_trained")
    done = run_entry("train.py", tiny_train_args(data, out))
    assert done.returncode == 0, done.stderr[-2000:]
    generator = out / "ckpt" / "Generator_2.ckpt"
    for file_format in ("ONNX", "MINDIR"):
        done = run_entry("export.py", ["--ckpt", generator, "--file_name", out / "g", "--file_format", file_format])
        assert done.returncode == 0, done.stderr[-2000:]
    return generator, str(out / "g.onnx")


def run_limited(script, args, limit_bytes):
    def limit():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))
    return subprocess.run([sys.executable, os.path.join(REPO, script), *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=600, preexec_fn=limit)


def test_export_stopped_by_the_limit_keeps_the_previous_export(trained, tmp_path):
    generator, _ = trained
    target = tmp_path / "model.mindir"
    assert run_entry("export.py", ["--ckpt", generator, "--file_name", target]).returncode == 0
    before = target.read_bytes()
    done = run_limited("export.py", ["--ckpt", generator, "--file_name", target], 100_000)
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: cannot write {target}: the file size limit (ulimit -f) is reached "
        f"({done.stderr.split('reached (')[1].split(' free')[0]} free in {tmp_path}, more than 0.1 MB needed); "
        "the previous file is intact")
    assert target.read_bytes() == before and temporary_files(tmp_path) == []


@pytest.mark.parametrize("script", ["eval.py", "predict.py"])
def test_outputs_stopped_by_the_limit_give_one_line_and_no_temporary_file(script, trained, data, tmp_path):
    generator, onnx = trained
    out = tmp_path / "out"
    args = (["--ckpt", generator, "--val_data_dir", data, "--predict_dir", out, "--report_dir", tmp_path / "report"]
            if script == "eval.py" else ["--onnx", onnx, "--input_dir", data, "--predict_dir", out])
    done = run_limited(script, args, 1000)
    assert done.returncode == 2, done.stderr[-2000:]
    error = done.stderr.strip().splitlines()[-1]
    assert error.startswith(f"error: cannot write {out}{os.sep}") and "ulimit -f" in error
    assert "Traceback" not in done.stderr and temporary_files(out) == []


def test_a_training_killed_three_times_ends_as_if_never_killed(tmp_path):
    """The short form of bench/kill_campaign.py (which runs 24 kills)."""
    sys.path.insert(0, os.path.join(REPO, "bench"))
    import kill_campaign
    result = kill_campaign.campaign(3, str(tmp_path), seed=1)
    assert result["landed"] >= 2, result["moments"]
    assert result["arrays different"] == [] and result["arrays compared"] > 100
    assert result["step"] == [12, 12] and result["losses equal"] and result["temporary files left"] == []


def damaged_copy(source, target, how):
    data = bytearray(open(source, "rb").read())
    if how == "truncated":
        data = data[: len(data) // 2]
    elif how == "not UTF-8":
        data[len(data) // 3] = 0xFF
    elif how == "bit-flipped in a value":  # of a JSON card: one bit of its checkpoint's name, still valid JSON
        data[data.index(b'"checkpoint": "') + len(b'"checkpoint": "')] ^= 0x01
    else:  # one bit flipped in the middle
        data[len(data) // 2] ^= 0x10
    target.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "bit-flipped"])
def test_a_damaged_checkpoint_is_named_with_the_whole_one_beside_it(trained, data, tmp_path, how):
    generator, _ = trained
    first = tmp_path / "Generator_1.ckpt"
    first.write_bytes((generator.parent / "Generator_1.ckpt").read_bytes())
    damaged_copy(generator, tmp_path / "Generator_2.ckpt", how)
    done = run_entry("eval.py", ["--ckpt", tmp_path / "Generator_2.ckpt", "--val_data_dir", data,
                                 "--predict_dir", tmp_path / "p", "--report_dir", tmp_path / "r"])
    assert done.returncode == 2, done.stderr[-2000:]
    error, = done.stderr.strip().splitlines()  # MindSpore's own log line about it is dropped
    assert error.startswith(f"error: --ckpt {tmp_path / 'Generator_2.ckpt'}: ")
    assert ("CRC32 does not match" in error) == (how == "bit-flipped")
    assert error.endswith(f"; {first} beside it is whole")


def test_a_damaged_resume_state_is_named_and_refused(data, tmp_path):
    args = tiny_train_args(data, tmp_path, "--save_checkpoint_steps", "2")
    assert run_entry("train.py", args).returncode == 0
    state = checkpoint.resume_state_path(tmp_path / "ckpt")
    os.chmod(state, 0o600)
    damaged_copy(state, type(tmp_path)(state), "bit-flipped")
    done = run_entry("train.py", [*args, "--resume", "True"])
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.strip().splitlines()[-1] == (
        f"error: resume state {state}: damaged: its CRC32 does not match its contents (a flipped bit, or a partial copy); "
        f"the epoch-2 checkpoints beside it are whole: start a new run from them with --pretrained_G "
        f"{tmp_path / 'ckpt' / 'Generator_2.ckpt'} --pretrained_D {tmp_path / 'ckpt' / 'Discriminator_2.ckpt'} "
        "(the optimiser state is lost)")


def weights(path):
    import mindspore as ms
    return {k: v.asnumpy() for k, v in ms.load_checkpoint(str(path)).items() if not isinstance(v, str)}


def test_resuming_a_finished_run_trains_nothing_and_restores_a_missing_final_checkpoint(data, tmp_path):
    assert run_entry("train.py", tiny_train_args(data, tmp_path)).returncode == 0
    args = tiny_train_args(data, tmp_path, "--resume", "True")
    ckpt = tmp_path / "ckpt"
    files = {name: (ckpt / name).read_bytes() for name in os.listdir(ckpt) if name != "config.yaml"}
    again = run_entry("train.py", args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "nothing to train: " in again.stdout and "its checkpoints are in place" in again.stdout
    assert {name: (ckpt / name).read_bytes() for name in files} == files  # checkpoints untouched

    (ckpt / "Generator_2.ckpt").unlink()
    restored = run_entry("train.py", args)
    assert restored.returncode == 0, restored.stderr[-2000:]
    assert "rewrote Generator_2.ckpt" in restored.stdout
    (tmp_path / "before.ckpt").write_bytes(files["Generator_2.ckpt"])
    written, before = weights(ckpt / "Generator_2.ckpt"), weights(tmp_path / "before.ckpt")
    assert written.keys() == before.keys()
    for name in before:
        assert (written[name] == before[name]).all(), name


def copy_of_export(trained, folder, suffix):
    """The tiny model's export (file and card) copied to `folder`: returns the file's path."""
    source = trained[0].parent.parent / f"g{suffix}"
    for extension in ("", ".json", ".config.yaml"):
        if os.path.exists(f"{source}{extension}"):
            (folder / f"g{suffix}{extension}").write_bytes(open(f"{source}{extension}", "rb").read())
    return folder / f"g{suffix}"


EXPORT_DAMAGE = [(suffix, part, how) for suffix in (".mindir", ".onnx") for part in ("file", "card")
                 for how in ("truncated", "bit-flipped")]


@pytest.mark.parametrize("suffix, part, how", EXPORT_DAMAGE)
def test_a_damaged_export_or_model_card_is_named_in_one_line(trained, data, tmp_path, suffix, part, how):
    model = copy_of_export(trained, tmp_path, suffix)
    damaged = model if part == "file" else type(model)(f"{model}.json")
    damaged_copy(damaged, damaged, "bit-flipped in a value" if (part, how) == ("card", "bit-flipped") else how)
    flag = "--onnx" if suffix == ".onnx" else "--mindir"
    done = run_entry("predict.py", [flag, model, "--input_dir", data, "--predict_dir", tmp_path / "out"])
    assert done.returncode == 2, done.stderr[-2000:]
    error, = done.stderr.strip().splitlines()
    if part == "file":  # the card's SHA-256 of the file catches any change to it
        assert error == (f"error: {flag} {model}: {model}.json does not match this file (its SHA-256 differs): "
                         "the file is damaged (a flipped bit, a partial copy) or the card is another model's; "
                         "export the checkpoint again, which writes both")
    elif how == "truncated":
        assert error.startswith(f"error: {damaged}: not valid JSON (")
    else:  # a flipped bit that leaves valid JSON is caught by the card's own checksum
        assert error == (f"error: {damaged}: damaged: its fields do not match the checksum it holds "
                         "(a flipped bit, or an edit); export the checkpoint again, which writes it")


@pytest.mark.parametrize("how, expected", [
    ("truncated", "truncated: a resolved config ends with '# end of the resolved flags', this copy stops before it"),
    ("not UTF-8", "not valid YAML (not UTF-8 text: byte "),
    ("empty", "the file is empty (0 bytes)"),
])
def test_a_damaged_config_file_is_named_in_one_line(trained, data, tmp_path, how, expected):
    config = tmp_path / "config.yaml"
    if how == "empty":
        config.write_bytes(b"")
    else:
        damaged_copy(trained[0].parent / "config.yaml", config, how)
    done = run_entry("eval.py", ["--config_path", config, "--ckpt", trained[0], "--val_data_dir", data,
                                 "--predict_dir", tmp_path / "p", "--report_dir", tmp_path / "r"])
    assert done.returncode == 2, done.stderr[-2000:]
    error, = done.stderr.strip().splitlines()
    assert error.startswith(f"error: --config_path {config}: {expected}")


@pytest.mark.parametrize("damage", ["not UTF-8", "zeroed", "a row cut short"])
def test_a_damaged_pairs_csv_is_named_in_one_short_line(trained, tmp_path, damage):
    from PIL import Image
    for name in ("A", "B"):
        (tmp_path / name).mkdir()
        Image.new("RGB", (32, 32)).save(tmp_path / name / "k.png")
    table = tmp_path / "pairs.csv"
    table.write_bytes({"not UTF-8": b"input,target\nA/k.png,B/k\xff.png\n",
                       "zeroed": bytes(100_000),
                       "a row cut short": b"input,target\nA/k.png,B/k.png\nA/k.png\n"}[damage])
    done = run_entry("eval.py", ["--ckpt", trained[0], "--val_data_dir", tmp_path,
                                 "--predict_dir", tmp_path / "p", "--report_dir", tmp_path / "r"])
    assert done.returncode == 2, done.stderr[-2000:]
    error, = done.stderr.strip().splitlines()
    assert str(table) in error and len(error) < 400


def dead_pid():
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    return int(done.stdout)


@pytest.mark.parametrize("script", ["eval.py", "predict.py", "export.py"])
def test_a_rerun_removes_the_temporary_file_a_killed_run_left(script, trained, data, tmp_path):
    generator, onnx = trained
    out = tmp_path / "out"
    out.mkdir()
    left = out / f".k0.png.{dead_pid()}.tmp.png"  # atomic_path's naming, its writer gone
    left.write_bytes(b"half a PNG")
    args = {"eval.py": ["--ckpt", generator, "--val_data_dir", data, "--predict_dir", out, "--report_dir", tmp_path / "r"],
            "predict.py": ["--onnx", onnx, "--input_dir", data, "--predict_dir", out],
            "export.py": ["--ckpt", generator, "--file_name", out / "g"]}[script]
    done = run_entry(script, args)
    assert done.returncode == 0, done.stderr[-2000:]
    assert not left.exists() and f"removed {left}, left by a run killed while writing it" in done.stdout + done.stderr
    assert temporary_files(out) == []


def test_a_full_disk_under_the_tensorboard_writer_is_one_line_and_the_resumed_board_reads_as_one_run(
        data, small_disk, tmp_path):
    import shutil
    from test_tensorboard_log import curves, read_board
    filler = small_disk / "filler"
    filler.write_bytes(b"\0" * (shutil.disk_usage(small_disk).free - 8192))  # 8 kB left: a few events
    board = small_disk / "board"
    args = tiny_train_args(data, tmp_path / "run", "--tensorboard_dir", board, "--save_checkpoint_steps", "2")
    full = run_entry("train.py", args)
    assert full.returncode == 2, full.stderr[-2000:]
    error, = [line for line in full.stderr.splitlines() if line.startswith("error:")]
    assert error.startswith(f"error: cannot write {board}{os.sep}events.out.tfevents.")
    assert "no space left on the device" in error and "rerun with --resume True" in error
    assert "Traceback" not in full.stderr

    filler.unlink()
    resumed = run_entry("train.py", [*args, "--resume", "True"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    straight = tmp_path / "straight"
    done = run_entry("train.py", tiny_train_args(data, straight, "--tensorboard_dir", straight / "board",
                                                 "--save_checkpoint_steps", "2"))
    assert done.returncode == 0, done.stderr[-2000:]
    (resumed_scalars, _), (straight_scalars, _) = curves(read_board(str(board))), curves(read_board(str(straight / "board")))
    assert resumed_scalars.keys() == straight_scalars.keys()
    for tag, points in straight_scalars.items():
        assert [step for step, _ in resumed_scalars[tag]] == [step for step, _ in points], tag
    assert_same_final_state(str(straight), str(tmp_path / "run"))
