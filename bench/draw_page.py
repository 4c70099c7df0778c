"""Screenshots of the served page's drawing canvas (imgs/draw_labels.png, imgs/draw_quickstart.png),
drawn in headless Chromium by the tests' own page driver (tests/test_draw.py), and the time each
stroke's translation took, written to bench/DRAW.md.

1. A label-to-photo model: trained here on toy facades (src/dataset/toy_labels.py), served with
   its legend and example label maps; a facade is drawn with the pen and rectangle tools.
2. The quickstart's grey -> colour model (bash scripts/run_quickstart.sh, run here unless
   --quickstart_dir holds one), served from its ONNX file; a held-out photograph is opened from
   the examples and drawn on in black and white.

    python bench/draw_page.py [--epochs 12] [--quickstart_dir DIR] [--work_dir DIR]
"""
import argparse
import datetime
import os
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "tests"))
from src.dataset.toy_labels import build  # noqa: E402
from src.utils.files import atomic_write_text  # noqa: E402
from test_draw import Page  # noqa: E402 (the tests' page driver: the same strokes as the tests)
from test_serve import Server, chrome  # noqa: E402

RESULTS = os.path.join(REPO, "bench", "DRAW.md")


def run(command, **env):
    print("$", " ".join(command), flush=True)
    subprocess.run(command, cwd=REPO, check=True, env={**os.environ, **env})


def train_label_model(work, epochs):
    data = build(os.path.join(work, "labels"), count=200, size=72, examples=3)
    run([sys.executable, "train.py", "--train_data_dir", os.path.join(data, "train"), "--palette",
         os.path.join(data, "legend.yaml"), "--crop_size", "64", "--load_size", "72", "--ngf", "32", "--ndf", "32",
         "--n_epochs", str(epochs // 2), "--n_epochs_decay", str(epochs - epochs // 2), "--print_interval", "200",
         "--ckpt_dir", os.path.join(work, "ckpt"), "--train_fakeimg_dir", os.path.join(work, "fake"),
         "--loss_show_dir", os.path.join(work, "loss")])
    run([sys.executable, "export.py", "--ckpt", os.path.join(work, "ckpt", f"Generator_{epochs}.ckpt"),
         "--file_name", os.path.join(work, "labels"), "--file_format", "ONNX"])
    return os.path.join(work, "labels.onnx"), data


def timed(page):
    page.translated()
    return float(page.element("draw-status").text.split(" in ")[1].split(" s")[0])


def draw_facade(page):
    """A facade on the background: facade, cornice, two rows of windows, a door; pen strokes last."""
    page.element("canvas-width").clear()
    page.element("canvas-width").send_keys("128")
    page.element("canvas-height").clear()
    page.element("canvas-height").send_keys("128")
    page.element("new-blank").click()
    seconds = [timed(page)]
    side = page.canvas.size["width"]
    cell = side / 128  # CSS pixels a canvas pixel
    def at(x, y):  # canvas pixel -> offset from the canvas's centre
        return round((x - 64) * cell), round((y - 64) * cell)
    def rectangle(colour_key, x0, y0, x1, y1):
        page.keys(colour_key, "r")
        start = at(x0, y0)
        end = at(x1, y1)
        page.stroke(start, (end[0] - start[0], end[1] - start[1]))
        seconds.append(timed(page))
    rectangle("2", 16, 24, 112, 128)
    rectangle("3", 16, 24, 112, 32)
    for top in (44, 76):
        for left in (26, 56, 86):
            rectangle("4", left, top, left + 16, top + 20)
        rectangle("5", 22, top + 21, 106, top + 24)
    rectangle("6", 54, 104, 74, 128)
    page.keys("p", "4", "]", "]")
    page.stroke(at(30, 112), (round(14 * cell), 0))
    seconds.append(timed(page))
    return seconds


def draw_on_example(page, example):
    from selenium.webdriver.support.ui import Select
    Select(page.element("examples")).select_by_visible_text(example)
    seconds = [timed(page)]
    side = page.canvas.size["width"]
    page.keys("2", "]", "]", "]")
    page.stroke((-side // 3, -side // 3), (side // 4, side // 6), (side // 4, -side // 8))
    seconds.append(timed(page))
    page.keys("1")
    page.stroke((-side // 3, side // 4), (side // 2, 0))
    seconds.append(timed(page))
    return seconds


def screenshot(model, flags, draw, picture, work):
    server = Server(model, flags, os.path.join(work, os.path.basename(picture) + ".log"))
    browser = chrome()
    try:
        browser.set_window_size(1280, 1000)
        browser.get(server.url + "/")
        page = Page(browser)
        page.translated()
        seconds = draw(page)
        browser.save_screenshot(os.path.join(REPO, picture))
        return seconds
    finally:
        browser.quit()
        server.stop()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=12, help="epochs of the label model (default: %(default)s)")
    parser.add_argument("--quickstart_dir", default=None,
                        help="a finished quickstart's folder (default: run the quickstart under --work_dir)")
    parser.add_argument("--work_dir", default=None, help="scratch folder (default: a temporary one)")
    args = parser.parse_args(argv)
    work = args.work_dir or tempfile.mkdtemp(prefix="p2p_draw_")
    started = time.time()
    labels_model, data = train_label_model(os.path.join(work, "labels_run"), args.epochs)
    label_seconds = screenshot(labels_model, ["--palette", os.path.join(data, "legend.yaml"),
                                              "--examples", os.path.join(data, "examples")],
                               draw_facade, "imgs/draw_labels.png", work)
    quickstart = args.quickstart_dir or os.path.join(work, "quickstart")
    if not args.quickstart_dir:
        run(["bash", "scripts/run_quickstart.sh"], QUICKSTART_DIR=quickstart, P2P_SKIP_INSTALL="1")
    example_dir = os.path.join(quickstart, "data", "test_inputs")
    example = sorted(os.listdir(example_dir))[0]
    quick_seconds = screenshot(os.path.join(quickstart, "generator.onnx"), ["--examples", example_dir],
                               lambda page: draw_on_example(page, example), "imgs/draw_quickstart.png", work)
    lines = ["# The drawing canvas: screenshots and the time a stroke's translation takes", "",
             f"Written by `python bench/draw_page.py` on {datetime.date.today()} ({time.time() - started:.0f} s in all), "
             "on this project's 2-core CPU machine, headless Chromium on 127.0.0.1; the time is the page's own, from "
             "sending the drawing to showing the translation. The first translation of each page is the served model's "
             "first call, which the max holds.", "",
             "| page | model | canvas | translations | median s | max s |", "|---|---|---|---|---|---|",
             f"| [imgs/draw_labels.png](../imgs/draw_labels.png) | toy facades, ngf 32, {args.epochs} epochs, ONNX | "
             f"128 x 128 | {len(label_seconds)} | {statistics.median(label_seconds):.2f} | {max(label_seconds):.2f} |",
             f"| [imgs/draw_quickstart.png](../imgs/draw_quickstart.png) | the quickstart's, ONNX | {example} | "
             f"{len(quick_seconds)} | {statistics.median(quick_seconds):.2f} | {max(quick_seconds):.2f} |", ""]
    atomic_write_text(RESULTS, "\n".join(lines))
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
