"""From predictions to what people read: files, metrics CSV, summary JSON, collages, plots, PDF.

`evaluate` takes (pair, input, prediction, original size) for each image, whatever made the
prediction: the checkpoint network (eval.py), an exported MINDIR or ONNX file (predict.py,
eval.py --onnx; `evaluate_exported`), or the 310 harness's output files (postprocess.py).
"""
import json
import math
import os

import numpy as np

from src.config import CONFIG_FILE, save_resolved_config
from src.dataset.collages import COLLAGE_LABELS, INPUT_ONLY_LABELS, image_row
from src.dataset.io import EIGHT_BIT_FORMATS, write_image
from src.dataset.normalize import missing_mask, side_scaling, to_model, to_physical
from src.dataset.pairs import (check_same_size, data_format, find_inputs, find_pairs, load_target, side_paths,
                               side_unit, write_prediction)
from src.dataset.transforms import resize_chw
from src.exported_model import exported_model
from src.inference import card_tiling, network_forward, predictions, tiling_from_flags
from src.model_card import card_config
from src.models import registry
from src.trained_generator import inference_batch_size, load_generator, resolve_checkpoint_flags
from src.utils.device import set_context
from src.utils.files import atomic_path, atomic_write_csv, atomic_write_text, clear_stale_temporaries, save_figure
from src.utils.metrics import compute_metrics, physical_metrics, summarise
from src.utils.progress import progress_bar
from src.utils.report import write_science_figure


def error_panel(prediction, target):
    """|prediction - target| on the [-1, 1] scale of the panels: black = 0, white = 2."""
    return np.abs(prediction - target).mean(axis=0, keepdims=True) - 1.0


def collage(source, target, prediction):
    """input | target | generated | absolute error (uint8 RGB) under column labels; without a
    target, input | generated."""
    if target is None:
        return image_row((source, prediction), labels=INPUT_ONLY_LABELS)
    return image_row((source, target, prediction, error_panel(prediction, target)), labels=COLLAGE_LABELS)


def write_collage(path, pair, cfg, source, target, target_physical, restored):
    """8-bit data: `collage`'s strip. Scientific data: the same panels in physical units with
    colour bars and units, solar orientation, missing target pixels blank."""
    if data_format(cfg, "target") in EIGHT_BIT_FORMATS and data_format(cfg, "input") in EIGHT_BIT_FORMATS:
        write_image(path, collage(source, target, restored))
        return
    input_path, target_path = side_paths(pair, cfg)
    input_scaling, target_scaling = side_scaling(cfg, "input"), side_scaling(cfg, "target")
    unit = side_unit(target_path, cfg, "target")
    prediction = to_physical(restored, target_scaling).mean(axis=0)
    panels = [("input", to_physical(source, input_scaling).mean(axis=0), input_scaling,
               side_unit(input_path, cfg, "input"))]
    if target_physical is not None:
        observed = target_physical.mean(axis=0)
        panels.append(("target", observed, target_scaling, unit))
    panels.append(("prediction", prediction, target_scaling, unit))
    if target_physical is not None:
        panels.append(("|prediction - target|", np.abs(prediction - observed), None, unit))
    write_science_figure(path, panels)


def physical_row(restored, target_physical, valid, cfg):
    """Metrics in physical units for scientific targets (FITS, npy, tif), over the counted
    (`valid`) pixels; none for 8-bit images."""
    if data_format(cfg, "target") in EIGHT_BIT_FORMATS:
        return {}
    scaling = side_scaling(cfg, "target")
    valid_only = np.where(valid, target_physical, np.nan)
    return physical_metrics(to_physical(restored, scaling), valid_only, scaling.signed)


def metric_row(pair, restored, target, target_physical, functions, cfg):
    """One image's metrics over the pixels where the target has data, and for scientific
    targets (8-bit images miss none) the share counted."""
    valid = ~missing_mask(target_physical, side_scaling(cfg, "target"))
    row = {"name": pair.name, **compute_metrics(restored, target, functions, valid),
           **physical_row(restored, target_physical, valid, cfg)}
    if data_format(cfg, "target") not in EIGHT_BIT_FORMATS:
        row[COUNTED] = float(valid.mean())
    return row


# The metrics.csv column with the share of each image's pixels that the metrics count.
COUNTED = "counted_fraction"
PIXELS_COUNTED = ("Pixels counted: those where the target has data. Missing target pixels (NaN, inf, "
                  "BLANK; <= 0 under log scale) are left out of every metric; counted_fraction is "
                  "their complement per image.")


def write_outputs(pair, source, prediction, original_size, cfg, predict_dir, collage_dir, functions):
    """One image's prediction file and collage; its metric row, or None without a target."""
    target_physical = load_target(pair, cfg)
    if target_physical is not None:
        check_same_size(pair, tuple(original_size), target_physical.shape)
    _, restored = write_prediction(pair, prediction, predict_dir, cfg, original_size)
    source_full = resize_chw(source, tuple(original_size))
    target = None if target_physical is None else to_model(target_physical, side_scaling(cfg, "target"))
    os.makedirs(collage_dir, exist_ok=True)
    write_collage(os.path.join(collage_dir, os.path.splitext(pair.name)[0] + ".png"), pair, cfg,
                  source_full, target, target_physical, restored)
    return None if target is None else metric_row(pair, restored, target, target_physical, functions, cfg)


def evaluate(items, cfg, predict_dir, report_dir, progress=print, total=None, show_bar=True):
    """Write predictions and, where targets exist, metrics and the report. Returns the rows.
    `progress` prints the messages and the summary; a bar over the images (`show_bar`) shows
    how far it is, `total` its length (default: len(items) if any)."""
    os.makedirs(report_dir, exist_ok=True)
    collage_dir = os.path.join(report_dir, "collages")
    clear_stale_temporaries((predict_dir, report_dir, collage_dir), progress)
    rows, functions = [], registry.metrics_for(cfg)
    with progress_bar(items, total, desc="images", unit="image", shown=show_bar) as bar:
        for pair, source, prediction, original_size in bar:
            bar.set_postfix_str(pair.name, refresh=False)
            row = write_outputs(pair, source, prediction, original_size, cfg, predict_dir, collage_dir, functions)
            if row is not None:
                rows.append(row)
    if not rows:
        progress(f"no targets: predictions only, written to {os.path.abspath(predict_dir)}")
        return rows
    names = tuple(name for name in rows[0] if name != "name")
    summary = summarise(rows, names)
    write_csv(os.path.join(report_dir, "metrics.csv"), rows, names)
    atomic_write_text(os.path.join(report_dir, "summary.json"), json.dumps(summary, indent=1))
    plot_distributions(rows, [name for name in names if name != COUNTED], os.path.join(report_dir, "metrics.png"))
    write_pdf_report(rows, summary, collage_dir, os.path.join(report_dir, "report.pdf"), cfg)
    progress(summary_text(summary))
    progress(PIXELS_COUNTED)
    progress(f"predictions in {os.path.abspath(predict_dir)}; metrics.csv, summary.json, metrics.png, "
             f"report.pdf and collages/ in {os.path.abspath(report_dir)}")
    return rows


def evaluate_folder(cfg):
    """eval.py: translate and score the pairs of --val_data_dir with --ckpt (in this process's
    MindSpore) or --onnx; the resolved flags go beside the report."""
    if cfg.onnx:
        set_context(cfg)
        evaluate_exported(cfg, find_pairs, cfg.val_data_dir, "--val_data_dir", cfg.predict_dir, cfg.report_dir)
    else:
        cfg = resolve_checkpoint_flags(cfg)
        registry.check_model_config(cfg)
        tiling = tiling_from_flags(cfg, registry.size_unit(cfg))
        set_context(cfg)
        pairs = find_pairs(cfg.val_data_dir, "--val_data_dir", cfg)
        netG = load_generator(cfg)
        evaluate(predictions(pairs, cfg, network_forward(netG), inference_batch_size(cfg), tiling, show_tiles=True),
                 cfg, cfg.predict_dir, cfg.report_dir, total=len(pairs))
    save_resolved_config(cfg, os.path.join(cfg.report_dir, CONFIG_FILE))


def predict_folder(cfg):
    """predict.py: translate the inputs of --input_dir with --mindir or --onnx; the report (and
    the resolved flags) go to <predict_dir>_report."""
    set_context(cfg)
    report_dir = cfg.predict_dir + "_report"
    evaluate_exported(cfg, find_inputs, cfg.input_dir, "--input_dir", cfg.predict_dir, report_dir)
    save_resolved_config(cfg, os.path.join(report_dir, CONFIG_FILE))


def evaluate_exported(cfg, find, data_dir, data_flag, predict_dir, report_dir):
    """`evaluate` the predictions of the exported model of --mindir or --onnx for the files
    `find(data_dir, data_flag, data cfg)` lists, read as its card says; <report_dir>/model_card.json
    is the card with the runtime that served."""
    model = exported_model(cfg)
    data_cfg = card_config(model.card)
    tiling = card_tiling(model.card, cfg)
    pairs = find(data_dir, data_flag, data_cfg)
    print(f"run by {model.runtime}")
    rows = evaluate(predictions(pairs, data_cfg, model.forward, model.batch_size, tiling, show_tiles=True), data_cfg,
                    predict_dir, report_dir, total=len(pairs))
    atomic_write_text(os.path.join(report_dir, "model_card.json"),
                      json.dumps({**model.card, "runtime": model.runtime}, indent=1))
    return rows


def write_csv(path, rows, names):
    atomic_write_csv(path, [["name", *names]]
                     + [[row["name"], *(f"{row.get(m, math.nan):.6g}" for m in names)] for row in rows])


def summary_text(summary):
    width = max([9, *map(len, summary)])
    lines = [f"{'metric':<{width}} {'mean':>9} {'median':>9} {'std':>9} {'min':>9} {'max':>9}"]
    for name, stats in summary.items():
        if "mean" in stats:
            lines.append(f"{name:<{width}} " + " ".join(f"{stats[k]:9.4f}" for k in ("mean", "median", "std", "min", "max"))
                         + (f"  ({stats['n_inf']} identical: inf)" if stats["n_inf"] else ""))
    return "\n".join(lines)


def _finite(rows, name):
    return [row[name] for row in rows if math.isfinite(row[name])]


def is_physical(name):
    """Metrics in the target's own units (physical_metrics), not on the network's scale."""
    return name.endswith("_phys") or name.startswith("flux_")


def metric_label(name):
    return f"{name} (physical)" if is_physical(name) else name


def plot_distributions(rows, names, path):
    """A box plot above a histogram per metric, six metrics a row, physical ones labelled."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    columns = min(6, len(names))
    blocks = math.ceil(len(names) / columns)
    fig, axes = plt.subplots(2 * blocks, columns, figsize=(3.0 * columns, 5.2 * blocks), squeeze=False)
    for index, name in enumerate(names):
        values = _finite(rows, name)
        box, hist = axes[2 * (index // columns), index % columns], axes[2 * (index // columns) + 1, index % columns]
        box.boxplot(values if values else [0])
        box.set_title(metric_label(name), fontsize=9)
        hist.hist(values if values else [0], bins=min(20, max(3, len(values))))
        hist.set_xlabel(name)
    for index in range(len(names), blocks * columns):
        for row in (2 * (index // columns), 2 * (index // columns) + 1):
            axes[row, index % columns].axis("off")
    axes[1, 0].set_ylabel("images")
    fig.tight_layout()
    save_figure(fig, path, dpi=90)


def write_pdf_report(rows, summary, collage_dir, path, cfg):
    """Summary table and plots, then the worst, median and best images by L1."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.backends.backend_pdf import PdfPages
    from PIL import Image
    with atomic_path(path) as tmp, PdfPages(tmp) as pdf:
        fig = plt.figure(figsize=(8.27, 11.69))
        fig.text(0.08, 0.95, "Pix2Pix evaluation report", fontsize=18, weight="bold")
        fig.text(0.08, 0.92, f"checkpoint: {cfg.ckpt or '-'}", fontsize=8)
        fig.text(0.08, 0.905, f"data: {cfg.val_data_dir or '-'}    images: {len(rows)}    "
                 f"model: {cfg.model}", fontsize=8)
        notes = ["L1, MSE, PSNR (dB), SSIM, CC: on the network's scale [-1, 1]; L1/MSE lower is better, "
                 "PSNR, SSIM, CC higher is better."]
        if any(is_physical(name) for name in summary):
            notes.append("(physical): in the target's own units (BUNIT); flux_*: sums over counted pixels, "
                         "unit x pixels.")
        notes.append(PIXELS_COUNTED)
        for number, note in enumerate(notes):
            fig.text(0.08, 0.885 - 0.014 * number, note, fontsize=6.5, wrap=True)
        table = [[metric_label(name)] + [f"{stats.get(k, float('nan')):.4g}" for k in ("mean", "median", "std", "min", "max")]
                 for name, stats in summary.items()]
        axis = fig.add_axes([0.08, 0.50, 0.84, 0.33])
        axis.axis("off")
        cells = axis.table(cellText=table, colLabels=["metric", "mean", "median", "std", "min", "max"], loc="center")
        cells.auto_set_font_size(False)
        cells.set_fontsize(7)
        plot_path = os.path.join(os.path.dirname(path), "metrics.png")
        axis = fig.add_axes([0.05, 0.03, 0.9, 0.45])
        axis.imshow(Image.open(plot_path))
        axis.axis("off")
        pdf.savefig(fig)
        plt.close(fig)
        ordered = sorted(rows, key=lambda row: row["L1"])
        picks = [("best", ordered[0]), ("median", ordered[len(ordered) // 2]), ("worst", ordered[-1])]
        fig, axes = plt.subplots(3, 1, figsize=(8.27, 11.69))
        for axis, (label, row) in zip(axes, picks):
            axis.imshow(Image.open(os.path.join(collage_dir, os.path.splitext(row["name"])[0] + ".png")))
            axis.set_title(f"{label}: {row['name']}  L1 {row['L1']:.3f}  PSNR {row['PSNR']:.2f}  "
                           f"SSIM {row['SSIM']:.3f}", fontsize=8)
            axis.axis("off")
        pdf.savefig(fig)
        plt.close(fig)
