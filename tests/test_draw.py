"""The served page's drawing canvas and the palette behind it: label colours found in the training
inputs and recorded in the checkpoint and the model card, a legend naming them, example inputs,
and strokes drawn in headless Chromium (selenium's pointer actions) that the translation follows."""
import base64
import io
import os

import numpy as np
import pytest
from PIL import Image

from conftest import run_entry, tiny_train_args
from src import checkpoint
from src.config import parse_args
from src.dataset.palette import find_label_colours, read_legend, training_palette
from src.dataset.pairs import find_pairs
from src.dataset.toy_labels import LEGEND, build
from src.utils.errors import UserError
from test_serve import API_KEY, Server, chrome, export_tiny, free_port, network_requests

pytest.importorskip("fastapi")
LEGEND_HEX = ["#%02x%02x%02x" % colour for colour in LEGEND.values()]
# Labels that hold at least 2% of the toy facades' pixels: each one must be found.
MAIN_LABELS = ("background", "facade", "cornice", "window", "door")


def close_to_legend(colour, tolerance=3):
    """The legend label `colour` (hex) stands for, within `tolerance` levels (JPEG), or None."""
    rgb = np.array([int(colour[i:i + 2], 16) for i in (1, 3, 5)])
    for name, legend in LEGEND.items():
        if np.abs(rgb - np.array(legend)).max() <= tolerance:
            return name
    return None


def test_label_colours_are_found_in_jpeg_label_maps_and_not_in_photographs(tmp_path):
    folder = build(str(tmp_path / "labels"), count=12, size=96, examples=0)
    cfg = parse_args("train", ["--train_data_dir", os.path.join(folder, "train")])
    palette = training_palette(find_pairs(cfg.train_data_dir, "--train_data_dir", cfg), cfg)
    names = [close_to_legend(entry["color"]) for entry in palette]
    assert None not in names and len(set(names)) == len(names), palette
    assert set(MAIN_LABELS) <= set(names)
    assert palette[0]["color"] == "#0000aa"  # the most frequent first: the eraser's colour
    # The other side of the same pairs (textured pictures) and photographs are no label maps.
    cfg.direction = "BtoA"
    assert training_palette(find_pairs(cfg.train_data_dir, "--train_data_dir", cfg), cfg) is None
    from skimage import data
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        assert find_label_colours(getattr(data, name)().reshape(-1, 3)) is None, name


@pytest.mark.parametrize("content,message", [
    (None, "no such file"),
    ("wall: blue\n", "label 'wall' has colour 'blue'; give \"#rrggbb\" or [r, g, b] in 0..255"),
    ("- a\n- b\n", "a legend maps label names to colours"),
    ("wall: [0, 0, 300]\n", "label 'wall' has colour [0, 0, 300]"),
    ("wall: [0, 0\n", "not a readable YAML or JSON legend"),
])
def test_a_bad_legend_is_one_line_naming_it(tmp_path, content, message):
    path = tmp_path / "legend.yaml"
    if content is not None:
        path.write_text(content)
    with pytest.raises(UserError) as raised:
        read_legend(str(path))
    assert message in str(raised.value) and str(path) in str(raised.value)


def test_a_legend_gives_names_and_the_order(tmp_path):
    path = tmp_path / "legend.json"
    path.write_text('{"sky": [0, 0, 170], "wall": "#0055FF"}')
    assert read_legend(str(path)) == [{"color": "#0000aa", "name": "sky"}, {"color": "#0055ff", "name": "wall"}]


@pytest.fixture(scope="module")
def label_model(tmp_path_factory):
    """A tiny label-to-photo model trained on toy facades (its checkpoint records the colours it
    found), exported to MINDIR; the legend and example label maps."""
    root = tmp_path_factory.mktemp("draw")
    data = build(str(root / "data"), count=12, size=96, examples=2)
    result = run_entry("train.py", tiny_train_args(os.path.join(data, "train"), str(root)))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "input palette: " in result.stdout and "found in the training inputs" in result.stdout
    ckpt = str(root / "ckpt" / "Generator_2.ckpt")
    result = run_entry("export.py", ["--ckpt", ckpt, "--file_name", root / "labels"])
    assert result.returncode == 0, result.stderr[-3000:]
    return {"root": root, "ckpt": ckpt, "mindir": str(root / "labels.mindir"),
            "legend": os.path.join(data, "legend.yaml"), "examples": os.path.join(data, "examples")}


def test_the_checkpoint_and_the_model_card_record_the_label_colours(label_model):
    import json
    recorded = checkpoint.read_recorded_palette(label_model["ckpt"])
    assert set(MAIN_LABELS) <= {close_to_legend(entry["color"]) for entry in recorded}
    with open(label_model["mindir"] + ".json", encoding="utf-8") as handle:
        assert json.load(handle)["input_palette"] == recorded


def test_a_card_whose_palette_is_not_one_is_refused_in_one_line(label_model, tmp_path):
    import json
    import shutil
    from conftest import copy_card_claiming
    from src.model_card import read_model_card
    mindir = str(tmp_path / "labels.mindir")
    shutil.copy(label_model["mindir"], mindir)
    with open(label_model["mindir"] + ".json", encoding="utf-8") as handle:
        card = json.load(handle)
    card["input_palette"] = [{"color": "blue", "name": None}]
    (tmp_path / "edited.json").write_text(json.dumps(card))
    copy_card_claiming(str(tmp_path / "edited.json"), mindir)
    with pytest.raises(UserError, match="its input palette is not a list of"):
        read_model_card(mindir)


def sent_colours(browser):
    """The colours of the last drawing the page POSTed to /translate (captured by the fetch hook)."""
    encoded = browser.execute_script("return window.sentDrawings[window.sentDrawings.length - 1];")
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB")).reshape(-1, 3)
    return {"#%02x%02x%02x" % tuple(colour) for colour in np.unique(pixels, axis=0)}


CAPTURE_SENT_DRAWINGS = """
window.sentDrawings = [];
window.inFlight = 0;
window.mostInFlight = 0;
const pageFetch = window.fetch;
window.fetch = async (url, options) => {
  if (!(String(url).startsWith("translate") && options && options.body instanceof FormData)) return pageFetch(url, options);
  const bytes = new Uint8Array(await options.body.get("file").arrayBuffer());
  window.sentDrawings.push(btoa(Array.from(bytes, (b) => String.fromCharCode(b)).join("")));
  window.mostInFlight = Math.max(window.mostInFlight, ++window.inFlight);
  try { return await pageFetch(url, options); } finally { window.inFlight--; }
};
"""
TRANSLATION_BYTES = """
const done = arguments[arguments.length - 1];
fetch(document.getElementById("draw-output").src).then((r) => r.arrayBuffer())
  .then((buffer) => done(btoa(Array.from(new Uint8Array(buffer), (b) => String.fromCharCode(b)).join(""))));
"""


class Page:
    """The served page in a browser: its canvas, strokes and the translation that follows them."""

    def __init__(self, browser):
        from selenium.webdriver.common.by import By
        self.browser, self.by = browser, By
        self.canvas = browser.find_element(By.ID, "canvas")

    def wait(self, condition, timeout=60):
        from selenium.webdriver.support.ui import WebDriverWait
        WebDriverWait(self.browser, timeout).until(lambda _: condition())

    def element(self, name):
        return self.browser.find_element(self.by.ID, name)

    def translated(self):
        """The translation's PNG bytes, once it is of the canvas as it is now."""
        output = self.element("draw-output")
        self.wait(lambda: output.get_attribute("data-state") in ("done", "error")
                  and output.get_attribute("data-revision") == self.canvas.get_attribute("data-revision"))
        assert output.get_attribute("data-state") == "done", self.element("draw-error").text
        return base64.b64decode(self.browser.execute_async_script(TRANSLATION_BYTES))

    def stroke(self, *moves):
        """Press at the canvas's centre offset by the first move, drag through the others, release."""
        from selenium.webdriver.common.action_chains import ActionChains
        (x, y), *rest = moves
        actions = ActionChains(self.browser).move_to_element_with_offset(self.canvas, x, y).click_and_hold()
        for dx, dy in rest:
            actions = actions.move_by_offset(dx, dy)
        actions.release().perform()

    def keys(self, *keys):
        from selenium.webdriver.common.action_chains import ActionChains
        from selenium.webdriver.common.keys import Keys
        for key in keys:
            if key.startswith("ctrl+"):
                ActionChains(self.browser).key_down(Keys.CONTROL).send_keys(key[-1]).key_up(Keys.CONTROL).perform()
            else:
                ActionChains(self.browser).send_keys(key).perform()

    def canvas_pixels(self):
        encoded = self.browser.execute_script("return arguments[0].toDataURL('image/png').split(',')[1];", self.canvas)
        return np.asarray(Image.open(io.BytesIO(base64.b64decode(encoded))).convert("RGB"))


def test_a_label_model_page_draws_in_its_palette_and_translates_each_stroke(label_model, tmp_path):
    running = Server(label_model["mindir"], ["--palette", label_model["legend"], "--examples", label_model["examples"]],
                     tmp_path / "server.log", env={"PIX2PIX_API_KEY": API_KEY})
    browser = chrome(network_log=True)
    try:
        browser.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(tmp_path)})
        browser.get(running.url + "/")
        page = Page(browser)
        page.wait(lambda: page.element("key-form").is_displayed())
        page.element("api-key").send_keys(API_KEY + "\n")
        page.wait(lambda: page.canvas.get_attribute("data-revision") != "0")
        browser.execute_script(CAPTURE_SENT_DRAWINGS)
        blank = page.translated()
        swatches = browser.find_elements(page.by.CSS_SELECTOR, "#palette .swatch")
        assert [swatch.get_attribute("data-color") for swatch in swatches] == LEGEND_HEX
        assert [swatch.get_attribute("aria-label") for swatch in swatches] == list(LEGEND)
        assert page.element("free-colour-label").is_displayed() is False
        # A window-coloured pen stroke (key 4), then a cornice-coloured rectangle (keys 3, r).
        page.keys("4")
        assert page.element("colour-name").text == "window"
        page.stroke((-120, -100), (90, 30), (30, 110))
        first = page.translated()
        assert first != blank
        assert sent_colours(browser) <= set(LEGEND_HEX) and "#00ffff" in sent_colours(browser)
        page.keys("3", "r")
        page.stroke((20, 20), (80, 60))
        second = page.translated()
        assert second != first
        assert sent_colours(browser) == {"#0000aa", "#00ffff", "#ff0000"}  # no blend of two colours anywhere
        # Undo restores the previous drawing and its translation; redo the later one.
        page.keys("ctrl+z")
        assert page.translated() == first
        page.keys("ctrl+y")
        assert page.translated() == second
        # The eraser (e) paints the background back.
        page.keys("e", "]", "]")
        page.stroke((20, 20), (80, 60))
        assert page.translated() not in (first, second)
        # Strokes faster than the translations: one request at a time, and the translation shown
        # at the end is the latest drawing's (the server's answer to it, sent here directly).
        sent_before = browser.execute_script("return window.sentDrawings.length;")
        for offset in range(4):
            page.stroke((-100 + 30 * offset, 60), (20, 40))
        latest = page.translated()
        assert browser.execute_script("return window.mostInFlight;") == 1
        assert browser.execute_script("return window.sentDrawings.length;") - sent_before <= 4
        drawing = base64.b64decode(browser.execute_script("return window.sentDrawings[window.sentDrawings.length - 1];"))
        assert Image.open(io.BytesIO(drawing)).size == (256, 256)
        assert np.array_equal(np.asarray(Image.open(io.BytesIO(drawing)).convert("RGB")), page.canvas_pixels())
        import httpx
        answer = httpx.post(running.url + "/translate", files={"file": ("drawing.png", drawing)},
                            headers={"X-API-Key": API_KEY}, trust_env=False, timeout=60)
        assert answer.status_code == 200 and answer.content == latest
        # The pair downloads as drawing | translation.
        page.element("download-pair").click()
        pair_path = tmp_path / "drawing_pair.png"
        page.wait(lambda: pair_path.exists() and pair_path.stat().st_size > 0)
        assert Image.open(pair_path).size == (2 * 256, 256)
        # An example label map opens at its size, every pixel a palette colour.
        from selenium.webdriver.support.ui import Select
        Select(page.element("examples")).select_by_visible_text("facade_0.png")
        page.wait(lambda: page.element("canvas-size").text == "96 x 96")
        page.translated()
        assert sent_colours(browser) <= set(LEGEND_HEX)
        # A canvas over the server's pixel budget is refused on the page; the drawing stays.
        for field in ("canvas-width", "canvas-height"):
            page.element(field).clear()
            page.element(field).send_keys("5000")
        page.element("new-blank").click()
        page.wait(lambda: "over this server's limit of 4,194,304 pixels (--max_pixels)" in page.element("draw-error").text)
        assert page.element("canvas-size").text == "96 x 96"
        urls = network_requests(browser)
        assert any(url.startswith(running.url + "/translate") for url in urls)
        assert all(url.startswith((running.url + "/", "blob:", "data:")) for url in urls), urls
    finally:
        browser.quit()
        running.stop()


def test_a_one_channel_model_draws_black_and_white_and_a_colour_model_freely(tmp_path):
    grey_mindir, _ = export_tiny(str(tmp_path), ["--crop_size", "32", "--ngf", "8", "--input_nc", "1"])
    os.makedirs(tmp_path / "examples")
    photo = (np.random.default_rng(3).random((40, 48, 3)) * 255).astype(np.uint8)
    Image.fromarray(photo).save(tmp_path / "examples" / "photo.png")
    os.makedirs(tmp_path / "colour")
    colour_mindir, _ = export_tiny(str(tmp_path / "colour"), ["--crop_size", "32", "--ngf", "8"])
    servers = [Server(grey_mindir, ["--examples", str(tmp_path / "examples")], tmp_path / "grey.log"),
               Server(colour_mindir, [], tmp_path / "colour.log")]
    browser = chrome()
    try:
        browser.get(servers[0].url + "/")
        page = Page(browser)
        blank = page.translated()
        swatches = browser.find_elements(page.by.CSS_SELECTOR, "#palette .swatch")
        assert [swatch.get_attribute("data-color") for swatch in swatches] == ["#ffffff", "#000000"]
        assert not page.element("free-colour-label").is_displayed()
        page.stroke((-50, -50), (100, 100))
        assert page.translated() != blank
        assert set(np.unique(page.canvas_pixels())) == {0, 255}
        from selenium.webdriver.support.ui import Select
        Select(page.element("examples")).select_by_visible_text("photo.png")
        page.wait(lambda: page.element("canvas-size").text == "48 x 40")
        page.translated()
        pixels = page.canvas_pixels().astype(int)
        expected = np.asarray(Image.fromarray(photo).convert("L")).astype(int)
        assert (pixels[:, :, 0] == pixels[:, :, 1]).all() and np.abs(pixels[:, :, 0] - expected).max() <= 1

        browser.get(servers[1].url + "/")
        page = Page(browser)
        page.translated()
        assert page.element("free-colour-label").is_displayed()
        assert not browser.find_elements(page.by.CSS_SELECTOR, "#palette .swatch")
    finally:
        browser.quit()
        for server in servers:
            server.stop()


def test_serve_checks_examples_and_the_legend_at_start(label_model, tmp_path):
    (tmp_path / "empty").mkdir()
    for flags, message in ((["--examples", str(tmp_path / "none")], "no such folder"),
                           (["--examples", str(tmp_path / "empty")], "no images"),
                           (["--palette", str(tmp_path / "none.yaml")], "no such file")):
        result = run_entry("serve.py", ["--mindir", label_model["mindir"], "--port", free_port(), *flags], timeout=120)
        assert result.returncode != 0 and message in result.stderr.strip().splitlines()[-1], result.stderr[-1000:]
