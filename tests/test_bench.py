"""The bench script runs end to end at a tiny size and writes its tables (no timing asserted)."""
import re

from conftest import run_entry


def test_bench_writes_every_table(tmp_path):
    out = tmp_path / "bench.md"
    result = run_entry("bench/run.py", ["--steps", "2", "--sizes", "32", "--pipeline_images", "4",
                                        "--mindir_size", "32", "--mindir_repeats", "2", "--tiled_size", "80",
                                        "--tiled_tile", "64", "--tiled_crop", "32", "--uncapped_size", "32",
                                        "--uncapped_steps", "1", "--serve_size", "32", "--serve_requests", "2",
                                        "--out", out])
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert re.search(r"\| pix2pix \| 32 \| \d+\.\d{3} \|", text)
    assert re.search(r"\| 2 \| 4 \| \d+\.\d \|", text)  # pipeline with 2 workers
    assert re.search(r"\| 32 \| 8 \| \d+\.\d{3} \|", text)  # MINDIR batch 8
    assert re.search(r"\| 80x80 \| 64 \| 4 \| 32 \| \d+\.\d \| \d+ \|", text)  # tiled FITS
    assert re.search(r"\| 4 \| 8 \| \d+\.\d\d \| \d+ \| \d+ \|", text)  # serve.py, 4 clients x 2 requests
    assert "MindSpore" in text and "cores" in text
    # CPU, oneDNN's kernels per primitive, and the step with the ISA cap off.
    assert re.search(r"\| convolution forward_training \| `[^`]+` \(\d+\)", text)
    assert "Reference-kernel convolutions: none." in text
    assert re.search(r"\| ONEDNN_MAX_CPU_ISA=ALL \| 32 \| \d+\.\d{3} \|", text)
    assert re.search(r"\| compile \(largest size\) \| [\d.]+ s \| <= 5.0 s \| (yes|no) \|", text)


def test_compare_revisions_times_each_revision_in_one_table(tmp_path):
    out = tmp_path / "changes.md"
    result = run_entry("bench/compare_revisions.py", ["HEAD", "HEAD~0", "--size", "32", "--steps", "1",
                                                      "--trials", "1", "--out", out])
    assert result.returncode == 0, result.stderr[-2000:]
    rows = re.findall(r"^\| `(HEAD(?:~0)?)` \| (\d+\.\d{3}) \| ([+-]\d+)% \|", out.read_text(), re.M)
    assert [row[0] for row in rows] == ["HEAD", "HEAD~0"] and rows[0][2] in ("+0", "-0")
