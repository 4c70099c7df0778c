"""src/utils/progress.py and the bars of eval, predict, the 310 steps, tiled inference and
pair_files: one clean line per update in a log, tqdm's redrawing bar on a terminal, the summary
lines unchanged, an error still the last line."""
import fcntl
import os
import pty
import re
import select
import struct
import sys
import termios
import warnings

import numpy as np
import pytest
from PIL import Image

from conftest import run_entry, write_ab_folder
from src import checkpoint
from src.config import parse_args
from src.dataset import pairing
from src.evaluate import PIXELS_COUNTED
from src.inference import MANY_TILES, layout_for, make_tiling, translate
from src.models import registry
from src.utils import errors
from src.utils.errors import DataWarning
from src.utils.progress import LOG_SECONDS, on_terminal, progress_bar, say

MODEL_FLAGS = ["--crop_size", "32", "--ngf", "8"]
EVERY_UPDATE = {"P2P_PROGRESS_SECONDS": "0"}  # a log line for every update, not one per 10 s
# A bar's line in a log: "desc: pct% n/total [elapsed<left, rate(, postfix)]".
TIME = r"(?:\d+:)?\d\d:\d\d"
LOG_LINE = re.compile(rf"(?P<desc>.+?): +\d+% (?P<n>\d+)/(?P<total>\d+) \[(?P<elapsed>{TIME})<(?P<left>{TIME}|\?), +"
                      r"(?P<rate>\?\w+/s|[\d.]+\w+/s|[\d.]+s/\w+)(?:, (?P<postfix>.*))?\]")


def bar_lines(stderr, desc, total):
    """The log lines of the bar `desc` in `stderr`, checked: each one whole line matching LOG_LINE,
    the count rising from 0 to `total`, the last one with a rate and no time left."""
    assert "\r" not in stderr and "\x1b" not in stderr, repr(stderr[-500:])
    lines = [LOG_LINE.fullmatch(line) for line in stderr.splitlines() if line.startswith(f"{desc}: ")]
    assert lines and all(lines), stderr[-2000:]
    counts = [int(line["n"]) for line in lines]
    assert counts[0] == 0 and counts[-1] == total and counts == sorted(set(counts)), counts
    assert {int(line["total"]) for line in lines} == {total}
    assert lines[-1]["left"] == "00:00" and not lines[-1]["rate"].startswith("?")
    return lines


def test_in_a_log_each_update_is_one_clean_line_and_messages_stay_apart(capsys, monkeypatch):
    monkeypatch.setenv("P2P_PROGRESS_SECONDS", "0")
    with progress_bar(["a.png", "b.png", "c.png"], desc="images", unit="image") as bar:
        for name in bar:
            bar.set_postfix_str(name, refresh=False)
            if name == "b.png":
                say("a message")
    out, err = capsys.readouterr()
    lines = bar_lines(err, "images", 3)
    assert [line["n"] for line in lines] == ["0", "1", "2", "3"]  # closing repeats no line
    assert [line["postfix"] for line in lines] == [None, "a.png", "b.png", "c.png"]
    assert lines[-1]["rate"].endswith("image/s") and err.endswith("\n")
    assert out == "a message\n"


def test_in_a_log_a_fast_bar_writes_its_first_and_last_state_only(capsys, monkeypatch):
    monkeypatch.delenv("P2P_PROGRESS_SECONDS", raising=False)  # the default: a line at most every 10 s
    with progress_bar(range(1000), desc="fast", unit="it") as bar:
        for _ in bar:
            pass
    assert [line["n"] for line in bar_lines(capsys.readouterr().err, "fast", 1000)] == ["0", "1000"]


def test_a_data_warning_during_a_bar_is_a_line_of_its_own(capsys, monkeypatch):
    monkeypatch.setenv("P2P_PROGRESS_SECONDS", "0")
    monkeypatch.setattr(warnings, "showwarning", warnings.showwarning)  # put back afterwards
    errors._show_data_warnings()  # what run_cli installs
    with progress_bar(range(2), desc="images", unit="image") as bar, warnings.catch_warnings():
        warnings.simplefilter("always")
        for _ in bar:
            warnings.warn("odd data", DataWarning)
    err = capsys.readouterr().err
    assert err.splitlines().count("warning: odd data") == 2
    bar_lines(err, "images", 2)


def test_a_bad_progress_interval_is_one_line_naming_it(monkeypatch):
    monkeypatch.setenv("P2P_PROGRESS_SECONDS", "soon")
    with pytest.raises(errors.UserError, match="P2P_PROGRESS_SECONDS='soon': expected a number of seconds"):
        progress_bar(range(2))


def test_a_bar_not_shown_writes_nothing(capsys):
    with progress_bar(range(5), desc="quiet", shown=False) as bar:
        assert list(bar) == [0, 1, 2, 3, 4]
    assert capsys.readouterr().err == ""


def read_all(fd):
    """Everything written to a pty so far: one read returns only what one write delivered."""
    chunks = []
    while select.select([fd], [], [], 0.5)[0]:
        chunks.append(os.read(fd, 65536))
    return b"".join(chunks)


def test_on_a_terminal_the_bar_is_tqdms_redrawn_in_place(monkeypatch):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    with os.fdopen(slave, "w", encoding="utf-8") as terminal:
        assert on_terminal(terminal)
        monkeypatch.setattr(sys, "stderr", terminal)
        with progress_bar(range(3), desc="images", unit="image") as bar:
            for _ in bar:
                pass
        terminal.flush()
        monkeypatch.undo()
        drawn = read_all(master).decode("utf-8")
    os.close(master)
    assert drawn.count("\r") >= 2 and "images: 100%|" in drawn and "| 3/3 [" in drawn and "image/s]" in drawn


def test_tiled_inference_shows_a_bar_over_many_tiles_only_when_asked(capsys, monkeypatch):
    monkeypatch.setenv("P2P_PROGRESS_SECONDS", "0")
    tiling = make_tiling(unit=8, tile_size=16)
    large, small = np.zeros((1, 64, 64), np.float32), np.zeros((1, 24, 24), np.float32)
    tiles = layout_for(64, 64, tiling).count
    assert tiles >= MANY_TILES > layout_for(24, 24, tiling).count
    translate([large], lambda batch: batch, 4, tiling, show_tiles=True)
    bar_lines(capsys.readouterr().err, "tiles", tiles)
    translate([large], lambda batch: batch, 4, tiling)  # the server's and validation's call: quiet
    translate([small], lambda batch: batch, 4, tiling, show_tiles=True)  # few tiles: no bar
    assert capsys.readouterr().err == ""


def test_pairing_big_folders_shows_a_bar_and_the_same_last_line(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("P2P_PROGRESS_SECONDS", "0")
    for side in ("a", "b"):
        (tmp_path / side).mkdir()
        for key in range(4):
            (tmp_path / side / f"k{key}.png").write_bytes(b"")
    output = tmp_path / "pairs.csv"
    pairing.make_pairs(str(tmp_path / "a"), str(tmp_path / "b"), r"k(\d)", None, str(output))
    assert capsys.readouterr() == (f"4 pairs written to {output}\n", "")  # a small folder: no bar
    monkeypatch.setattr(pairing, "MANY_NAMES", 4)
    pairing.make_pairs(str(tmp_path / "a"), str(tmp_path / "b"), r"k(\d)", None, str(output))
    out, err = capsys.readouterr()
    assert out == f"4 pairs written to {output}\n"
    for flag in ("--input_dir", "--target_dir"):
        assert bar_lines(err, flag, 4)[-1]["rate"].endswith("file/s")


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    """A freshly initialised generator checkpoint, its MINDIR (batch 1) and three 40-px AB pairs."""
    root = tmp_path_factory.mktemp("progress")
    cfg = parse_args("eval", ["--val_data_dir", "x", "--ckpt", "x", *MODEL_FLAGS])
    ckpt = str(root / "Generator_1.ckpt")
    checkpoint.save_network(registry.build_generator(cfg), ckpt, {"model": cfg.model, **registry.arch(cfg, "generator")})
    exported = run_entry("export.py", ["--ckpt", ckpt, *MODEL_FLAGS, "--file_name", root / "g", "--batch_size", "1"])
    assert exported.returncode == 0, exported.stderr[-2000:]
    return ckpt, str(root / "g.mindir"), write_ab_folder(str(root / "ab"), 3, size=40)


def summary_lines(stdout, predict_dir, report_dir):
    """eval's summary as it was before the bars: the metrics table, the pixels note, where things are."""
    lines = stdout.splitlines()
    assert lines[-1] == (f"predictions in {predict_dir}; metrics.csv, summary.json, metrics.png, report.pdf and "
                         f"collages/ in {report_dir}")
    assert lines[-2] == PIXELS_COUNTED
    assert lines[-8].split() == ["metric", "mean", "median", "std", "min", "max"]
    assert [line.split()[0] for line in lines[-7:-2]] == ["L1", "MSE", "PSNR", "SSIM", "CC"]
    assert not any(re.match(r"\[\d+/\d+\]", line) for line in lines)  # the bar replaced the per-file lines


def test_eval_shows_a_bar_over_the_images_and_prints_its_summary(model, tmp_path):
    ckpt, _, data = model
    result = run_entry("eval.py", ["--val_data_dir", data, "--ckpt", ckpt, *MODEL_FLAGS, "--predict_dir", tmp_path / "p",
                                   "--report_dir", tmp_path / "r"], env=EVERY_UPDATE)
    assert result.returncode == 0, result.stderr[-2000:]
    summary_lines(result.stdout, tmp_path / "p", tmp_path / "r")
    lines = bar_lines(result.stderr, "images", 3)
    assert [line["postfix"] for line in lines[1:]] == ["000.png", "001.png", "002.png"]


def test_predict_shows_a_bar_and_says_where_the_predictions_are(model, tmp_path):
    _, mindir, data = model
    result = run_entry("predict.py", ["--mindir", mindir, "--input_dir", data, "--predict_dir", tmp_path / "p"],
                       env={"P2P_PROGRESS_SECONDS": str(LOG_SECONDS)})
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.splitlines()[0].startswith("run by MindSpore")
    assert result.stdout.splitlines()[-1] == f"no targets: predictions only, written to {tmp_path / 'p'}"
    assert [line["n"] for line in bar_lines(result.stderr, "images", 3)] == ["0", "3"]  # not flooded


def test_the_310_steps_show_bars_and_print_the_timing_report_and_summary(model, tmp_path):
    _, mindir, data = model
    pre, results = tmp_path / "pre", tmp_path / "result_Files"
    done = run_entry("preprocess.py", ["--mindir", mindir, "--dataset_path", data, "--output_path", pre], env=EVERY_UPDATE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert [line["postfix"] for line in bar_lines(done.stderr, "preprocess", 3)[1:]] == ["000.png", "001.png", "002.png"]
    done = run_entry("infer_bins.py", ["--mindir", mindir, "--input0_path", pre, "--output_dir", results,
                                       "--time_dir", tmp_path / "time"], env=EVERY_UPDATE)
    assert done.returncode == 0, done.stderr[-2000:]
    assert all(re.fullmatch(r"00\d\.bin \d+\.\d ms", line["postfix"]) for line in bar_lines(done.stderr, "infer", 3)[1:])
    assert done.stdout == (tmp_path / "time" / "test_perform_static.txt").read_text()  # the report, as before
    done = run_entry("postprocess.py", ["--preprocess_path", pre, "--result_path", results, "--predict_dir",
                                        tmp_path / "p", "--report_dir", tmp_path / "r"])
    assert done.returncode == 0, done.stderr[-2000:]
    summary_lines(done.stdout, tmp_path / "p", tmp_path / "r")
    bar_lines(done.stderr, "images", 3)


def test_an_error_midway_is_still_the_last_line_after_the_bar(model, tmp_path):
    ckpt, _, _ = model
    for side, sizes in (("input", (40, 40)), ("target", (40, 32))):
        (tmp_path / "data" / side).mkdir(parents=True)
        for name, size in zip(("a.png", "b.png"), sizes):
            Image.new("RGB", (size, size)).save(tmp_path / "data" / side / name)
    result = run_entry("eval.py", ["--val_data_dir", tmp_path / "data", "--ckpt", ckpt, *MODEL_FLAGS,
                                   "--predict_dir", tmp_path / "p", "--report_dir", tmp_path / "r"], env=EVERY_UPDATE)
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert lines[-1] == "error: b.png: input is 40x40, target 32x32; a pair must be the same size"
    assert LOG_LINE.fullmatch(lines[-2])["n"] == "1" and "\r" not in result.stderr
