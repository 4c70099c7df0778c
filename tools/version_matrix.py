"""Run the project on each MindSpore version the package registry serves for this Python.

    python3 tools/version_matrix.py                       # every version pip can install here
    python3 tools/version_matrix.py --versions 2.7.0,2.10.0 --work_dir /tmp/msmatrix

Each version gets a venv of its own, into which pip installs that MindSpore and requirements.txt
together, as a user would: pip then picks what that version needs (MindSpore 2.7.0 pins
numpy < 2, and with it older astropy, onnx and ml-dtypes). In it, a smoke runs the user's path at 32 px:
train 2 epochs with validation, a SIGKILL after the first mid-epoch resume state and
`--resume True`, export to MINDIR and ONNX, eval, predict, and one request to a running
serve.py. Then the test files that finish in a few minutes run under it. The results go to
bench/versions.json and the table of docs/versions.md; requirements.txt's lower bound is the
oldest version whose row passed.
"""
import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
import time

from packaging.version import Version

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
from src.utils.files import atomic_write_text  # noqa: E402 (after the path set-up)

RESULTS = os.path.join(REPO, "bench", "versions.json")
TABLE = os.path.join(REPO, "docs", "versions.md")
# Test files of a few minutes each that cover the model, the data, training, export and eval.
QUICK_TESTS = ["tests/test_config.py", "tests/test_models.py", "tests/test_pipeline.py",
               "tests/test_train.py", "tests/test_eval_export.py", "tests/test_onnx.py"]
TINY = ["--config_path", "configs/quickstart.yaml", "--crop_size", "32", "--load_size", "36",
        "--ngf", "8", "--ndf", "8", "--num_parallel_workers", "1", "--print_interval", "1"]


def registry_versions():
    """MindSpore versions pip can install for this interpreter, oldest first."""
    out = subprocess.run([sys.executable, "-m", "pip", "index", "versions", "mindspore"],
                         capture_output=True, text=True, check=True).stdout
    listed = out.split("Available versions:", 1)[1].splitlines()[0]
    return sorted((v.strip() for v in listed.split(",")), key=Version)


def make_venv(version, work_dir):
    """A venv holding MindSpore `version` and requirements.txt; returns its python."""
    venv = os.path.join(work_dir, f"ms-{version}")
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(python):
        subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    subprocess.run([python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    f"mindspore=={version}", "-r", os.path.join(REPO, "requirements.txt")],
                   check=True, capture_output=True, text=True)
    return python


def last_line(text):
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


class Smoke:
    """The user's path, one named step after another, with `python`; a failed step ends it."""

    def __init__(self, python, work_dir):
        self.python, self.dir = python, work_dir
        self.steps = []
        self.env = {**os.environ, "PATH": os.path.dirname(python) + os.pathsep + os.environ["PATH"]}

    def path(self, *parts):
        return os.path.join(self.dir, *parts)

    def run(self, name, args, timeout=900):
        start = time.time()
        done = subprocess.run([self.python, *args], cwd=REPO, env=self.env, capture_output=True,
                              text=True, timeout=timeout)
        ok = done.returncode == 0
        self.steps.append({"step": name, "ok": ok, "seconds": round(time.time() - start, 1),
                           "error": "" if ok else last_line(done.stderr) or last_line(done.stdout)})
        return ok

    def train_args(self, *extra):
        return ["train.py", *TINY, "--train_data_dir", self.path("data", "train"),
                "--val_data_dir", self.path("data", "test"), "--n_epochs", "1", "--n_epochs_decay", "1",
                "--ckpt_dir", self.path("ckpt"), "--train_fakeimg_dir", self.path("img"),
                "--loss_show_dir", self.path("loss"), *extra]

    def killed_and_resumed(self):
        """SIGKILL the training once its first mid-epoch resume state exists, then resume it."""
        start = time.time()
        every = ["--save_checkpoint_steps", "3"]
        process = subprocess.Popen([self.python, *self.train_args(*every)], cwd=REPO, env=self.env,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        record = self.path("ckpt", "resume.json")
        while not os.path.exists(record) and process.poll() is None and time.time() < start + 900:
            time.sleep(0.01)
        killed = process.poll() is None
        process.send_signal(signal.SIGKILL)
        _, stderr = process.communicate()
        self.steps.append({"step": "train, killed at its first resume state", "ok": killed,
                           "seconds": round(time.time() - start, 1),
                           "error": "" if killed else last_line(stderr) or "ended before a resume state"})
        return killed and self.run("resume, 2 epochs with validation", self.train_args(*every, "--resume", "True"))

    def serve_one_request(self, model):
        start = time.time()
        port = 18000 + os.getpid() % 1000
        server = subprocess.Popen([self.python, "serve.py", "--onnx", model, "--port", str(port)],
                                  cwd=REPO, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        try:
            url = f"http://127.0.0.1:{port}"
            while subprocess.run(["curl", "-sf", f"{url}/health"], capture_output=True).returncode != 0:
                if server.poll() is not None or time.time() > start + 300:
                    raise RuntimeError("serve.py did not come up")
                time.sleep(0.5)
            image = os.path.join(self.path("data", "test_inputs"), sorted(os.listdir(self.path("data", "test_inputs")))[0])
            reply = subprocess.run(["curl", "-sf", "-o", self.path("served.png"), "-F", f"file=@{image}",
                                    f"{url}/translate"], capture_output=True, text=True)
            ok, error = reply.returncode == 0 and os.path.getsize(self.path("served.png")) > 0, reply.stderr
        except RuntimeError as failure:
            ok, error = False, str(failure)
        finally:
            server.send_signal(signal.SIGINT)
            try:
                _, stderr = server.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                _, stderr = server.communicate()
        self.steps.append({"step": "serve.py, one /translate request", "ok": ok,
                           "seconds": round(time.time() - start, 1), "error": "" if ok else error or last_line(stderr)})
        return ok

    def all_steps(self):
        best = self.path("ckpt", "Generator_best.ckpt")
        model = self.path("generator")
        return (self.run("build the data", ["-m", "src.dataset.quickstart_data", "build", "--out", self.path("data"),
                                            "--crops", "2", "--test_crops", "1", "--size", "40"])
                and self.killed_and_resumed()
                and self.run("export MINDIR", ["export.py", "--ckpt", best, "--file_name", model])
                and self.run("export ONNX", ["export.py", "--ckpt", best, "--file_name", model, "--file_format", "ONNX"])
                and self.run("eval", ["eval.py", "--ckpt", best, "--val_data_dir", self.path("data", "test"),
                                      "--predict_dir", self.path("eval_predict"), "--report_dir", self.path("eval")])
                and self.run("predict (MINDIR)", ["predict.py", "--mindir", model + ".mindir", "--input_dir",
                                                  self.path("data", "test_inputs"), "--predict_dir", self.path("predict")])
                and self.serve_one_request(model + ".onnx"))


def run_tests(python, env):
    start = time.time()
    done = subprocess.run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", *QUICK_TESTS], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=3600)
    summary = last_line(done.stdout)
    failed = [line.split(" - ")[0][len("FAILED "):] for line in done.stdout.splitlines() if line.startswith("FAILED ")]
    return {"ok": done.returncode == 0, "summary": summary, "failed": failed, "seconds": round(time.time() - start)}


def installed_versions(python):
    """{"installed": MindSpore's version, "numpy": numpy's} as the venv imports them."""
    out = subprocess.run([python, "-c", "import mindspore, numpy; print(mindspore.__version__, numpy.__version__)"],
                         capture_output=True, text=True).stdout.split()
    return dict(zip(("installed", "numpy"), out))


def check_version(version, work_dir):
    row = {"version": version, "date": datetime.date.today().isoformat(), "python": sys.version.split()[0]}
    try:
        python = make_venv(version, work_dir)
    except subprocess.CalledProcessError as failure:
        return {**row, "ok": False, "install": last_line(failure.stderr), "steps": [], "tests": None}
    row.update(installed_versions(python))
    smoke = Smoke(python, os.path.join(work_dir, f"smoke-{version}"))
    os.makedirs(smoke.dir, exist_ok=True)
    smoke_ok = smoke.all_steps()
    tests = run_tests(python, smoke.env)
    return {**row, "ok": smoke_ok and tests["ok"], "install": "ok", "steps": smoke.steps, "tests": tests}


def table(rows):
    lines = ["| MindSpore | date | Python | numpy | smoke | tests | what failed, and why |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for row in sorted(rows, key=lambda r: Version(r["version"])):
        failed = [f"{s['step']}: {s['error']}" for s in row["steps"] if not s["ok"]]
        if row["install"] != "ok":
            failed = [f"install: {row['install']}"]
        smoke = f"{sum(s['ok'] for s in row['steps'])}/{len(row['steps'])} steps" if row["steps"] else "not run"
        tests = row["tests"]["summary"] if row["tests"] else "not run"
        if row["tests"] and row["tests"]["failed"]:
            failed.append("tests failed: " + ", ".join(row["tests"]["failed"]))
        reason = "; ".join(failed).replace("|", "\\|") or "nothing"
        lines.append(f"| {row['version']} | {row['date']} | {row['python']} | {row.get('numpy', '?')} | {smoke} | {tests} "
                     f"| {reason} |")
    return "\n".join(lines)


def write_table(rows):
    with open(TABLE, encoding="utf-8") as handle:
        page = handle.read()
    begin, end = "<!-- versions table: tools/version_matrix.py -->", "<!-- end of versions table -->"
    head, rest = page.split(begin, 1)
    atomic_write_text(TABLE, head + begin + "\n" + table(rows) + "\n" + end + rest.split(end, 1)[1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    parser.add_argument("--versions", help="comma-separated MindSpore versions (default: all the registry serves)")
    parser.add_argument("--work_dir", default="/tmp/mindspore_versions", help="venvs and smoke outputs (default: %(default)s)")
    args = parser.parse_args()
    versions = args.versions.split(",") if args.versions else registry_versions()
    os.makedirs(args.work_dir, exist_ok=True)
    results = json.load(open(RESULTS)) if os.path.exists(RESULTS) else {}
    for version in versions:
        print(f"== MindSpore {version}", flush=True)
        results[version] = check_version(version, args.work_dir)
        row = results[version]
        print(f"   {'passed' if row['ok'] else 'FAILED'}: " + table([row]).splitlines()[-1], flush=True)
        atomic_write_text(RESULTS, json.dumps(results, indent=1) + "\n")
        write_table(list(results.values()))
    passing = [v for v in results if results[v]["ok"]]
    print("passing:", ", ".join(sorted(passing, key=Version)) or "none")
    return 0 if len(passing) == len(results) else 1


if __name__ == "__main__":
    sys.exit(main())
