"""Training-step time (or entry points' start-up time) of two or more git revisions, measured in
one run, interleaved.

    python bench/compare_revisions.py eb4fb8b HEAD --size 64 --steps 30 --trials 4
    python bench/compare_revisions.py 3913837 HEAD --startup --trials 5

Each revision is checked out into a temporary folder (`git archive`) and timed with its own
`bench/run.py --measure train`, alternating revisions trial by trial so that a change in the
machine's load affects all of them alike. Timings from different runs are not comparable: that
is why the revisions are measured together. Prints a Markdown table and, with --out, appends it.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def checkout(revision, root):
    """The tree of `revision` under root/<revision>; returns its path."""
    folder = os.path.join(root, revision.replace("/", "_"))
    archive = subprocess.run(["git", "-C", REPO, "archive", revision], capture_output=True, check=True)
    with tempfile.TemporaryFile() as handle:
        handle.write(archive.stdout)
        handle.seek(0)
        with tarfile.open(fileobj=handle) as tar:
            tar.extractall(folder, filter="data")
    return folder


def step_time(tree, size, steps, model):
    output = subprocess.run([sys.executable, os.path.join(tree, "bench", "run.py"), "--measure", "train",
                             str(size), str(steps), model], capture_output=True, text=True, cwd=tree)
    if output.returncode:
        raise SystemExit(f"compare_revisions: {tree} failed:\n{output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


STARTUP_ENTRIES = ("train", "eval", "export", "predict", "serve", "pair_files")


def startup_time(tree, entry):
    """Seconds `python <entry>.py --help` takes in `tree`: imports and parser building, the start-up
    every command pays before its work."""
    started = time.perf_counter()
    output = subprocess.run([sys.executable, os.path.join(tree, f"{entry}.py"), "--help"], capture_output=True,
                            text=True, cwd=tree)
    if output.returncode:
        raise SystemExit(f"compare_revisions: {entry}.py --help failed in {tree}:\n{output.stderr[-2000:]}")
    return time.perf_counter() - started


def startup_table(trees, trials):
    """Markdown: the median start-up time of each entry point per revision, trials alternated."""
    times = {(rev, entry): [] for rev in trees for entry in STARTUP_ENTRIES}
    for trial in range(trials):
        for entry in STARTUP_ENTRIES:
            for rev, tree in trees.items():
                times[rev, entry].append(startup_time(tree, entry))
        print(f"trial {trial + 1}/{trials} done", flush=True)
    first = next(iter(trees))
    lines = [f"Start-up (`python <entry>.py --help`), median of {trials} alternated trials, seconds:", "",
             "| entry point | " + " | ".join(f"`{rev}`" for rev in trees) + " | last vs first |",
             "| --- | " + " | ".join("---" for _ in trees) + " | --- |"]
    for entry in STARTUP_ENTRIES:
        medians = [statistics.median(times[rev, entry]) for rev in trees]
        lines.append(f"| {entry}.py | " + " | ".join(f"{value:.2f}" for value in medians)
                     + f" | {medians[-1] / statistics.median(times[first, entry]):.2f}x |")
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Time the training step (or the start-up) of several git "
                                     "revisions in one interleaved run.")
    parser.add_argument("revisions", nargs="+", help="git revisions (commits, branches, HEAD)")
    parser.add_argument("--size", type=int, default=64, help="image size (default: 64)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per trial (default: 30)")
    parser.add_argument("--trials", type=int, default=3, help="trials per revision (default: 3)")
    parser.add_argument("--model", default="pix2pix", choices=["pix2pix", "pix2pixcc"])
    parser.add_argument("--startup", action="store_true",
                        help="time each entry point's --help (imports, parsers) instead of the training step")
    parser.add_argument("--out", help="Markdown file to append the table to")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="compare_revisions_") as root:
        trees = {rev: checkout(rev, root) for rev in args.revisions}
        if args.startup:
            return write_table(startup_table(trees, args.trials), args.out)
        medians = {rev: [] for rev in args.revisions}
        for trial in range(args.trials):
            for rev, tree in trees.items():
                medians[rev].append(step_time(tree, args.size, args.steps, args.model)["median_s"])
                print(f"trial {trial + 1}/{args.trials} {rev}: {medians[rev][-1]:.3f} s/step", flush=True)
    first = statistics.median(medians[args.revisions[0]])
    lines = [f"{args.model} {args.size}x{args.size}, batch 1, {args.steps} steps x {args.trials} trials "
             "(median of the per-trial medians):", "",
             "| revision | s/step | vs first | per-trial medians |", "| --- | --- | --- | --- |"]
    for rev, values in medians.items():
        value = statistics.median(values)
        lines.append(f"| `{rev}` | {value:.3f} | {100 * (value / first - 1):+.0f}% | "
                     f"{', '.join(f'{v:.3f}' for v in values)} |")
    return write_table("\n".join(lines) + "\n", args.out)


def write_table(text, out):
    print(text)
    if out:
        with open(out, "a", encoding="utf-8") as handle:
            handle.write("\n" + text)


if __name__ == "__main__":
    main()
