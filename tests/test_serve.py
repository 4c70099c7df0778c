"""serve.py and src/serve: the HTTP API (FastAPI's test client and a real uvicorn process on
127.0.0.1), bad uploads answered 4xx while the server stays up, concurrent requests answered
exactly as predict.py translates the same files, and the web page in headless Chromium."""
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from astropy.io import fits
from PIL import Image

from conftest import REPO, copy_card_claiming, run_entry
from src import checkpoint
from src.config import parse_args
from src.exporter import export_generator
from src.models import registry
from src.trained_generator import recorded_flags, resolve_checkpoint_flags

httpx = pytest.importorskip("httpx")
pytest.importorskip("fastapi")

TINY = ["--crop_size", "32", "--ngf", "8"]
FITS_MODEL = [*TINY, "--input_nc", "1", "--output_nc", "1", "--data_format_input", "fits",
              "--data_format_target", "fits", "--logscale_input", "True", "--saturation_lower_limit_input", "0",
              "--saturation_upper_limit_input", "4", "--saturation_lower_limit_target", "-1500",
              "--saturation_upper_limit_target", "1500", "--target_unit", "Gauss", "--lead_time", "0"]
# Tiles of 64 px: the larger test images are translated in overlapping tiles, by both sides.
SERVE_FLAGS = ["--tile_size", "64", "--max_upload_mb", "1"]
REQUESTS, CONCURRENCY = 40, 8


def export_tiny(folder, train_flags):
    """A freshly initialised tiny generator: its checkpoint (recording its flags) and MINDIR."""
    cfg = parse_args("train", ["--train_data_dir", "unused", *train_flags])
    ckpt = os.path.join(folder, "Generator_1.ckpt")
    checkpoint.save_network(registry.build_generator(cfg), ckpt,
                            {"model": cfg.model, **registry.arch(cfg, "generator")}, recorded_flags(cfg))
    export_cfg = resolve_checkpoint_flags(parse_args("export", ["--ckpt", ckpt, "--file_name",
                                                                os.path.join(folder, "generator")]))
    return export_generator(export_cfg), ckpt


def png_bytes(array, image_format="PNG"):
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, image_format)
    return buffer.getvalue()


def distinct_images(count):
    """(file name, bytes) of `count` different images: sizes from 24 to 100 px, RGB and grey,
    PNG with a JPEG and a TIFF among them."""
    rng = np.random.default_rng(7)
    images = []
    for index in range(count):
        height, width = (100, 90) if index == 0 else rng.integers(24, 81, 2)
        coarse = (rng.random((4, 4, 3)) * 255).astype(np.uint8)
        array = np.asarray(Image.fromarray(coarse).resize((int(width), int(height)), Image.BILINEAR))
        array = array[:, :, 0] if index % 5 == 1 else array  # some grey
        image_format, suffix = {2: ("JPEG", "jpg"), 3: ("TIFF", "tif")}.get(index, ("PNG", "png"))
        images.append((f"img_{index:02d}.{suffix}", png_bytes(array, image_format)))
    return images


def fits_bytes(data, **header):
    hdu = fits.PrimaryHDU(np.asarray(data, np.float32))
    for key, value in header.items():
        hdu.header[key.replace("_", "-") if key == "DATE_OBS" else key] = value
    buffer = io.BytesIO()
    hdu.writeto(buffer)
    return buffer.getvalue()


def solar_fits():
    yy, xx = np.mgrid[:48, :56]
    counts = 10 ** (1 + 2 * np.exp(-((xx - 20) ** 2 + (yy - 30) ** 2) / 90.0))
    return fits_bytes(counts, DATE_OBS="2011-02-15T00:00:00", CTYPE1="HPLN-TAN", CTYPE2="HPLT-TAN",
                      CRPIX1=28.5, CRPIX2=24.5, CDELT1=0.6, CDELT2=0.6, CUNIT1="arcsec", CUNIT2="arcsec",
                      INSTRUME="AIA_3", BUNIT="DN", EXPTIME=2.0)


@pytest.fixture(scope="session")
def served(tmp_path_factory):
    """Two tiny exported models (8-bit RGB images; one-channel FITS in Gauss), their inputs and
    what predict.py writes for them."""
    root = tmp_path_factory.mktemp("serve")
    models = {}
    for name, flags in (("image", TINY), ("fits", FITS_MODEL)):
        os.makedirs(root / name)
        models[name] = export_tiny(str(root / name), flags)
    inputs = {"image": distinct_images(REQUESTS), "fits": [("aia.fits", solar_fits())]}
    predicted = {}
    for name, files in inputs.items():
        folder = root / f"{name}_inputs"
        folder.mkdir()
        for file_name, content in files:
            (folder / file_name).write_bytes(content)
        result = run_entry("predict.py", ["--mindir", models[name][0], "--input_dir", folder,
                                          "--predict_dir", root / f"{name}_predicted", "--tile_size", "64"])
        assert result.returncode == 0, result.stderr[-2000:]
        predicted[name] = str(root / f"{name}_predicted")
    return {"root": root, "models": models, "inputs": inputs, "predicted": predicted}


def predicted_pixels(served, name):
    return np.asarray(Image.open(os.path.join(served["predicted"]["image"], name)))


def check_equals_predict(served, name, response):
    """A /translate PNG equals predict.py's file for the same input (a JPEG input: predict.py
    writes JPEG, so the PNG's pixels are encoded as it encodes them)."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(response.content)))
    if name.endswith(".jpg"):
        pixels = np.asarray(Image.open(io.BytesIO(png_bytes(pixels, "JPEG"))))
    expected = predicted_pixels(served, name)
    assert pixels.shape == expected.shape and np.array_equal(pixels, expected), name
    height, width = expected.shape[:2]
    assert response.headers["x-image-size"] == f"{width}x{height}"


def make_client(served, kind, flags=()):
    from fastapi.testclient import TestClient
    from src.serve.app import create_app
    from src.serve.model import load_served_model
    cfg = parse_args("serve", [*flags, *SERVE_FLAGS] if flags else ["--mindir", served["models"][kind][0], *SERVE_FLAGS])
    return TestClient(create_app(load_served_model(cfg), cfg))


@pytest.fixture(scope="module")
def image_client(served):
    return make_client(served, "image")


@pytest.fixture(scope="module")
def fits_client(served):
    return make_client(served, "fits")


def upload(client, name, content, query=""):
    return client.post(f"/translate{query}", files={"file": (name, content, "application/octet-stream")})


def test_translate_png_jpeg_tiff_at_their_own_size_as_predict_does(served, image_client):
    for name, content in served["inputs"]["image"][:6]:  # tiled 100x90, grey, JPEG, TIFF, small ones
        check_equals_predict(served, name, upload(image_client, name, content))


def test_fits_model_returns_fits_in_physical_units_with_predicts_header(served, fits_client):
    response = upload(fits_client, "aia.fits", served["inputs"]["fits"][0][1])
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/fits"
    assert response.headers["content-disposition"] == 'attachment; filename="aia.fits"'
    with fits.open(io.BytesIO(response.content)) as hdus:
        served_header, served_data = hdus[0].header, hdus[0].data
    with fits.open(os.path.join(served["predicted"]["fits"], "aia.fits")) as hdus:
        header, data = hdus[0].header, hdus[0].data
    assert np.array_equal(served_data, data) and served_data.shape == (48, 56)
    assert [str(card) for card in served_header.cards] == [str(card) for card in header.cards]
    assert served_header["BUNIT"] == "Gauss" and served_header["CTYPE1"] == "HPLN-TAN"
    assert served_header["DATE-OBS"].startswith("2011-02-15T00:00:00") and "EXPTIME" not in served_header
    assert "input aia.fits" in list(served_header["HISTORY"])
    assert 1.0 < np.abs(served_data).max() <= 1500 * 1.0001  # Gauss, not the network's [-1, 1]


def test_the_format_query_overrides_the_cards_choice(served, image_client, fits_client):
    name, content = served["inputs"]["image"][0]
    response = upload(image_client, name, content, "?format=fits")
    assert response.status_code == 200 and response.headers["content-type"] == "application/fits"
    values = fits.getdata(io.BytesIO(response.content))  # 0..255 as a cube, channels first
    assert np.array_equal(np.rint(np.clip(values, 0, 255)).astype(np.uint8),
                          np.transpose(predicted_pixels(served, name), (2, 0, 1)))
    response = upload(image_client, name, content, "?format=npy")
    assert np.load(io.BytesIO(response.content)).shape == (3, 100, 90)
    response = upload(fits_client, "aia.fits", served["inputs"]["fits"][0][1], "?format=png")
    assert response.status_code == 200 and response.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(response.content)).size == (56, 48)


def test_preview_shows_fits_as_the_network_sees_it(served, fits_client):
    content = served["inputs"]["fits"][0][1]
    for side, query, data in (("input", "", content), ("target", "&format=fits",
                                                       upload(fits_client, "aia.fits", content).content)):
        response = fits_client.post(f"/preview?side={side}{query}", files={"file": ("aia.fits", data)})
        assert response.status_code == 200 and response.headers["content-type"] == "image/png"
        picture = Image.open(io.BytesIO(response.content))
        assert picture.size == (56, 48) and picture.mode == "L"
    # log10 of 10 .. 1000 counts on the limits 0 .. 4: grey from a quarter to three quarters
    pixels = np.asarray(Image.open(io.BytesIO(fits_client.post("/preview", files={"file": ("aia.fits", content)}).content)))
    assert 60 <= pixels.min() < pixels.max() <= 195


def test_model_health_docs_and_an_offline_page(served, image_client):
    card = image_client.get("/model").json()
    with open(served["models"]["image"][0] + ".json") as handle:
        written = json.load(handle)
    # the card as written, but the checkpoint by its file name only (no server paths: --show_paths)
    assert {key: card[key] for key in written} == {**written, "checkpoint": "Generator_1.ckpt"}
    serving = card["serving"]
    assert serving["kind"] == "mindir" and serving["default_format"] == "png" and serving["max_upload_mb"] == 1
    assert serving["tiling"]["tile_size"] == 64 and serving["input_scaling"].startswith("linear 0..255")
    assert image_client.get("/health").json() == {"status": "ok", "model": "generator.mindir"}
    assert image_client.get("/docs").status_code == 200
    assert "/translate" in image_client.get("/openapi.json").json()["paths"]
    page = image_client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert "http:" not in page.text and "https:" not in page.text and "//cdn" not in page.text  # offline


def truncated_png(served):
    return served["inputs"]["image"][0][1][:300]


def two_channel_fits():
    return fits_bytes(np.ones((2, 40, 40)))


def fits_without_image():
    buffer = io.BytesIO()
    fits.HDUList([fits.PrimaryHDU(), fits.BinTableHDU.from_columns([fits.Column("a", "E", array=[1.0])])]).writeto(buffer)
    return buffer.getvalue()


BAD_UPLOADS = [  # (model, file name, content, query, status, words the message must hold)
    ("image", "notes.png", b"these are words, not pixels", "", 422, "notes.png: not a readable image"),
    ("image", "cut.png", truncated_png, "", 422, "cut.png: not a readable image (image file is truncated)"),
    ("image", "empty.png", b"", "", 400, "empty.png: empty upload"),
    ("image", "huge.png", b"\0" * 1_200_000, "", 413, "limit of 1 MB (--max_upload_mb)"),
    ("image", "just_over.png", b"\0" * 1_000_001, "", 413, "just_over.png: 1.0 MB, over this server's limit"),
    ("image", "sun.fits", solar_fits(), "", 415, "sun.fits: this model reads image files"),
    ("image", "tiny.png", png_bytes(np.zeros((8, 8, 3), np.uint8)), "", 422, "tiny.png: 8x8 is less than half"),
    ("image", "a.png", png_bytes(np.zeros((40, 40, 3), np.uint8)), "?format=gif", 422, "format: Input should be"),
    ("fits", "table.fits", fits_without_image(), "", 422, "table.fits: no HDU holds an image"),
    ("fits", "cube.fits", two_channel_fits(), "", 422, "cube.fits: 2 channel(s), the model asks for 1"),
    ("fits", "cut.fits", solar_fits()[:4000], "", 422, "cut.fits: not a readable FITS file"),
    ("fits", "data.npy", b"\x93NUMPY", "", 415, "data.npy: this model reads fits files"),
]


@pytest.mark.parametrize("kind,name,content,query,status,message", BAD_UPLOADS,
                         ids=[case[1] + case[3] for case in BAD_UPLOADS])
def test_bad_uploads_get_4xx_with_one_line_naming_the_problem(served, image_client, fits_client, kind, name,
                                                              content, query, status, message):
    client = image_client if kind == "image" else fits_client
    response = upload(client, name, content(served) if callable(content) else content, query)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert message in detail and "\n" not in detail and "p2p_serve_" not in detail, detail
    assert client.get("/health").status_code == 200


def test_missing_or_misnamed_field_is_a_4xx_naming_the_field(image_client):
    for response in (image_client.post("/translate"), image_client.post("/translate", data={"image": "x"}),
                     image_client.post("/translate", files={"picture": ("a.png", b"x")})):
        assert response.status_code == 422
        assert response.json()["detail"].startswith("missing form field 'file'")
    response = image_client.post("/translate", data={"file": "not a file"})
    assert response.status_code == 422 and "is not a file upload" in response.json()["detail"]


def test_a_checkpoint_serves_as_its_mindir_does(served):
    client = make_client(served, "image", ["--ckpt", served["models"]["image"][1]])
    name, content = served["inputs"]["image"][4]
    response = upload(client, name, content)
    assert response.status_code == 200
    assert client.get("/model").json()["serving"]["kind"] == "checkpoint"
    difference = np.abs(np.asarray(Image.open(io.BytesIO(response.content)), np.int16)
                        - predicted_pixels(served, name).astype(np.int16))
    assert difference.max() <= 1  # the checkpoint and its MINDIR differ below 1e-5, rounding may not


def write_file(path, content):
    with open(path, "wb") as handle:
        handle.write(content)
    return path


@pytest.mark.parametrize("case,message", [
    ("no card", "generator.mindir.json is missing; export.py writes it beside the model"),
    ("not a MINDIR", "not a loadable MINDIR"),
    ("not a checkpoint", "not a readable MindSpore checkpoint"),
    ("port in use", "cannot listen there (Address already in use)"),
])
def test_what_cannot_be_served_stops_serve_py_with_one_line(served, tmp_path, case, message):
    mindir = str(tmp_path / "generator.mindir")
    port = free_port()
    if case == "port in use":
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        flags = ["--mindir", served["models"]["image"][0]]
    elif case == "no card":
        shutil.copy(served["models"]["image"][0], mindir)
        flags = ["--mindir", mindir]
    elif case == "not a MINDIR":
        write_file(mindir, b"not a graph")
        copy_card_claiming(served["models"]["image"][0] + ".json", mindir)
        flags = ["--mindir", mindir]
    else:
        flags = ["--ckpt", write_file(str(tmp_path / "G.ckpt"), b"not weights")]
    result = run_entry("serve.py", [*flags, "--port", port], timeout=300)
    if case == "port in use":
        busy.close()
    assert result.returncode == 2, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]
    assert "Traceback" not in result.stderr


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Server:
    """A real server started by `bash scripts/run_serve.sh MINDIR PORT flags...` in its own
    process group; stopped by that group's id."""

    def __init__(self, mindir, flags, log_path, workers=1, env=None):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = open(log_path, "w")
        self.process = subprocess.Popen(["bash", os.path.join(REPO, "scripts", "run_serve.sh"), mindir, str(self.port),
                                         *flags, "--workers", str(workers)], cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                                        env={**os.environ, "PYTHON": sys.executable, **(env or {})},
                                        start_new_session=True)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and self.process.poll() is None:
            if self.healthy() and open(log_path).read().count("Application startup complete") == workers:
                return
            time.sleep(0.5)
        self.stop()
        raise AssertionError(f"the server did not come up: {open(log_path).read()[-2000:]}")

    def healthy(self):
        try:
            return httpx.get(self.url + "/health", timeout=2, trust_env=False).status_code == 200
        except httpx.HTTPError:
            return False

    def stop(self):
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self.log.close()


def local_client(server):
    """A client of the server on 127.0.0.1 that ignores any proxy settings of the environment."""
    return httpx.Client(base_url=server.url, timeout=300, trust_env=False)


@pytest.fixture(scope="module")
def server(served, tmp_path_factory):
    running = Server(served["models"]["image"][0], SERVE_FLAGS, tmp_path_factory.mktemp("server") / "server.log")
    yield running
    running.stop()


def test_concurrent_requests_are_each_answered_with_their_own_translation(served, server):
    """40 distinct inputs, 8 at a time, against uvicorn on 127.0.0.1: each answer equals
    predict.py's output for that input; /health answers while they run."""
    health = []

    def translate(item):
        name, content = item
        with local_client(server) as client:
            response = client.post("/translate", files={"file": (name, content)})
            health.append(client.get("/health").status_code)
        return name, response

    with ThreadPoolExecutor(CONCURRENCY) as pool:
        answers = list(pool.map(translate, served["inputs"]["image"]))
    assert len(answers) == REQUESTS
    for name, response in answers:
        check_equals_predict(served, name, response)
    assert health == [200] * REQUESTS


def test_the_real_server_refuses_bad_uploads_and_stays_up(served, server):
    with local_client(server) as client:
        response = client.post("/translate", files={"file": ("cut.png", truncated_png(served))})
        assert response.status_code == 422 and "image file is truncated" in response.json()["detail"]
        response = client.post("/translate", files={"file": ("huge.png", b"\0" * 3_000_000)})
        assert response.status_code == 413 and "--max_upload_mb" in response.json()["detail"]

        def chunks():  # no Content-Length: the limit is counted as the body arrives
            yield b'--b\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n\r\n'
            for _ in range(40):
                yield b"\0" * 65536
            yield b"\r\n--b--\r\n"
        response = client.post("/translate", content=chunks(),
                               headers={"content-type": "multipart/form-data; boundary=b"})
        assert response.status_code == 413
        name, content = served["inputs"]["image"][5]
        check_equals_predict(served, name, client.post("/translate", files={"file": (name, content)}))
    assert server.process.poll() is None


def test_several_worker_processes_serve_the_same_model(served, tmp_path):
    running = Server(served["models"]["image"][0], SERVE_FLAGS, tmp_path / "server.log", workers=2)
    try:
        name, content = served["inputs"]["image"][6]
        with local_client(running) as client:
            check_equals_predict(served, name, client.post("/translate", files={"file": (name, content)}))
    finally:
        running.stop()
    assert open(tmp_path / "server.log").read().count("Started server process") == 2  # one per worker


def chrome(network_log=False):
    """A headless Chromium driven by selenium, or a skip saying what is missing; `network_log`:
    with Chrome's performance log (every request the page makes)."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -r requirements.txt)")
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not browser or not driver:
        pytest.skip("no headless browser: install Debian's chromium and chromium-driver "
                    "(apt-get install -y chromium chromium-driver, as .ci/run does)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,900"):
        options.add_argument(argument)
    if network_log:
        options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    return webdriver.Chrome(service=Service(driver), options=options)


def test_the_page_translates_an_upload_in_a_real_browser(served, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser = chrome()
    try:
        browser.get(server.url + "/")
        WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "format").get_attribute("value") == "png")
        assert "pix2pix" in browser.find_element(By.ID, "card").text
        name, content = served["inputs"]["image"][0]  # 90x100: translated in tiles
        path = write_file(str(tmp_path / name), content)
        browser.find_element(By.ID, "file").send_keys(path)
        output = browser.find_element(By.ID, "output-view")
        WebDriverWait(browser, 120).until(lambda b: output.get_attribute("data-state") in ("done", "error"))
        assert output.get_attribute("data-state") == "done", browser.find_element(By.ID, "error").text
        WebDriverWait(browser, 30).until(lambda b: output.get_attribute("data-loaded") == "true")
        size = browser.execute_script("const i = arguments[0]; return [i.naturalWidth, i.naturalHeight];", output)
        assert size == [90, 100]
        assert browser.find_element(By.ID, "download").get_attribute("download") == name
        browser.save_screenshot(str(tmp_path / "page.png"))
        assert Image.open(tmp_path / "page.png").size[0] > 0
        # a file that is no image: a readable message on the page, nothing translated
        path = write_file(str(tmp_path / "notes.png"), b"just words")
        browser.find_element(By.ID, "file").send_keys(path)
        WebDriverWait(browser, 60).until(lambda b: output.get_attribute("data-state") == "error")
        assert "notes.png: not a readable image" in browser.find_element(By.ID, "error").text
    finally:
        browser.quit()


# ---- a server you can leave running: limits, backpressure, a key, metrics, offline docs, shutdown

API_KEY = "a key for colleagues"
KEYED = {"X-API-Key": API_KEY}
# 1400 x 1400 in 64-px tiles: ~600 graph calls, several seconds on this machine (the time
# budget's and the shutdown's "long translation").
LONG_SIDE = 1400
GUARD_FLAGS = ["--tile_size", "64", "--max_upload_mb", "20", "--max_pixels", "2000000", "--request_timeout", "2",
               "--max_queue", "1"]


def blank_png(width, height):
    return png_bytes(np.zeros((height, width, 3), np.uint8))


@pytest.fixture(scope="module")
def guarded(served, tmp_path_factory):
    """A real server with small limits whose key comes from the environment, not its command line."""
    running = Server(served["models"]["image"][0], GUARD_FLAGS, tmp_path_factory.mktemp("guarded") / "server.log",
                     env={"PIX2PIX_API_KEY": API_KEY})
    yield running
    running.stop()


def metric_values(client):
    """{(name, labels as a sorted tuple): value} of the server's /metrics."""
    from prometheus_client.parser import text_string_to_metric_families
    response = client.get("/metrics", headers=KEYED)
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    return {(sample.name, tuple(sorted(sample.labels.items()))): sample.value
            for family in text_string_to_metric_families(response.text) for sample in family.samples}


def test_headers_declare_the_size_before_any_decoding(tmp_path):
    from numpy.lib import format as npy_format
    from src.dataset.io import declared_shape
    header = fits.Header([("SIMPLE", True), ("BITPIX", -32), ("NAXIS", 2), ("NAXIS1", 12000), ("NAXIS2", 9000)])
    npy = io.BytesIO()
    npy_format.write_array_header_1_0(npy, {"descr": "<f4", "fortran_order": False, "shape": (1, 9000, 12000)})
    tif = io.BytesIO()
    import tifffile
    tifffile.imwrite(tif, np.zeros((900, 1200, 3), np.uint8), compression="zlib")
    # headers only (no pixel data follows the FITS and npy headers): decoding them would fail
    for content, data_format, shape in ((png_bytes(np.zeros((900, 1200), np.uint8)), "png", (900, 1200)),
                                        (header.tostring().encode(), "fits", (9000, 12000)),
                                        (npy.getvalue(), "npy", (1, 9000, 12000)), (tif.getvalue(), "tif", (900, 1200, 3))):
        assert declared_shape(io.BytesIO(content), data_format) == shape, data_format
        path = write_file(str(tmp_path / f"upload.{data_format}"), content)
        assert declared_shape(path, data_format) == shape, data_format
    assert declared_shape(io.BytesIO(b"not an image"), "png") is None  # the reader says why


def test_without_the_key_only_health_and_the_docs_answer(served, guarded):
    with local_client(guarded) as client:
        assert client.get("/health").status_code == 200
        assert client.get("/").status_code == 200 and client.get("/docs").status_code == 200
        for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}, {"Authorization": API_KEY}):
            for method, path in (("get", "/model"), ("get", "/metrics"), ("post", "/translate"), ("post", "/preview")):
                response = client.request(method, path, headers=headers, files={"file": ("a.png", b"x")}
                                          if method == "post" else None)
                assert response.status_code == 401, (path, headers)
                assert "API key" in response.json()["detail"] and response.headers["www-authenticate"] == "Bearer"
        card = client.get("/model", headers={"Authorization": f"Bearer {API_KEY}"}).json()
        assert card == client.get("/model", headers=KEYED).json()
        # file names only: the server's folders are not shown to its clients
        assert card["checkpoint"] == "Generator_1.ckpt" and card["serving"]["file"] == "generator.mindir"
        assert str(served["root"]) not in json.dumps(card) and card["serving"]["api_key"] is True
        name, content = served["inputs"]["image"][4]
        check_equals_predict(served, name, client.post("/translate", headers=KEYED, files={"file": (name, content)}))
    # the key stayed out of the process list
    assert API_KEY not in open(f"/proc/{guarded.process.pid}/cmdline").read().replace("\0", " ")


def test_the_card_shows_paths_only_when_the_operator_asks(served):
    client = make_client(served, "image", ["--mindir", served["models"]["image"][0], "--show_paths", "True"])
    card = client.get("/model").json()
    assert card["serving"]["file"] == served["models"]["image"][0] and os.path.isabs(card["checkpoint"])


def test_a_file_declaring_too_many_pixels_is_refused_from_its_header(guarded):
    # 12000 x 12000: 140 KB of PNG that would take ~20 GB to translate
    content = png_bytes(np.zeros((12000, 12000), np.uint8))
    with local_client(guarded) as client:
        before = metric_values(client)
        started = time.monotonic()
        response = client.post("/translate", headers=KEYED, files={"file": ("bomb.png", content)})
        assert time.monotonic() - started < 5  # refused, not decoded
        assert response.status_code == 413
        assert response.json() == {"detail": "bomb.png: 12000x12000 pixels (144,000,000 pixels), over this "
                                             "server's limit of 2,000,000 pixels (--max_pixels)"}
        reason = ("pix2pix_rejected_uploads_total", (("reason", "too_many_pixels"),))
        assert metric_values(client)[reason] == before.get(reason, 0) + 1
    assert guarded.process.poll() is None


def test_a_translation_over_its_time_budget_is_answered_503_and_stopped(served, guarded):
    with local_client(guarded) as client:
        started = time.monotonic()
        response = client.post("/translate", headers=KEYED, files={"file": ("long.png", blank_png(LONG_SIDE, LONG_SIDE))})
        elapsed = time.monotonic() - started
        assert response.status_code == 503 and "--request_timeout" in response.json()["detail"]
        assert response.headers["retry-after"].isdigit()
        assert 2 <= elapsed < 2 + 10, elapsed  # stopped at the next tile, not after the whole image
        values = metric_values(client)
        assert values[("pix2pix_rejected_uploads_total", (("reason", "timeout"),))] >= 1
        assert values[("pix2pix_translations_in_flight", ())] == 0  # its work was abandoned
        name, content = served["inputs"]["image"][5]
        check_equals_predict(served, name, client.post("/translate", headers=KEYED, files={"file": (name, content)}))


def test_beyond_the_queue_requests_are_refused_at_once_with_retry_after(guarded):
    with local_client(guarded) as client:
        serving = client.get("/model", headers=KEYED).json()["serving"]
    capacity = serving["parallel_translations"] + serving["max_queue"]
    extra = 3

    def send(_):
        with local_client(guarded) as client:
            started = time.monotonic()
            response = client.post("/translate", headers=KEYED,
                                   files={"file": ("long.png", blank_png(LONG_SIDE, LONG_SIDE))})
            return response, time.monotonic() - started

    with ThreadPoolExecutor(capacity + extra) as pool:
        answers = list(pool.map(send, range(capacity + extra)))
    assert len(answers) == capacity + extra  # every request answered
    refused = [(response, elapsed) for response, elapsed in answers if "--max_queue" in response.text]
    assert len(refused) == extra, [response.text for response, _ in answers]
    for response, elapsed in refused:
        assert response.status_code == 503 and int(response.headers["retry-after"]) >= 1
        assert elapsed < 1.5, elapsed  # at once, not after waiting
    admitted = [response for response, _ in answers if "--max_queue" not in response.text]
    assert all(response.status_code == 503 and "--request_timeout" in response.text for response in admitted)
    with local_client(guarded) as client:
        values = metric_values(client)
    assert values[("pix2pix_rejected_uploads_total", (("reason", "queue_full"),))] >= extra
    assert values[("pix2pix_translations_waiting", ())] == 0


def test_metrics_count_requests_by_endpoint_and_status_with_their_latency(served, guarded):
    with local_client(guarded) as client:
        before = metric_values(client)
        name, content = served["inputs"]["image"][6]
        assert client.post("/translate", headers=KEYED, files={"file": (name, content)}).status_code == 200
        assert client.post("/translate", files={"file": (name, content)}).status_code == 401
        assert client.post("/translate", headers=KEYED, files={"file": ("e.png", b"")}).status_code == 400
        after = metric_values(client)

    def grew(name, **labels):
        key = (name, tuple(sorted(labels.items())))
        return after[key] - before.get(key, 0)
    assert grew("pix2pix_http_requests_total", endpoint="/translate", status="200") == 1
    assert grew("pix2pix_http_requests_total", endpoint="/translate", status="401") == 1
    assert grew("pix2pix_http_requests_total", endpoint="/translate", status="400") == 1
    assert grew("pix2pix_http_requests_total", endpoint="/metrics", status="200") == 1
    assert grew("pix2pix_http_request_duration_seconds_count", endpoint="/translate") == 3
    assert grew("pix2pix_rejected_uploads_total", reason="unauthorized") == 1
    assert grew("pix2pix_rejected_uploads_total", reason="empty") == 1
    assert after[("pix2pix_translations_in_flight", ())] == 0


def network_requests(browser):
    """URLs of every request the browser made (Chrome's performance log)."""
    entries = (json.loads(entry["message"])["message"] for entry in browser.get_log("performance"))
    return [entry["params"]["request"]["url"] for entry in entries if entry["method"] == "Network.requestWillBeSent"]


def test_the_api_docs_render_with_nothing_fetched_from_elsewhere(guarded):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser = chrome(network_log=True)
    try:
        browser.get(guarded.url + "/docs")
        WebDriverWait(browser, 60).until(lambda b: b.find_elements(By.CSS_SELECTOR, "[data-path='/translate']"))
        assert not browser.find_elements(By.CSS_SELECTOR, ".errors-wrapper")  # the document was understood
        assert browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .authorize")  # the key can be given there
        urls = network_requests(browser)
        assert any(url.endswith("/static/swagger/swagger-ui-bundle.js") for url in urls)
        assert all(url.startswith(guarded.url + "/") or url.startswith("data:") for url in urls), urls
    finally:
        browser.quit()


def test_the_page_asks_for_the_key_once_a_session(served, guarded, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
    browser = chrome()
    try:
        browser.get(guarded.url + "/")
        WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "key-form").is_displayed())
        assert "asks for an API key" in browser.find_element(By.ID, "error").text
        browser.find_element(By.ID, "api-key").send_keys(API_KEY + "\n")
        WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "format").get_attribute("value") == "png")
        browser.refresh()  # the same session: the key is kept, not asked again
        WebDriverWait(browser, 60).until(lambda b: b.find_element(By.ID, "format").get_attribute("value") == "png")
        assert not browser.find_element(By.ID, "key-form").is_displayed()
        assert "generator.mindir" in browser.find_element(By.ID, "card").text
        assert str(served["root"]) not in browser.find_element(By.ID, "card").text
        name, content = served["inputs"]["image"][7]
        browser.find_element(By.ID, "file").send_keys(write_file(str(tmp_path / name), content))
        output = browser.find_element(By.ID, "output-view")
        WebDriverWait(browser, 120).until(lambda b: output.get_attribute("data-state") in ("done", "error"))
        assert output.get_attribute("data-state") == "done", browser.find_element(By.ID, "error").text
    finally:
        browser.quit()


def test_sigterm_lets_short_work_finish_answers_long_work_503_and_exits_0(served, tmp_path):
    running = Server(served["models"]["image"][0], ["--tile_size", "64", "--max_upload_mb", "20",
                                                    "--shutdown_timeout", "2", "--request_timeout", "600"],
                     tmp_path / "server.log")
    try:
        with ThreadPoolExecutor(2) as pool:
            def send(content):
                with local_client(running) as client:
                    response = client.post("/translate", files={"file": ("x.png", content)})
                    return response, time.monotonic()
            long = pool.submit(send, blank_png(LONG_SIDE, LONG_SIDE))
            with local_client(running) as client:
                deadline = time.monotonic() + 60
                while metric_values(client)[("pix2pix_translations_in_flight", ())] < 1:
                    assert time.monotonic() < deadline, "the long translation did not start"
                    time.sleep(0.1)
            short = pool.submit(send, blank_png(200, 200))
            time.sleep(0.2)
            stopped = time.monotonic()
            os.killpg(running.process.pid, signal.SIGTERM)
            time.sleep(0.5)
            with pytest.raises(httpx.ConnectError):  # no longer accepting
                httpx.get(running.url + "/health", timeout=5, trust_env=False)
            (long_answer, long_at), (short_answer, _) = long.result(timeout=60), short.result(timeout=60)
        assert short_answer.status_code == 200
        assert long_answer.status_code == 503 and "--shutdown_timeout" in long_answer.json()["detail"]
        assert 2 <= long_at - stopped < 2 + 10, long_at - stopped
        assert running.process.wait(timeout=30) == 0
    finally:
        running.stop()
    assert "Traceback" not in open(tmp_path / "server.log").read()
