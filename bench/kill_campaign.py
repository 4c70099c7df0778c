"""SIGKILL a tiny training at many moments, resume after each, and compare what the run ends with
to an uninterrupted run's, bit for bit: final weights, resume state, its step, and the losses.

    python3 bench/kill_campaign.py                  # 24 kills; writes bench/FAULTS.md and bench/faults_kill.json
    python3 bench/kill_campaign.py --kills 3 --out /tmp/k.json

Half the kills land at random moments of a run (start-up and compile included), half the moment
a write begins: a checkpoint's or the resume state's temporary file appearing, validation
starting, the TensorBoard event file growing. After each kill the next run takes `--resume True`
when a resume state was committed (else it starts over), and it is killed again, until the kills
are spent; the last run finishes. tests/test_faults.py runs a short form.
"""
import argparse
import csv
import datetime
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))
from conftest import write_ab_folder  # noqa: E402 (after the path set-up)
from src.checkpoint import RESUME_FILE, resume_state_path  # noqa: E402
from src.utils.files import atomic_write_text  # noqa: E402
from src.utils.progress import progress_bar  # noqa: E402
from faults_report import write_section  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "faults_kill.json")
# What the moment-of-a-write kills wait for: (name, test on the run's folder and output so far).
WRITES = [
    ("resume state write", lambda run, out: _temporary(run, "ckpt", ".train_state_")),
    ("checkpoint write", lambda run, out: _temporary(run, "ckpt", ".Generator_") or _temporary(run, "ckpt", ".Discriminator_")),
    ("validation", lambda run, out: "validation on" in out),
    ("TensorBoard write", lambda run, out: _events_grew(run)),
]


def _temporary(run, folder, prefix):
    path = os.path.join(run, folder)
    return os.path.isdir(path) and any(name.startswith(prefix) for name in os.listdir(path))


_EVENT_SIZES = {}


def _events_grew(run):
    folder = os.path.join(run, "tensorboard")
    sizes = sorted(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder)) if os.path.isdir(folder) else []
    grew = run in _EVENT_SIZES and sizes and sizes != _EVENT_SIZES[run]
    _EVENT_SIZES[run] = sizes
    return grew


def train_args(data, run, resume):
    return [sys.executable, os.path.join(REPO, "train.py"), "--train_data_dir", data, "--val_data_dir", data,
            "--crop_size", "32", "--load_size", "36", "--ngf", "8", "--ndf", "8", "--n_epochs", "2",
            "--n_epochs_decay", "1", "--num_parallel_workers", "1", "--print_interval", "1",
            "--save_checkpoint_steps", "2", "--ckpt_dir", os.path.join(run, "ckpt"),
            "--train_fakeimg_dir", os.path.join(run, "img"), "--loss_show_dir", os.path.join(run, "loss"),
            "--tensorboard_dir", os.path.join(run, "tensorboard"), "--resume", str(resume)]


def run_until(data, run, resume, deadline=None, trigger=None):
    """One training run, SIGKILLed at `deadline` seconds or when `trigger` holds; returns
    (killed, returncode, output). Output goes to a file: a pipe could block the run."""
    os.makedirs(run, exist_ok=True)
    log_path = os.path.join(run, f"log_{time.time_ns()}.txt")
    with open(log_path, "w") as log:
        process = subprocess.Popen(train_args(data, run, resume), cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        start = time.time()
        while process.poll() is None:
            output = open(log_path).read()
            if (deadline is not None and time.time() - start >= deadline) or (trigger and trigger(run, output)):
                process.send_signal(signal.SIGKILL)
                process.wait()
                return True, None, open(log_path).read()
            time.sleep(0.002)
    return False, process.returncode, open(log_path).read()


def final_record(run):
    """What the run ends with: every array of the resume state and of the last checkpoints, the
    committed step, and the losses file."""
    import mindspore as ms
    ckpt = os.path.join(run, "ckpt")
    arrays = {}
    for label, path in (("state", resume_state_path(ckpt)), ("G", os.path.join(ckpt, "Generator_3.ckpt")),
                        ("D", os.path.join(ckpt, "Discriminator_3.ckpt"))):
        for name, value in ms.load_checkpoint(path).items():
            if not isinstance(value, str):
                arrays[f"{label}:{name}"] = value.asnumpy().tobytes()
    with open(os.path.join(ckpt, RESUME_FILE)) as handle:
        step = json.load(handle)["step"]
    with open(os.path.join(run, "loss", "losses.csv"), newline="") as handle:
        losses = list(csv.reader(handle))
    return arrays, step, losses


def campaign(kills, work_dir, seed=0):
    rng = random.Random(seed)
    data = os.path.join(work_dir, "data")
    write_ab_folder(data, 4)
    straight = os.path.join(work_dir, "straight")
    start = time.time()
    _, code, output = run_until(data, straight, False)
    if code != 0:
        raise SystemExit(f"kill_campaign: the uninterrupted run failed:\n{output[-2000:]}")
    duration = time.time() - start
    run = os.path.join(work_dir, "killed")
    os.makedirs(run)
    landed, moments = 0, []
    with progress_bar(range(kills), desc="kills", unit="kill") as bar:
        for number in bar:
            resume = os.path.exists(os.path.join(run, "ckpt", RESUME_FILE))
            if number % 2 == 0:
                moment, trigger, deadline = "random moment", None, rng.uniform(0.0, duration)
            else:
                moment, trigger = rng.choice(WRITES)
                deadline = duration * 2  # a run past its writes is killed at this moment instead
            killed, code, output = run_until(data, run, resume, deadline, trigger)
            if not killed and code != 0:
                raise SystemExit(f"kill_campaign: a run after {number} kills failed:\n{output[-2000:]}")
            landed += killed
            moments.append({"kill": number + 1, "aimed at": moment, "landed": killed, "resumed": resume,
                            "last line": (output.strip().splitlines() or [""])[-1][:160]})
            bar.set_postfix_str(f"{moment}{'' if killed else ' (the run had ended)'}", refresh=False)
            if not killed:  # the run finished before the kill: start it again from nothing
                shutil.rmtree(run)
                os.makedirs(run)
    resume = os.path.exists(os.path.join(run, "ckpt", RESUME_FILE))
    _, code, output = run_until(data, run, resume)
    if code != 0:
        raise SystemExit(f"kill_campaign: the last run failed:\n{output[-2000:]}")
    (a, step_a, losses_a), (b, step_b, losses_b) = final_record(straight), final_record(run)
    different = sorted(name for name in a if a[name] != b.get(name)) + sorted(set(b) - set(a))
    leftovers = [n for n in os.listdir(os.path.join(run, "ckpt")) if n.startswith(".") or ".tmp" in n]
    return {"date": datetime.date.today().isoformat(), "kills": kills, "landed": landed,
            "uninterrupted seconds": round(duration, 1), "arrays compared": len(a), "arrays different": different,
            "step": [step_a, step_b], "losses equal": losses_a == losses_b, "loss rows": len(losses_a) - 1,
            "temporary files left": leftovers, "moments": moments,
            "nothing lost": not different and step_a == step_b and losses_a == losses_b and not leftovers}


def write_report(result):
    aimed = {}
    for moment in result["moments"]:
        aimed.setdefault(moment["aimed at"], [0, 0])
        aimed[moment["aimed at"]][0] += 1
        aimed[moment["aimed at"]][1] += moment["landed"]
    lines = ["## Kills at any moment (`python3 bench/kill_campaign.py`)", "",
             f"{result['date']}: a 32-px training of 3 epochs x 4 steps with validation, TensorBoard and a "
             f"resume state every 2 steps ({result['uninterrupted seconds']} s uninterrupted), SIGKILLed "
             f"{result['kills']} times and resumed after each; {result['landed']} kills landed while it ran.", "",
             "| kills aimed at | kills | landed |", "| --- | --- | --- |"]
    lines += [f"| {name} | {count} | {hit} |" for name, (count, hit) in sorted(aimed.items())]
    lines += ["", "| compared with the uninterrupted run | result |", "| --- | --- |",
              f"| arrays of the resume state and the last G and D checkpoints | {result['arrays compared']} compared, "
              f"{len(result['arrays different'])} different |",
              f"| committed step | {result['step'][1]} (uninterrupted: {result['step'][0]}) |",
              f"| losses.csv ({result['loss rows']} rows) | {'equal' if result['losses equal'] else 'DIFFERENT'} |",
              f"| temporary files left | {len(result['temporary files left'])} |",
              f"| **anything lost** | **{'nothing' if result['nothing lost'] else 'YES: see faults_kill.json'}** |", "",
              "Each kill, where it landed and the run's last line: [faults_kill.json](faults_kill.json).", ""]
    write_section("kill", lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--kills", type=int, default=24, help="SIGKILLs to inject (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the kill moments (default: %(default)s)")
    parser.add_argument("--out", default=None, help="results JSON; default bench/faults_kill.json and bench/FAULTS.md")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kill_campaign_") as work_dir:
        result = campaign(args.kills, work_dir, args.seed)
    atomic_write_text(args.out or RESULTS, json.dumps(result, indent=1) + "\n")
    if args.out is None:
        write_report(result)
    print(f"{result['landed']} kills landed; nothing lost: {result['nothing lost']}")
    return 0 if result["nothing lost"] else 1


if __name__ == "__main__":
    sys.exit(main())
