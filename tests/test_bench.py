"""The bench script runs end to end at a tiny size and writes its tables (no timing asserted)."""
import re

from conftest import run_entry


def test_bench_writes_every_table(tmp_path):
    out = tmp_path / "bench.md"
    result = run_entry("bench/run.py", ["--steps", "2", "--sizes", "32", "--pipeline_images", "4",
                                        "--mindir_size", "32", "--mindir_repeats", "2", "--tiled_size", "80",
                                        "--tiled_tile", "64", "--tiled_crop", "32", "--out", out])
    assert result.returncode == 0, result.stderr[-2000:]
    text = out.read_text()
    assert re.search(r"\| pix2pix \| 32 \| \d+\.\d{3} \|", text)
    assert re.search(r"\| 2 \| 4 \| \d+\.\d \|", text)  # pipeline with 2 workers
    assert re.search(r"\| 32 \| 8 \| \d+\.\d{3} \|", text)  # MINDIR batch 8
    assert re.search(r"\| 80x80 \| 64 \| 4 \| 32 \| \d+\.\d \| \d+ \|", text)  # tiled FITS
    assert "MindSpore" in text and "cores" in text
