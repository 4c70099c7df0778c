"""The Python halves of the Ascend 310 flow, and a CPU stand-in for its device step.

    preprocess.py   dataset -> <stem>.bin (float32 NCHW, batch 1; <stem>.tile<k>.bin per tile of a
                    large image), manifest.tsv, samples.json
    main (C++)      <stem>.bin -> result_Files/<stem>_0.bin, time_Result/test_perform_static.txt
    infer_bins.py   the same as main, with MindSpore's Python API (runs here, without a 310)
    postprocess.py  result_Files/ -> predictions named like the inputs, metrics, report

A .bin is the raw little-endian float32 array with no header: what the C++ harness hands to
`MSTensor` and gets back from `Predict`. The data are read and normalised by src/dataset, with
the settings the exported model's card records, and padded or tiled by src/inference, so the
310 flow sees exactly what eval.py sees.
"""
import json
import os
import time

import numpy as np
from mindspore import Tensor

from src.dataset.io import stem
from src.dataset.pairs import Pair, find_inputs, find_pairs, load_input
from src.evaluate import evaluate
from src.exported_model import load_mindir
from src.inference import Tiling, card_tiling, layout_for, merge, split
from src.model_card import card_config, read_model_card
from src.utils.device import set_context
from src.utils.errors import UserError
from src.utils.files import atomic_path, atomic_write_text
from src.utils.progress import progress_bar

MANIFEST = "manifest.tsv"
SAMPLES = "samples.json"
BIN_DTYPE = np.dtype("<f4")


def write_bin(path, array):
    """`array` as raw little-endian float32, written atomically."""
    with atomic_path(path) as tmp:
        np.ascontiguousarray(array, BIN_DTYPE).tofile(tmp)


def read_bin(path, shape):
    """A .bin holding exactly a float32 array of `shape`; a wrong size is a UserError naming it."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file")
    expected = int(np.prod(shape)) * BIN_DTYPE.itemsize
    size = os.path.getsize(path)
    if size != expected:
        raise UserError(f"{path}: {size} bytes, expected {expected} "
                        f"(float32 {'x'.join(map(str, shape))})")
    return np.fromfile(path, BIN_DTYPE).reshape(shape)


def result_name(bin_name):
    """main's name for the output of `<stem>.bin`: `<stem>_0.bin` (output 0 of the graph)."""
    return os.path.splitext(bin_name)[0] + "_0.bin"


def write_manifest(path, entries):
    """The tab-separated list main reads: file, dtype, shape (comma-separated)."""
    lines = ["file\tdtype\tshape"] + [f"{name}\tfloat32\t{','.join(map(str, shape))}"
                                      for name, shape in entries]
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_manifest(path):
    """[(file name, shape)] from a manifest.tsv; malformed lines are a UserError with the line."""
    if not os.path.isfile(path):
        raise UserError(f"{path}: no such file (preprocess.py writes it)")
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    if not lines or lines[0] != "file\tdtype\tshape":
        raise UserError(f"{path}: line 1 must be the header 'file<TAB>dtype<TAB>shape'")
    entries = []
    for number, line in enumerate(lines[1:], 2):
        fields = line.split("\t")
        try:
            if len(fields) != 3 or fields[1] != "float32":
                raise ValueError
            shape = tuple(int(dim) for dim in fields[2].split(","))
            if min(shape) <= 0:
                raise ValueError
        except ValueError:
            raise UserError(f"{path}:{number}: expected 'NAME.bin<TAB>float32<TAB>N,C,H,W', got {line!r}") from None
        entries.append((fields[0], shape))
    if not entries:
        raise UserError(f"{path}: lists no inputs")
    return entries


def bin_names(name, count):
    """The .bin files of an image cut into `count` tiles: <stem>.bin for a whole image."""
    return [name + ".bin"] if count == 1 else [f"{name}.tile{k}.bin" for k in range(count)]


def preprocess(mindir, dataset_path, output_path, inputs_only=False, flags=None):
    """Write the .bin files of every sample of `dataset_path` for the model `mindir`, normalised,
    padded and tiled as eval.py does (--tile_size etc. in `flags`), plus manifest.tsv and
    samples.json (what postprocess needs to reassemble, name and score)."""
    card = read_model_card(mindir)
    if card["input_shape"][0] != 1:
        raise UserError(f"--mindir {mindir}: exported with batch size {card['input_shape'][0]}; the 310 "
                        "flow feeds one image per .bin: export with --batch_size 1")
    cfg = card_config(card)
    tiling = card_tiling(card, flags)
    pairs = (find_inputs(dataset_path, "--dataset_path", cfg) if inputs_only
             else find_pairs(dataset_path, "--dataset_path", cfg))
    stems = [stem(pair.name) for pair in pairs]
    if len(set(stems)) != len(stems):
        duplicate = next(stem for stem in stems if stems.count(stem) > 1)
        raise UserError(f"--dataset_path {dataset_path}: two inputs are named {duplicate}.*; "
                        ".bin files are named by the stem, rename one")
    os.makedirs(output_path, exist_ok=True)
    entries, samples = [], []
    with progress_bar(list(zip(pairs, stems)), desc="preprocess", unit="image") as bar:
        for pair, name in bar:
            source = load_input(pair, cfg)
            tiles = split(source, layout_for(*source.shape[1:], tiling, pair.input_path))
            bins = bin_names(name, len(tiles))
            bar.set_postfix_str(pair.name + (f", {len(bins)} tiles" if len(bins) > 1 else ""), refresh=False)
            for bin_name, tile in zip(bins, tiles):
                write_bin(os.path.join(output_path, bin_name), tile[None])
                entries.append((bin_name, (1, *tile.shape)))
            samples.append({"bins": bins, "name": pair.name, "input_path": os.path.abspath(pair.input_path),
                            "target_path": pair.target_path and os.path.abspath(pair.target_path),
                            "layout": pair.layout, "original_size": list(source.shape[1:])})
    write_manifest(os.path.join(output_path, MANIFEST), entries)
    atomic_write_text(os.path.join(output_path, SAMPLES), json.dumps(
        {"mindir": os.path.abspath(mindir), "card": card, "tiling": tiling.to_dict(), "samples": samples},
        indent=1))
    return entries


def latency_report(per_image_ms):
    """The text of time_Result/test_perform_static.txt, as main writes it."""
    values = np.asarray(per_image_ms, np.float64)
    return (f"images: {len(values)}\nmean_ms_per_image: {values.mean():.3f}\n"
            f"p50_ms_per_image: {np.percentile(values, 50):.3f}\n"
            f"p95_ms_per_image: {np.percentile(values, 95):.3f}\ntotal_ms: {values.sum():.3f}\n")


def device_step(cfg):
    """infer_bins.py: `infer_bins` on --device_target, with infer_bins.py's flags."""
    set_context(cfg)
    return infer_bins(cfg.mindir, cfg.input0_path, cfg.output_dir, cfg.time_dir)


def infer_bins(mindir, input_dir, output_dir, time_dir, manifest_path=None, progress=print):
    """What main does on the 310, with MindSpore's Python API: every .bin of the manifest through
    the MINDIR, outputs to `output_dir/<stem>_0.bin`, latency statistics to `time_dir`."""
    graph, card = load_mindir(mindir)
    input_shape = tuple(card["input_shape"])
    entries = read_manifest(manifest_path or os.path.join(input_dir, MANIFEST))
    os.makedirs(output_dir, exist_ok=True)
    os.makedirs(time_dir, exist_ok=True)
    for name, shape in entries:
        if len(shape) != len(input_shape) or any(dim not in (None, size) for dim, size in zip(input_shape, shape)):
            raise UserError(f"{os.path.join(input_dir, name)}: shape {shape} in the manifest, the model "
                            f"takes {input_shape} (None: any size)")
    # Untimed warm-up, as main does: the first call pays for allocation and kernel selection.
    graph(Tensor(read_bin(os.path.join(input_dir, entries[0][0]), entries[0][1])))
    timings = []
    with progress_bar(entries, desc="infer", unit="bin") as bar:
        for name, shape in bar:
            batch = read_bin(os.path.join(input_dir, name), shape)
            start = time.perf_counter()
            output = graph(Tensor(batch)).asnumpy()
            timings.append((time.perf_counter() - start) * 1000.0)
            write_bin(os.path.join(output_dir, result_name(name)), output)
            bar.set_postfix_str(f"{name} {timings[-1]:.1f} ms", refresh=False)
    report = latency_report(timings)
    atomic_write_text(os.path.join(time_dir, "test_perform_static.txt"), report)
    progress(report.strip())
    return timings


def _load_samples(preprocess_path):
    path = os.path.join(preprocess_path, SAMPLES)
    if not os.path.isfile(path):
        raise UserError(f"--preprocess_path {preprocess_path}: no {SAMPLES} (preprocess.py writes it)")
    try:
        with open(path, encoding="utf-8") as handle:
            record = json.load(handle)
    except ValueError as err:
        raise UserError(f"{path}: not valid JSON ({err}); run preprocess.py again") from None
    if not isinstance(record, dict) or not {"card", "tiling", "samples"} <= set(record):
        raise UserError(f"{path}: not a samples.json written by preprocess.py; run it again")
    return record


def result_items(preprocess_path, result_path, samples, cfg, tiling):
    """(pair, input, prediction, original size) per sample, the prediction reassembled from the
    tiles' output .bin files."""
    for sample in samples:
        pair = Pair(sample["name"], sample["input_path"], sample["target_path"], sample["layout"])
        source = load_input(pair, cfg)
        if list(source.shape[1:]) != sample["original_size"]:
            raise UserError(f"{pair.input_path}: changed since preprocess.py read it; run it again")
        layout = layout_for(*source.shape[1:], tiling, pair.input_path)
        outputs = []
        for bin_name in sample["bins"]:
            path = os.path.join(result_path, result_name(bin_name))
            output = read_bin(path, (1, cfg.output_nc, *layout.tile))[0]
            if not np.all(np.isfinite(output)):
                raise UserError(f"{path}: NaN or inf in the output")
            outputs.append(output)
        yield pair, source, merge(outputs, layout, tiling.overlap), source.shape[1:]


def postprocess(preprocess_path, result_path, predict_dir, report_dir, progress=print):
    """Predictions from result_Files/ written and scored exactly as eval.py does."""
    record = _load_samples(preprocess_path)
    cfg = card_config(record["card"])
    samples = record["samples"]
    return evaluate(result_items(preprocess_path, result_path, samples, cfg, Tiling(**record["tiling"])), cfg,
                    predict_dir, report_dir, progress, total=len(samples))
