"""Speed and memory of training, data loading and exported inference on this machine.

    python bench/run.py                      # full bench, writes bench/RESULTS.md (~5 minutes)
    python bench/run.py --steps 3 --sizes 32 --pipeline_images 8 --out /tmp/bench.md   # smoke run

Each measurement runs in its own process so that its peak memory is its own.
"""
import argparse
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


def model_cfg(size, model="pix2pix"):
    from src.utils.config import parse_args
    return parse_args("train", ["--train_data_dir", "unused", "--crop_size", str(size),
                                "--load_size", str(size), "--model", model])


def measure_train_step(size, steps, model):
    """Full-size networks (ngf = ndf = 64), batch 1: compile time, then `steps` timed steps."""
    graph_context()
    from mindspore import Tensor
    from src.models import registry
    from src.utils.lr import learning_rates
    cfg = model_cfg(size, model)
    netG, netD = registry.build_generator(cfg), registry.build_discriminator(cfg)
    step = registry.build_train_step(cfg, netG, netD, learning_rates("linear", 2e-4, steps + 1, 1, 1, 2))
    step.set_train(True)
    rng = np.random.default_rng(0)
    x = Tensor(rng.uniform(-1, 1, (1, cfg.input_nc, size, size)).astype(np.float32))
    y = Tensor(rng.uniform(-1, 1, (1, cfg.output_nc, size, size)).astype(np.float32))
    noise = Tensor(rng.random((1, max(1, netG.dropout_noise_size)), dtype=np.float32))
    started = time.perf_counter()
    step(x, y, noise)[0].asnumpy()
    compile_s = time.perf_counter() - started
    times = []
    for _ in range(steps):
        started = time.perf_counter()
        step(x, y, noise)[0].asnumpy()
        times.append(time.perf_counter() - started)
    return {"model": model, "size": size, "compile_and_first_step_s": compile_s, **timings(times),
            "peak_rss_mb": peak_rss_mb()}


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
    dataset = train_dataset(find_pairs(folder), cfg, noise_size=512 * 84)
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
    from src.dataset.pairs import find_inputs
    from src.evaluate import evaluate
    from src.inference import layout_for, make_tiling, network_run, predictions
    from src.models import registry
    from src.utils.config import parse_args
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
    items = predictions(find_inputs(os.path.join(folder, "in"), "--input_dir", cfg), cfg, network_run(netG), 1, tiling)
    evaluate(items, cfg, os.path.join(folder, "out"), os.path.join(folder, "report"), progress=lambda line: None)
    return {"image_size": image_size, "tile_size": tile_size, "crop_size": crop_size,
            "tiles": layout_for(image_size, image_size, tiling).count, "seconds": time.perf_counter() - started,
            "peak_rss_mb": peak_rss_mb()}


MEASURES = {"train": measure_train_step, "pipeline": measure_pipeline, "mindir": measure_mindir,
            "tiled": measure_tiled}


def run_isolated(kind, *args):
    """Run one measurement in a fresh interpreter and return its JSON result."""
    output = subprocess.run([sys.executable, os.path.abspath(__file__), "--measure", kind,
                             *map(str, args)], capture_output=True, text=True, cwd=REPO)
    if output.returncode:
        raise SystemExit(f"bench: {kind} {args} failed:\n{output.stderr[-2000:]}")
    return json.loads(output.stdout.strip().splitlines()[-1])


def machine():
    import mindspore
    with open("/proc/meminfo") as handle:
        total_kb = int(handle.readline().split()[1])
    return {"cores": os.cpu_count(), "memory_gib": round(total_kb / 2 ** 20, 1),
            "cpu": platform.processor() or platform.machine(), "python": platform.python_version(),
            "mindspore": mindspore.__version__, "date": datetime.date.today().isoformat(),
            "load_average_at_start": os.getloadavg()}


def markdown(info, train, pipeline, mindir, tiled):
    lines = ["# Benchmarks", "", f"Machine: {info['cores']} cores, {info['memory_gib']} GiB, "
             f"{info['cpu']}, Python {info['python']}, MindSpore {info['mindspore']}, {info['date']}; "
             f"load average at start {', '.join(f'{v:.2f}' for v in info['load_average_at_start'])}.",
             "Written by `python bench/run.py`. Graph mode, CPU, float32.", "",
             "## Training step (batch 1, full-size networks: ngf = ndf = 64)", "",
             "| model | size | median s/step | p10 - p90 | steps | compile + first step s | peak RSS MB |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['model']} | {r['size']} | {r['median_s']:.3f} | {r['p10_s']:.3f} - {r['p90_s']:.3f} "
              f"| {r['n']} | {r['compile_and_first_step_s']:.1f} | {r['peak_rss_mb']:.0f} |" for r in train]
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
    return "\n".join(lines) + "\n"


def main(argv=None):
    parser = argparse.ArgumentParser(description="Measure training, data and inference speed on "
                                     "this machine and write a Markdown table.")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 64],
                        help="training sizes (default: 256 64)")
    parser.add_argument("--models", nargs="+", default=["pix2pix"], choices=["pix2pix", "pix2pixcc"],
                        help="models to time (default: pix2pix)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps after compilation (default: 20)")
    parser.add_argument("--pipeline_images", type=int, default=64,
                        help="images through the data pipeline per measurement (default: 64)")
    parser.add_argument("--mindir_size", type=int, default=256, help="inference size (default: 256)")
    parser.add_argument("--mindir_repeats", type=int, default=10, help="timed inference calls (default: 10)")
    parser.add_argument("--tiled_size", type=int, default=4096,
                        help="side of the one-channel FITS translated in tiles (default: 4096)")
    parser.add_argument("--tiled_tile", type=int, default=1024, help="its tile size (default: 1024)")
    parser.add_argument("--tiled_crop", type=int, default=256,
                        help="training size of its U-Net (default: 256)")
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "RESULTS.md"),
                        help="where to write the table (default: bench/RESULTS.md)")
    parser.add_argument("--measure", nargs="+", help=argparse.SUPPRESS)  # one isolated measurement
    args = parser.parse_args(argv)
    if args.measure:
        kind, *values = args.measure
        print(json.dumps(MEASURES[kind](*[v if not v.lstrip("-").isdigit() else int(v) for v in values])))
        return
    info = machine()
    train = []
    for model in args.models:
        for size in args.sizes:
            print(f"training step: {model} {size}x{size} ...", flush=True)
            train.append(run_isolated("train", size, args.steps, model))
    pipeline = []
    for workers in (1, 2):
        print(f"data pipeline: {workers} worker(s) ...", flush=True)
        pipeline.append(run_isolated("pipeline", args.pipeline_images, workers))
    mindir = []
    for batch in (1, 8):
        print(f"MINDIR inference: batch {batch} ...", flush=True)
        mindir.append(run_isolated("mindir", args.mindir_size, batch, args.mindir_repeats))
    print(f"tiled inference: {args.tiled_size}x{args.tiled_size} FITS ...", flush=True)
    tiled = [run_isolated("tiled", args.tiled_size, args.tiled_tile, args.tiled_crop)]
    text = markdown(info, train, pipeline, mindir, tiled)
    tmp = args.out + ".tmp"
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, args.out)
    print(text)
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()
