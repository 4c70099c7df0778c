"""Speed and memory of training, data loading and exported inference on this machine.

    python bench/run.py                      # full bench, writes bench/RESULTS.md (~20 minutes on 2 cores)
    python bench/run.py --steps 3 --sizes 32 --pipeline_images 8 --out /tmp/bench.md   # smoke run

Each measurement runs in its own process so that its peak memory is its own.
"""
import argparse
import contextlib
import datetime
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from src.utils import runtime_env  # noqa: E402  (importing src sets oneDNN's ISA before MindSpore loads)

# The targets for a 2-core machine of this project's kind (batch 1, ngf = ndf = 64).
TARGETS = {"step_256_s": 0.70, "step_64_s": 0.06, "compile_s": 5.0, "peak_rss_256_mb": 2200}
# The oneDNN setting without this project's cap: on AVX-512 CPUs, the reference-kernel fallback.
UNCAPPED = {runtime_env.ISA_VARIABLE: "ALL"}


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def timings(times):
    times = np.asarray(times)
    return {"median_s": float(np.median(times)), "p10_s": float(np.percentile(times, 10)),
            "p90_s": float(np.percentile(times, 90)), "n": len(times)}


def graph_context():
    import mindspore as ms
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_device("CPU")
    ms.set_seed(1)


# The variants of the pix2pix step timed against each other (train.py flags on top of the defaults).
STEP_VARIANTS = {
    "default": [],
    "plain (transposed decoder, no weight average)": ["--upsample", "transpose", "--ema_decay", "0"],
    "resize decoder, no weight average": ["--upsample", "resize", "--ema_decay", "0"],
    "transposed decoder, weight average (default --ema_every)": ["--upsample", "transpose"],
    "transposed decoder, weight average every step": ["--upsample", "transpose", "--ema_every", "1"],
}
DEFAULT, PLAIN = "default", "plain (transposed decoder, no weight average)"


def model_cfg(size, model="pix2pix", flags=()):
    from src.config import parse_args
    return parse_args("train", ["--train_data_dir", "unused", "--crop_size", str(size),
                                "--load_size", str(size), "--model", model, *flags])


class TimedStep:
    """A training step of full-size networks (ngf = ndf = 64), batch 1, on fixed random data, as
    the trainer runs it: the compiled step, then the weight average when it is due."""

    def __init__(self, size, model="pix2pix", flags=(), total_steps=100000):
        from mindspore import Tensor
        from src.models import registry
        from src.utils.lr import learning_rates
        self.cfg = cfg = model_cfg(size, model, flags)
        netG, netD = registry.build_generator(cfg), registry.build_discriminator(cfg)
        self.step = registry.build_train_step(cfg, netG, netD,
                                              learning_rates("linear", 2e-4, total_steps, 1, 1, 2))
        self.step.set_train(True)
        rng = np.random.default_rng(0)
        self.inputs = (Tensor(rng.uniform(-1, 1, (1, cfg.input_nc, size, size)).astype(np.float32)),
                       Tensor(rng.uniform(-1, 1, (1, cfg.output_nc, size, size)).astype(np.float32)),
                       Tensor(rng.random((1, max(1, netG.dropout_noise_size)), dtype=np.float32)))
        self.done = 0

    def compile(self):
        started = time.perf_counter()
        self.step.compile(*self.inputs)
        return time.perf_counter() - started

    def __call__(self):
        """One step; returns its outputs (the losses)."""
        outputs = self.step(*self.inputs)
        outputs[0].asnumpy()
        self.done += 1
        self.step.average_weights(self.done)
        return outputs


def measure_train_step(size, steps, model):
    """Compile time, then `steps` timed steps of the default configuration."""
    graph_context()
    step = TimedStep(size, model, total_steps=steps + 1)
    compile_s = step.compile()
    started = time.perf_counter()
    step()  # allocates the graph's memory: slower than the rest
    first_step_s = time.perf_counter() - started
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return {"model": model, "size": size, "compile_s": compile_s, "first_step_s": first_step_s, **timings(times),
            "peak_rss_mb": peak_rss_mb()}


def measure_step_variants(size, steps, trials):
    """Every STEP_VARIANTS step in one process, alternated trial by trial (a change in the
    machine's load then reaches all alike): the mean s/step of each trial, per variant. A trial
    of a variant spans `steps` steps, a multiple of --ema_every, so it holds its weight averages."""
    graph_context()
    variants = {name: TimedStep(size, flags=flags) for name, flags in STEP_VARIANTS.items()}
    for step in variants.values():
        step.compile()
        for _ in range(2):  # memory allocation and warm-up
            step()
    per_trial = {name: [] for name in variants}
    for _ in range(trials):
        for name, step in variants.items():
            started = time.perf_counter()
            for _ in range(steps):
                step()
            per_trial[name].append((time.perf_counter() - started) / steps)
    return {"size": size, "steps": steps, "trials": trials, "per_trial_s": per_trial}


def measure_pipeline(images, workers):
    """AB JPEGs of 512x256 through the training pipeline to 256x256 crops: images per second."""
    from PIL import Image
    from src.dataset.pairs import find_pairs
    from src.dataset.pipeline import train_dataset
    folder = tempfile.mkdtemp(prefix="bench_ab_")
    rng = np.random.default_rng(0)
    for index in range(images):
        Image.fromarray((rng.random((256, 512, 3)) * 255).astype(np.uint8)).save(
            os.path.join(folder, f"{index}.jpg"), quality=90)
    cfg = model_cfg(256)
    cfg.num_parallel_workers, cfg.epoch_num = workers, 1
    dataset = train_dataset(find_pairs(folder, "--train_data_dir", cfg), cfg, noise_size=512 * 84)
    started = time.perf_counter()
    count = sum(1 for _ in dataset.create_tuple_iterator(num_epochs=1, output_numpy=True))
    elapsed = time.perf_counter() - started
    return {"workers": workers, "images": count, "images_per_s": count / elapsed}


def measure_mindir(size, batch, repeats):
    """Latency of the exported generator (inference mode) loaded back as a GraphCell."""
    graph_context()
    import mindspore as ms
    from mindspore import Tensor, nn
    from src.models import registry
    cfg = model_cfg(size)
    netG = registry.build_generator(cfg)
    netG.set_train(False)
    x = Tensor(np.random.default_rng(0).uniform(-1, 1, (batch, 3, size, size)).astype(np.float32))
    path = os.path.join(tempfile.mkdtemp(prefix="bench_mindir_"), "generator")
    ms.export(netG, x, file_name=path, file_format="MINDIR")
    graph = nn.GraphCell(ms.load(path + ".mindir"))
    graph(x).asnumpy()
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        graph(x).asnumpy()
        times.append(time.perf_counter() - started)
    result = timings(times)
    return {"size": size, "batch": batch, **result, "per_image_ms": 1000 * result["median_s"] / batch}


def measure_tiled(image_size, tile_size, crop_size):
    """A one-channel FITS of image_size² through eval's path (read, normalise, translate in
    tiles with the full-size U-Net trained at crop_size, blend, write FITS + preview): wall time
    including compilation, and the process's peak RSS."""
    graph_context()
    from astropy.io import fits
    from src.config import parse_args
    from src.dataset.pairs import find_inputs
    from src.evaluate import evaluate
    from src.inference import layout_for, make_tiling, network_forward, predictions
    from src.models import registry
    folder = tempfile.mkdtemp(prefix="bench_tiled_")
    os.makedirs(os.path.join(folder, "in"))
    yy, xx = np.mgrid[0:image_size, 0:image_size] / image_size
    fits.PrimaryHDU((np.sin(20 * xx) * np.cos(13 * yy)).astype(np.float32)).writeto(
        os.path.join(folder, "in", "disk.fits"))
    cfg = parse_args("eval", ["--val_data_dir", folder, "--ckpt", "unused", "--crop_size", str(crop_size),
                              "--input_nc", "1", "--output_nc", "1", "--data_format_input", "fits",
                              "--data_format_target", "fits", "--tile_size", str(tile_size)])
    netG = registry.build_generator(cfg)
    netG.set_train(False)
    tiling = make_tiling(registry.size_unit(cfg), tile_size)
    started = time.perf_counter()
    inputs = find_inputs(os.path.join(folder, "in"), "--input_dir", cfg)
    items = predictions(inputs, cfg, network_forward(netG), 1, tiling)
    evaluate(items, cfg, os.path.join(folder, "out"), os.path.join(folder, "report"), progress=lambda line: None,
             show_bar=False)
    return {"image_size": image_size, "tile_size": tile_size, "crop_size": crop_size,
            "tiles": layout_for(image_size, image_size, tiling).count, "seconds": time.perf_counter() - started,
            "peak_rss_mb": peak_rss_mb()}


def exported_full_size(size, folder):
    """A full-size generator (ngf = 64) exported as a MINDIR of any input size, with its card."""
    from src import checkpoint
    from src.config import parse_args
    from src.exporter import export_generator
    from src.models import registry
    from src.trained_generator import recorded_flags, resolve_checkpoint_flags
    cfg = model_cfg(size)
    ckpt = os.path.join(folder, "Generator.ckpt")
    checkpoint.save_network(registry.build_generator(cfg), ckpt, {"model": cfg.model, **registry.arch(cfg, "generator")},
                            recorded_flags(cfg))
    return export_generator(resolve_checkpoint_flags(parse_args(
        "export", ["--ckpt", ckpt, "--file_name", os.path.join(folder, "generator")])))


@contextlib.contextmanager
def running_server(flag, path, log_path, warm_up, extra=()):
    """serve.py with `flag path` (and the flags `extra`) on a free 127.0.0.1 port, once /health
    answers and after one untimed POST of `warm_up` ((name, bytes): compilation); yields (its base
    URL, the process)."""
    import socket
    import httpx
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with open(log_path, "w") as log:
        server = subprocess.Popen([sys.executable, os.path.join(REPO, "serve.py"), flag, path, "--port", str(port),
                                   *extra],
                                  cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
    try:
        with httpx.Client(base_url=url, timeout=600, trust_env=False) as client:
            while server.poll() is None:
                try:
                    client.get("/health")
                    break
                except httpx.HTTPError:
                    time.sleep(0.5)
            client.post("/translate", files={"file": warm_up})
        yield url, server
    finally:
        server.terminate()
        server.wait(timeout=60)


def measure_serve(size, requests_per_client):
    """serve.py on 127.0.0.1 with the full-size generator's MINDIR: a size x size PNG POSTed to
    /translate by 1 and 4 concurrent clients, each sending `requests_per_client` in a row;
    requests/s and latency percentiles. The first request (compilation) is not timed."""
    from concurrent.futures import ThreadPoolExecutor
    import httpx
    from PIL import Image
    graph_context()
    folder = tempfile.mkdtemp(prefix="bench_serve_")
    mindir = exported_full_size(size, folder)
    coarse = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
    png = os.path.join(folder, "input.png")
    Image.fromarray(coarse).resize((size, size), Image.BILINEAR).save(png)
    content = open(png, "rb").read()
    with running_server("--mindir", mindir, os.path.join(folder, "server.log"), ("input.png", content)) as (url, _):

        def one_client(_):
            latencies = []
            with httpx.Client(base_url=url, timeout=600, trust_env=False) as client:
                for _ in range(requests_per_client):
                    started = time.perf_counter()
                    client.post("/translate", files={"file": ("input.png", content)}).raise_for_status()
                    latencies.append(time.perf_counter() - started)
            return latencies

        rows = []
        for clients in (1, 4):
            started = time.perf_counter()
            with ThreadPoolExecutor(clients) as pool:
                latencies = [value for values in pool.map(one_client, range(clients)) for value in values]
            elapsed = time.perf_counter() - started
            rows.append({"clients": clients, "requests": len(latencies), "requests_per_s": len(latencies) / elapsed,
                         "p50_ms": 1000 * float(np.percentile(latencies, 50)),
                         "p95_ms": 1000 * float(np.percentile(latencies, 95))})
    return {"size": size, "rows": rows}


def measure_tensorboard(size, blocks, steps_per_block):
    """The training step (full-size networks, batch 1) alone and followed by the trainer's TensorBoard
    point (every loss, both learning rates, seconds per step: --print_interval 1, the worst case),
    in alternating blocks of `steps_per_block` steps; also the logging calls timed alone, and one
    epoch's sample grid (input | generated | target at `size`) written as an image."""
    graph_context()
    from src.models import registry
    from src.utils.tensorboard_log import TrainingBoard
    step = TimedStep(size, total_steps=2 * blocks * steps_per_block + 1)
    step()  # compiles and allocates
    names = registry.loss_names(step.cfg)
    rng = np.random.default_rng(0)
    board = TrainingBoard(tempfile.mkdtemp(prefix="bench_tensorboard_"), 0)
    grid = (rng.random((size, 3 * size + 8, 3)) * 255).astype(np.uint8)
    times, logging, images, global_step = {False: [], True: []}, [], [], 0
    for block in range(2 * blocks):
        with_board = block % 2 == 1
        for _ in range(steps_per_block):
            started = time.perf_counter()
            values = [float(v.asnumpy()) for v in step()]
            global_step += 1
            if with_board:
                logged = time.perf_counter()
                board.progress(global_step, dict(zip(names, values)), {"G": 2e-4, "D": 2e-4}, logged - started)
                logging.append(time.perf_counter() - logged)
            times[with_board].append(time.perf_counter() - started)
        if with_board:
            started = time.perf_counter()
            board.samples(global_step, grid)
            images.append(time.perf_counter() - started)
    board.close()
    without, with_ = (float(np.median(times[flag])) for flag in (False, True))
    return {"size": size, "blocks": blocks, "steps_per_block": steps_per_block,
            "step_without_s": without, "step_with_s": with_, "ratio": with_ / without,
            "point_us": 1e6 * float(np.mean(logging)), "image_ms": 1e3 * float(np.median(images))}


def tensorboard_markdown(results):
    return ["## TensorBoard logging (`--measure tensorboard SIZE BLOCKS STEPS`)", "",
            "The training step (full-size networks, batch 1) alone and followed by the trainer's TensorBoard "
            "point at every step (every loss, both learning rates, seconds per step: `--print_interval 1`, "
            "the worst case), in alternating blocks of steps in one process.", "",
            "| size | blocks x steps, each way | step alone, median s | step + point, median s | ratio "
            "| one point, ms (mean) | one sample grid image, ms |", "| --- | --- | --- | --- | --- | --- | --- |"] + [
        f"| {r['size']} | {r['blocks']} x {r['steps_per_block']} | {r['step_without_s']:.4f} | {r['step_with_s']:.4f} "
        f"| {r['ratio']:.3f} | {r['point_us'] / 1000:.2f} | {r['image_ms']:.1f} |" for r in results]


def load_uploads(requests, distinct, rng):
    """`requests` (kind, name, bytes) in a shuffled order: good PNGs (`distinct` different ones,
    64-128 px), and one in ten each of an upload declaring 3000x3000 pixels (over the default
    --max_pixels) and a malformed one (a truncated PNG, or words named .png)."""
    import io
    from PIL import Image

    def png(array):
        buffer = io.BytesIO()
        Image.fromarray(array).save(buffer, "PNG")
        return buffer.getvalue()
    good = []
    for index in range(distinct):
        height, width = rng.integers(64, 129, 2)
        coarse = (rng.random((4, 4, 3)) * 255).astype(np.uint8)
        good.append((f"good_{index:02d}.png", png(np.asarray(Image.fromarray(coarse).resize((int(width), int(height)))))))
    oversized = png(np.zeros((3000, 3000), np.uint8))
    uploads = []
    for index in range(requests):
        if index % 10 == 0:
            uploads.append(("oversized", "bomb.png", oversized))
        elif index % 10 == 5:
            uploads.append(("malformed", "cut.png", good[index % distinct][1][:200]) if index % 20 == 5
                           else ("malformed", "notes.png", b"words, not pixels"))
        else:
            uploads.append(("good",) + good[index % distinct])
    order = rng.permutation(len(uploads))
    return [uploads[i] for i in order], dict(good)


def measure_load(requests, clients, deadline_s):
    """serve.py (default limits) on 127.0.0.1 with a full-width generator (crop 64) as a MINDIR under
    `clients` concurrent clients sending `requests` uploads in all (load_uploads), stopping
    after `deadline_s`: requests/s, latency percentiles, the server's peak memory, answers by
    status; every good answer is compared with the same upload translated in this process."""
    from collections import Counter
    from concurrent.futures import ThreadPoolExecutor
    import httpx
    from src.config import parse_args
    from src.serve.model import load_served_model
    graph_context()
    folder = tempfile.mkdtemp(prefix="bench_load_")
    mindir = exported_full_size(64, folder)  # ngf = 64 at crop 64: size unit 64, the uploads' scale
    uploads, good = load_uploads(requests, 20, np.random.default_rng(0))
    model = load_served_model(parse_args("serve", ["--mindir", mindir]))
    expected = {name: model.translate(name, content, "png")[0] for name, content in good.items()}
    with running_server("--mindir", mindir, os.path.join(folder, "server.log"),
                        next(iter(good.items()))) as (url, server):
        started = time.perf_counter()

        def send(upload):
            kind, name, content = upload
            if time.perf_counter() - started > deadline_s:
                return kind, "not sent", None, True
            with httpx.Client(base_url=url, timeout=120, trust_env=False) as client:
                sent = time.perf_counter()
                try:
                    response = client.post("/translate", files={"file": (name, content)})
                except httpx.HTTPError as err:
                    return kind, f"no answer ({type(err).__name__})", None, False
                right = kind != "good" or (response.status_code == 200 and response.content == expected[name])
                return kind, response.status_code, time.perf_counter() - sent, right
        with ThreadPoolExecutor(clients) as pool:
            answers = list(pool.map(send, uploads))
        elapsed = time.perf_counter() - started
        with open(f"/proc/{server.pid}/status") as status:
            peak_mb = next(int(line.split()[1]) for line in status if line.startswith("VmHWM")) / 1024
    latencies = [latency for _, _, latency, _ in answers if latency is not None]
    return {"requests": requests, "clients": clients, "seconds": elapsed, "requests_per_s": len(latencies) / elapsed,
            **{f"p{q}_ms": 1000 * float(np.percentile(latencies, q)) for q in (50, 95, 99)},
            "peak_server_rss_mb": peak_mb, "wrong_translations": sum(not right for kind, _, _, right in answers),
            "by_status": {f"{kind} {status}": count for (kind, status), count in
                          sorted(Counter((kind, str(status)) for kind, status, _, _ in answers).items())}}


def load_markdown(load):
    lines = [f"## Serving under load (serve.py, default limits, U-Net ngf = 64 at crop 64 as a MINDIR, "
             f"{load['clients']} concurrent clients)", "",
             f"{load['requests']} uploads to /translate on 127.0.0.1: good PNGs of 64-128 px (20 different ones), one "
             "in ten declaring 3000x3000 pixels (over the default --max_pixels, refused from the header) and one in "
             "ten malformed. Each good answer was compared with the same upload translated in the bench's own "
             "process.", "",
             "| requests/s | p50 ms | p95 ms | p99 ms | peak server RSS MB | wrong translations | seconds |",
             "| --- | --- | --- | --- | --- | --- | --- |",
             f"| {load['requests_per_s']:.1f} | {load['p50_ms']:.0f} | {load['p95_ms']:.0f} | {load['p99_ms']:.0f} "
             f"| {load['peak_server_rss_mb']:.0f} | {load['wrong_translations']} | {load['seconds']:.1f} |", "",
             "| upload, answer | count |", "| --- | --- |"]
    lines += [f"| {key} | {count} |" for key, count in load["by_status"].items()]
    return lines


def export_both(size, folder, bn_stats, batch):
    """The full-size U-Net (ngf = 64, trained at size) exported as MINDIR and as ONNX, both with
    --bn_stats `bn_stats` and --batch_size `batch`: (MINDIR path, ONNX path)."""
    from src import checkpoint
    from src.config import parse_args
    from src.exporter import export_generator
    from src.models import registry
    from src.trained_generator import recorded_flags, resolve_checkpoint_flags
    cfg = model_cfg(size)
    ckpt = os.path.join(folder, "Generator.ckpt")
    if not os.path.exists(ckpt):
        checkpoint.save_network(registry.build_generator(cfg), ckpt,
                                {"model": cfg.model, **registry.arch(cfg, "generator")}, recorded_flags(cfg))
    return [export_generator(resolve_checkpoint_flags(parse_args("export", [
        "--ckpt", ckpt, "--file_name", os.path.join(folder, f"generator_{bn_stats}_{batch}"), "--file_format", file_format,
        "--bn_stats", bn_stats, "--batch_size", str(batch)]), warn=lambda line: None))
            for file_format in ("MINDIR", "ONNX")]


def served_requests_per_s(flag, path, content, requests):
    """serve.py with `flag path` on 127.0.0.1: requests/s of one client POSTing `content` to
    /translate `requests` times in a row (after one untimed request)."""
    import httpx
    with running_server(flag, path, path + ".serve.log", ("input.png", content)) as (url, _):
        with httpx.Client(base_url=url, timeout=600, trust_env=False) as client:
            started = time.perf_counter()
            for _ in range(requests):
                client.post("/translate", files={"file": ("input.png", content)}).raise_for_status()
            return requests / (time.perf_counter() - started)


def measure_runtimes(size, repeats, requests):
    """The full-size U-Net's MINDIR (MindSpore GraphCell) and ONNX (onnxruntime, CPU) on one
    size x size input: per-image latency at batch 1 (--bn_stats image, the default export) and
    batch 8 (--bn_stats running, which a batched graph needs), the two runtimes alternated call
    by call; then serve.py's requests/s with each, alternated twice; the largest output
    difference between the two."""
    graph_context()
    from PIL import Image
    from src.exported_model import load_exported
    folder = tempfile.mkdtemp(prefix="bench_runtimes_")
    latency, difference = [], 0.0
    for bn_stats, batch in (("image", 1), ("running", 8)):
        models = [load_exported(path, flag) for path, flag in zip(export_both(size, folder, bn_stats, batch),
                                                                   ("--mindir", "--onnx"))]
        x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, size, size)).astype(np.float32)
        outputs = [model.forward(x) for model in models]  # compiles, warms up
        difference = max(difference, float(np.abs(outputs[0] - outputs[1]).max()))
        times = [[], []]
        for _ in range(repeats):
            for model, spent in zip(models, times):
                started = time.perf_counter()
                model.forward(x)
                spent.append(time.perf_counter() - started)
        for model, spent in zip(models, times):
            latency.append({"runtime": model.runtime, "batch": batch, "bn_stats": bn_stats,
                            "per_image_ms": 1000 * float(np.median(spent)) / batch,
                            "p10_ms": 1000 * float(np.percentile(spent, 10)) / batch,
                            "p90_ms": 1000 * float(np.percentile(spent, 90)) / batch, "n": repeats})
        del models
    coarse = (np.random.default_rng(0).random((8, 8, 3)) * 255).astype(np.uint8)
    png = os.path.join(folder, "input.png")
    Image.fromarray(coarse).resize((size, size), Image.BILINEAR).save(png)
    content = open(png, "rb").read()
    mindir, onnx_path = (os.path.join(folder, f"generator_image_1.{suffix}") for suffix in ("mindir", "onnx"))
    serving = {"MINDIR": [], "ONNX": []}
    for _ in range(2):
        serving["MINDIR"].append(served_requests_per_s("--mindir", mindir, content, requests))
        serving["ONNX"].append(served_requests_per_s("--onnx", onnx_path, content, requests))
    return {"size": size, "latency": latency, "max_difference": difference, "requests": requests,
            "serving": serving}


def runtimes_markdown(result):
    """The MINDIR-vs-ONNX Runtime section."""
    size = result["size"]
    rows = {(r["batch"], r["runtime"].split()[0]): r for r in result["latency"]}
    lines = [f"## MINDIR (MindSpore) and ONNX (onnxruntime) inference, alternated in one run ({size}x{size}, "
             "full-size U-Net)", "",
             "The same generator exported both ways; per-image latency with the two runtimes alternated call by "
             f"call, then serve.py with each ({result['requests']} requests of one client, PNG {size}x{size}, "
             f"two rounds alternated). Largest output difference between the two: {result['max_difference']:.1e}.", "",
             "| batch (bn_stats) | runtime | median ms per image | p10 - p90 | calls |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['batch']} ({r['bn_stats']}) | {r['runtime']} | {r['per_image_ms']:.0f} | "
              f"{r['p10_ms']:.0f} - {r['p90_ms']:.0f} | {r['n']} |" for r in result["latency"]]
    for batch in sorted({batch for batch, _ in rows}):
        lines.append(f"\nBatch {batch}: ONNX Runtime takes {rows[(batch, 'onnxruntime')]['per_image_ms'] / rows[(batch, 'MindSpore')]['per_image_ms']:.2f}x "
                     "the MINDIR's time per image.")
    lines += ["", "| served file | requests/s (round 1, round 2) |", "| --- | --- |"]
    lines += [f"| {kind} | {', '.join(f'{value:.2f}' for value in values)} |" for kind, values in result["serving"].items()]
    return lines


MEASURES = {"train": measure_train_step, "variants": measure_step_variants, "pipeline": measure_pipeline,
            "mindir": measure_mindir, "tiled": measure_tiled, "serve": measure_serve,
            "tensorboard": measure_tensorboard, "load": measure_load, "runtimes": measure_runtimes}


def run_isolated(kind, *args, env=None):
    """Run one measurement in a fresh interpreter; returns its JSON result and its whole stdout."""
    output = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", kind,
                             *map(str, args)], capture_output=True, text=True, cwd=REPO,
                            env={**os.environ, **(env or {})})
    if output.returncode:
        raise SystemExit(f"bench: {kind} {args} failed:\n{output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1]), output.stdout


def onednn_kernels(size):
    """oneDNN's ISA and the implementation of each kind of primitive in a training step and an
    exported-model inference at `size`, from ONEDNN_VERBOSE=1."""
    verbose = {"ONEDNN_VERBOSE": "1"}
    text = run_isolated("train", size, 1, "pix2pix", env=verbose)[1]
    text += run_isolated("mindir", size, 1, 1, env=verbose)[1]
    isa = [line.split("isa:", 1)[1].strip() for line in text.splitlines()
           if line.startswith("onednn_verbose") and ",isa:" in line]
    implementations = runtime_env.onednn_implementations(text)
    return {"isa": isa[0] if isa else "unknown",
            "primitives": {f"{kind} {prop}": counts for (kind, prop), counts in sorted(implementations.items())},
            "reference_convolutions": runtime_env.reference_convolutions(implementations)}


ISA_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
             "avx512_bf16", "amx_tile", "amx_bf16")


def machine():
    import mindspore
    with open("/proc/meminfo") as handle:
        total_kb = int(handle.readline().split()[1])
    flags = runtime_env.cpu_flags()
    return {"cores": os.cpu_count(), "memory_gib": round(total_kb / 2 ** 20, 1),
            "cpu": runtime_env.cpu_model(), "isa_flags": [f for f in ISA_FLAGS if f in flags],
            "onednn_setting": {name: os.environ.get(name, "(unset)") for name in runtime_env.ISA_VARIABLES},
            "python": platform.python_version(),
            "mindspore": mindspore.__version__, "date": datetime.date.today().isoformat(),
            "load_average_at_start": os.getloadavg()}


def isa_markdown(info, kernels, uncapped):
    setting = ", ".join(f"{k}={v}" for k, v in info["onednn_setting"].items())
    lines = ["## CPU and oneDNN kernels", "",
             f"CPU: {info['cpu']}; ISA flags: {' '.join(info['isa_flags']) or 'none found'}.",
             f"This project's oneDNN setting here: {setting} (AVX-512 CPUs are capped at "
             f"{runtime_env.ISA_ON_AVX512}; see docs/speed.md, \"Speed on every CPU\"). oneDNN reported ISA: "
             f"{kernels['isa']}.", "",
             "Implementation of each kind of primitive in a training step and an exported-model "
             "inference (`ONEDNN_VERBOSE=1`):", "",
             "| primitive | implementation (calls) |", "| --- | --- |"]
    lines += [f"| {name} | {', '.join(f'`{impl}` ({n})' for impl, n in counts.items())} |"
              for name, counts in kernels["primitives"].items()]
    lines += ["", "Reference-kernel convolutions: " + (", ".join(map(str, kernels["reference_convolutions"]))
                                                      or "none") + ".", "",
              "Training step with this project's setting and with the cap off "
              f"(`{runtime_env.ISA_VARIABLE}=ALL`, the fallback on AVX-512 CPUs):", "",
              "| setting | size | median s/step | steps |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {r['size']} | {r['median_s']:.3f} | {r['n']} |" for name, r in uncapped]
    if "avx512f" not in info["isa_flags"]:
        lines += ["", "This CPU has no AVX-512: the cap does not apply and both settings run the same "
                  "kernels, so the gap cannot be shown here (on a 2-core AMD EPYC Zen 4 the uncapped "
                  "64-px step took 3.4-5 s against 0.115 s capped)."]
    return lines


def targets_markdown(train):
    by_size = {r["size"]: r for r in train if r["model"] == "pix2pix"}
    rows = []
    for size, key in ((256, "step_256_s"), (64, "step_64_s")):
        if size in by_size:
            rows.append((f"step at {size}x{size}", f"{by_size[size]['median_s']:.3f} s", f"<= {TARGETS[key]} s",
                         by_size[size]["median_s"] <= TARGETS[key]))
    if by_size:
        compile_s = max(r["compile_s"] for r in by_size.values())
        rows.append(("compile (largest size)", f"{compile_s:.1f} s", f"<= {TARGETS['compile_s']} s",
                     compile_s <= TARGETS["compile_s"]))
    if 256 in by_size:
        rss = by_size[256]["peak_rss_mb"]
        rows.append(("peak RSS at 256", f"{rss:.0f} MB", f"<= {TARGETS['peak_rss_256_mb']} MB",
                     rss <= TARGETS["peak_rss_256_mb"]))
    lines = ["## Targets (issue 12, for a 2-core machine of this kind)", "",
             "| figure | measured | target | met |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {value} | {target} | {'yes' if met else 'no'} |" for name, value, target, met in rows]
    return lines


# Issue 23's targets: each variant's step over the plain step, at most, per size.
VARIANT_TARGETS = {
    DEFAULT: {256: 1.05, 64: 1.05},
    "resize decoder, no weight average": {256: 1.05, 64: 1.05},
    "transposed decoder, weight average (default --ema_every)": {256: 1.05, 64: 1.10},
}


def variant_ratios(result, name):
    """Per-trial ratios of variant `name` over the plain step (alternated, so comparable)."""
    return [v / p for v, p in zip(result["per_trial_s"][name], result["per_trial_s"][PLAIN])]


def variants_markdown(variants):
    """The step variants at each size: median s/step, and the median and range of the per-trial
    ratios to the plain step."""
    import statistics
    sizes = [r["size"] for r in variants]
    lines = ["## The default step against the plain step", "",
             "Each variant is the pix2pix training step as train.py runs it (the compiled step, then the "
             "weight average when due), batch 1, ngf = ndf = 64, all variants in one process and alternated "
             "trial by trial, so that the machine's load reaches them alike; only their ratios compare. "
             f"{variants[0]['trials']} trials per variant and size.", "",
             "| variant | " + " | ".join(f"{s} px s/step | {s} px vs plain (trial range)" for s in sizes) + " |",
             "| --- | " + " | ".join("--- | ---" for _ in sizes) + " |"]
    for name in STEP_VARIANTS:
        cells = []
        for result in variants:
            ratios = variant_ratios(result, name)
            cells.append(f"{statistics.median(result['per_trial_s'][name]):.3f} | "
                         f"{statistics.median(ratios):.3f}x ({min(ratios):.2f} - {max(ratios):.2f})")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", "| target (issue 23) | size | measured | at most | met |", "| --- | --- | --- | --- | --- |"]
    for name, limits in VARIANT_TARGETS.items():
        for result in variants:
            if result["size"] in limits:
                ratio = statistics.median(variant_ratios(result, name))
                limit = limits[result["size"]]
                lines.append(f"| {name} / plain | {result['size']} | {ratio:.3f}x | {limit:.2f}x | "
                             f"{'yes' if ratio <= limit else 'no'} |")
    return lines


def markdown(info, train, pipeline, mindir, tiled, serving, kernels, uncapped, variants):
    lines = ["# Benchmarks", "", f"Machine: {info['cores']} cores, {info['memory_gib']} GiB, "
             f"{info['cpu']}, Python {info['python']}, MindSpore {info['mindspore']}, {info['date']}; "
             f"load average at start {', '.join(f'{v:.2f}' for v in info['load_average_at_start'])}.",
             "Written by `python bench/run.py`. Graph mode, CPU, float32. Timings from different "
             "machines, or from runs with other load, are not comparable.", "",
             "## Training step (batch 1, full-size networks: ngf = ndf = 64)", "",
             "| model | size | median s/step | p10 - p90 | steps | compile s | first step s | peak RSS MB |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['model']} | {r['size']} | {r['median_s']:.3f} | {r['p10_s']:.3f} - {r['p90_s']:.3f} "
              f"| {r['n']} | {r['compile_s']:.1f} | {r['first_step_s']:.1f} | {r['peak_rss_mb']:.0f} |"
              for r in train]
    lines += [""] + variants_markdown(variants)
    lines += ["", "## Data pipeline alone (AB JPEG 512x256 -> 256x256 crops)", "",
              "| workers | images | images/s |", "| --- | --- | --- |"]
    lines += [f"| {r['workers']} | {r['images']} | {r['images_per_s']:.1f} |" for r in pipeline]
    step_256 = [r for r in train if r["size"] == 256 and r["model"] == "pix2pix"]
    if step_256:
        slowest = min(r["images_per_s"] for r in pipeline)
        lines += ["", f"The 256x256 training step consumes {1 / step_256[0]['median_s']:.2f} images/s; the "
                  f"slowest pipeline setting delivers {slowest:.1f} images/s "
                  f"({slowest * step_256[0]['median_s']:.0f}x what the step needs)."]
    lines += ["", "## Exported MINDIR inference (generator, inference mode)", "",
              "| size | batch | median s/call | p10 - p90 | ms per image |", "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['size']} | {r['batch']} | {r['median_s']:.3f} | {r['p10_s']:.3f} - {r['p90_s']:.3f} "
              f"| {r['per_image_ms']:.1f} |" for r in mindir]
    lines += ["", "## A large one-channel FITS translated in tiles (eval's path, full-size U-Net)", "",
              "| image | tile | tiles | U-Net trained at | seconds (with compilation) | peak RSS MB |",
              "| --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['image_size']}x{r['image_size']} | {r['tile_size']} | {r['tiles']} | {r['crop_size']} "
              f"| {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |" for r in tiled]
    lines += ["", f"## Serving over HTTP (serve.py, the MINDIR above, PNG {serving['size']}x{serving['size']})", "",
              "Each client sends its requests one after another; the server runs one graph call at a time, "
              "so more clients raise latency more than throughput.", "",
              "| concurrent clients | requests | requests/s | p50 latency ms | p95 latency ms |",
              "| --- | --- | --- | --- | --- |"]
    lines += [f"| {r['clients']} | {r['requests']} | {r['requests_per_s']:.2f} | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} |"
              for r in serving["rows"]]
    lines += [""] + isa_markdown(info, kernels, uncapped) + [""] + targets_markdown(train)
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Measure training, data and inference speed on "
                                     "this machine and write a Markdown table.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 64],
                        help="training sizes (default: 256 64)")
    parser.add_argument("--models", nargs="+", default=["pix2pix"], choices=["pix2pix", "pix2pixcc"],
                        help="models to time (default: pix2pix)")
    parser.add_argument("--steps", type=int, default=20,
                        help="timed steps after compilation; also the blocks of 10 steps each way of the "
                             "TensorBoard measurement, at the smallest size (default: 20)")
    parser.add_argument("--variant_steps", type=int, default=10,
                        help="steps per trial of each step variant, a multiple of --ema_every (default: 10)")
    parser.add_argument("--variant_trials", type=int, default=5,
                        help="alternated trials of the step variants per size (default: 5)")
    parser.add_argument("--pipeline_images", type=int, default=64,
                        help="images through the data pipeline per measurement (default: 64)")
    parser.add_argument("--mindir_size", type=int, default=256, help="inference size (default: 256)")
    parser.add_argument("--mindir_repeats", type=int, default=10, help="timed inference calls (default: 10)")
    parser.add_argument("--uncapped_size", type=int, default=64,
                        help="size of the step timed with oneDNN's ISA cap off; on an AVX-512 CPU that "
                             "step runs reference kernels, about 35x slower (default: 64)")
    parser.add_argument("--uncapped_steps", type=int, default=5,
                        help="timed steps with the cap off (default: 5)")
    parser.add_argument("--tiled_size", type=int, default=4096,
                        help="side of the one-channel FITS translated in tiles (default: 4096)")
    parser.add_argument("--tiled_tile", type=int, default=1024, help="its tile size (default: 1024)")
    parser.add_argument("--tiled_crop", type=int, default=256,
                        help="training size of its U-Net (default: 256)")
    parser.add_argument("--serve_size", type=int, default=256,
                        help="side of the PNG sent to serve.py (default: 256)")
    parser.add_argument("--serve_requests", type=int, default=10,
                        help="requests each HTTP client sends (default: 10)")
    parser.add_argument("--load", action="store_true",
                        help="only the serving load run (--load_requests at --load_clients, bounded by "
                             "--load_seconds); writes bench/LOAD.md (or --out)")
    parser.add_argument("--load_requests", type=int, default=200, help="uploads in the load run (default: 200)")
    parser.add_argument("--load_clients", type=int, default=8, help="its concurrent clients (default: 8)")
    parser.add_argument("--load_seconds", type=int, default=600,
                        help="no upload is sent after this many seconds of the load run (default: 600)")
    parser.add_argument("--runtimes", action="store_true",
                        help="only compare the MINDIR (MindSpore) with the ONNX (onnxruntime) at --mindir_size: "
                             "latency at batch 1 and 8, serving requests/s (about 3 minutes); writes "
                             "bench/RUNTIMES.md (or --out)")
    parser.add_argument("--runtime_requests", type=int, default=10,
                        help="requests per round when serving each file (default: %(default)s)")
    parser.add_argument("--out", default=None,
                        help="where to write the tables (default: bench/RESULTS.md; with --load, bench/LOAD.md; "
                             "with --runtimes, bench/RUNTIMES.md)")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # one isolated measurement
    args = parser.parse_args(argv)
    args.out = args.out or os.path.join(REPO, "bench", "LOAD.md" if args.load else
                                        "RUNTIMES.md" if args.runtimes else "RESULTS.md")
    if args.measure:
        kind, *values = args.measure
        print(json.dumps(MEASURES[kind](*[v if not v.lstrip("-").isdigit() else int(v) for v in values])))
        return
    if args.load:
        write_load(args)
        return
    if args.runtimes:
        write_runtimes(args)
        return
    info = machine()
    train = []
    for model in args.models:
        for size in args.sizes:
            print(f"training step: {model} {size}x{size} ...", flush=True)
            train.append(run_isolated("train", size, args.steps, model)[0])
    variants = []
    for size in args.sizes:
        print(f"step variants, alternated: pix2pix {size}x{size} ...", flush=True)
        variants.append(run_isolated("variants", size, args.variant_steps, args.variant_trials)[0])
    pipeline = []
    for workers in (1, 2):
        print(f"data pipeline: {workers} worker(s) ...", flush=True)
        pipeline.append(run_isolated("pipeline", args.pipeline_images, workers)[0])
    mindir = []
    for batch in (1, 8):
        print(f"MINDIR inference: batch {batch} ...", flush=True)
        mindir.append(run_isolated("mindir", args.mindir_size, batch, args.mindir_repeats)[0])
    print(f"tiled inference: {args.tiled_size}x{args.tiled_size} FITS ...", flush=True)
    tiled = [run_isolated("tiled", args.tiled_size, args.tiled_tile, args.tiled_crop)[0]]
    print(f"serving over HTTP: {args.serve_size}x{args.serve_size} PNG, 1 and 4 clients ...", flush=True)
    serving = run_isolated("serve", args.serve_size, args.serve_requests)[0]
    print("oneDNN kernels and the step with the ISA cap off ...", flush=True)
    kernels = onednn_kernels(args.uncapped_size)
    uncapped = [(name, run_isolated("train", args.uncapped_size, args.uncapped_steps, "pix2pix", env=env)[0])
                for name, env in (("this project's setting", {}), (f"{runtime_env.ISA_VARIABLE}=ALL", UNCAPPED))]
    print("TensorBoard logging: the step with and without it ...", flush=True)
    board = run_isolated("tensorboard", min(args.sizes), args.steps, 10)[0]
    print(f"MINDIR and ONNX Runtime, alternated: {args.mindir_size}x{args.mindir_size} ...", flush=True)
    runtimes = run_isolated("runtimes", args.mindir_size, args.mindir_repeats, args.runtime_requests)[0]
    text = markdown(info, train, pipeline, mindir, tiled, serving, kernels, uncapped, variants)
    text += "\n" + "\n".join(tensorboard_markdown([board]) + [""] + runtimes_markdown(runtimes)) + "\n"
    write_text(args.out, text)


def write_text(path, text):
    from src.utils.files import atomic_write_text
    atomic_write_text(path, text)
    print(text)
    print(f"written to {path}")


def write_runtimes(args):
    """The MINDIR-vs-ONNX Runtime comparison alone (bench/RUNTIMES.md by default)."""
    print(f"MINDIR and ONNX Runtime, alternated: {args.mindir_size}x{args.mindir_size} ...", flush=True)
    runtimes = run_isolated("runtimes", args.mindir_size, args.mindir_repeats, args.runtime_requests)[0]
    info = machine()
    text = "\n".join([f"Machine: {info['cores']} cores, {info['cpu']}, MindSpore {info['mindspore']}, {info['date']}; "
                      f"load average at start {', '.join(f'{v:.2f}' for v in info['load_average_at_start'])}. "
                      "Written by `python bench/run.py --runtimes`.", "", *runtimes_markdown(runtimes)]) + "\n"
    write_text(args.out, text)


def write_load(args):
    """The load run alone, as its own Markdown file (bench/LOAD.md by default)."""
    info = machine()
    print(f"serving under load: {args.load_requests} uploads, {args.load_clients} clients ...", flush=True)
    load = run_isolated("load", args.load_requests, args.load_clients, args.load_seconds)[0]
    text = "\n".join(["# Serving under load", "", f"Machine: {info['cores']} cores, {info['memory_gib']} GiB, "
                      f"{info['cpu']}, Python {info['python']}, MindSpore {info['mindspore']}, {info['date']}. "
                      "Written by `python bench/run.py --load`.", "", *load_markdown(load)]) + "\n"
    write_text(args.out, text)


if __name__ == "__main__":
    main()
