"""Validation during training: the held-out pairs translated by the current generator as eval.py
translates them (inference mode, each image at its own size), their mean metrics appended to
val_metrics.csv and drawn in val_curve.png, and the best generator so far kept as
Generator_best.ckpt with Generator_best.json (epoch, metric, value).

A resumed run keeps the rows of the epochs its resume state covers and the best record among
them, so that it ends with the same table and the same best checkpoint as a run never stopped.
"""
import csv
import json
import math
import os

from src.config import BEST_METRICS
from src.dataset.normalize import side_scaling, to_model
from src.dataset.pairs import check_same_size, load_target
from src.evaluate import metric_row
from src.inference import network_forward, predictions, tiling_from_flags
from src.models import registry
from src.trained_generator import inference_batch_size, per_image_statistics, save_generator, use_image_statistics
from src.utils.errors import UserError
from src.utils.files import atomic_write_text, save_figure
from src.utils.metrics import summarise

CSV_FILE = "val_metrics.csv"
CURVE_FILE = "val_curve.png"
BEST_CKPT = "Generator_best.ckpt"
BEST_RECORD = "Generator_best.json"


def validation_means(netG, pairs, cfg):
    """{metric: mean over `pairs`} of `netG`'s predictions (the network is left in inference
    mode; the caller puts it back)."""
    netG.set_train(False)
    functions, rows = registry.metrics_for(cfg), []
    tiling = tiling_from_flags(cfg, registry.size_unit(cfg))
    for pair, _, prediction, size in predictions(pairs, cfg, network_forward(netG), inference_batch_size(cfg),
                                                 tiling):
        target_physical = load_target(pair, cfg)
        if target_physical is None:
            raise UserError(f"--val_data_dir {cfg.val_data_dir}: {pair.name} has no target to validate against")
        check_same_size(pair, tuple(size), target_physical.shape)
        target = to_model(target_physical, side_scaling(cfg, "target"))
        rows.append(metric_row(pair, prediction, target, target_physical, functions, cfg))
    names = [name for name in rows[0] if name != "name"]
    return {name: stats.get("mean", math.nan) for name, stats in summarise(rows, names).items()}


def is_better(value, best, metric):
    if not math.isfinite(value):
        return False
    return best is None or (value < best if BEST_METRICS[metric] else value > best)


class Validator:
    """Runs validation at the epochs --val_interval picks and keeps the table, curve and best."""

    def __init__(self, cfg, generator, pairs, palette=None):
        """`generator()`: the network to score and keep as the best (G, or its weight average);
        `palette`: the input colours its checkpoint records."""
        self.cfg, self.generator, self.pairs, self.palette = cfg, generator, pairs, palette
        self.metric = cfg.best_metric
        self.csv_path = os.path.join(cfg.loss_show_dir, CSV_FILE)
        self.best_path = os.path.join(cfg.ckpt_dir, BEST_CKPT)
        self.record_path = os.path.join(cfg.ckpt_dir, BEST_RECORD)
        self.best = None
        self.per_image_copy = None

    def due(self, epoch):
        interval = self.cfg.val_interval
        return bool(interval) and (epoch % interval == 0 or epoch == self.cfg.epoch_num)

    def start(self, done_epochs):
        """Keep the history of the first `done_epochs` epochs (none for a new run)."""
        rows = [row for row in self.read() if int(row["epoch"]) <= done_epochs]
        self.best = None
        if done_epochs and os.path.isfile(self.record_path):
            with open(self.record_path, encoding="utf-8") as handle:
                record = json.load(handle)
            if record["metric"] == self.metric and record["epoch"] <= done_epochs:
                self.best = record["value"]
        if self.best is None:  # a record from after the resume point (a kill mid-epoch) or another metric
            for row in rows:
                if is_better(float(row[self.metric]), self.best, self.metric):
                    self.best = float(row[self.metric])
        self._write(rows[0].keys() if rows else None, rows)

    def read(self):
        if not os.path.isfile(self.csv_path):
            return []
        with open(self.csv_path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def _write(self, columns, rows):
        lines = []
        if columns:
            lines.append(",".join(columns))
            lines += [",".join(row[c] for c in columns) for row in rows]
        atomic_write_text(self.csv_path, "".join(line + "\n" for line in lines))

    def validate(self, epoch, step):
        """Validate after epoch `epoch` (global step `step`); returns the means."""
        netG = self.generator()
        scored = self._as_evaluated(netG)
        means = validation_means(scored, self.pairs, self.cfg)
        scored.set_train(True)
        rows = self.read()
        row = {"epoch": str(epoch), "step": str(step), **{name: f"{value:.6g}" for name, value in means.items()}}
        self._write(row.keys(), rows + [row])
        shown = " ".join(f"{name}={value:.4f}" for name, value in means.items())
        print(f"epoch {epoch}: validation on {len(self.pairs)} pairs: {shown}", flush=True)
        if is_better(means[self.metric], self.best, self.metric):
            self.best = means[self.metric]
            self._save_best(netG, epoch, step)
        self.plot()
        return means

    def _as_evaluated(self, netG):
        """`netG` as eval.py translates with this --bn_stats: itself (running statistics), or for
        image statistics a copy with `netG`'s weights, since translating with batch statistics
        also moves the running averages, which checkpoints keep."""
        if not per_image_statistics(self.cfg):
            return netG
        self.per_image_copy = use_image_statistics(registry.generator_copy(
            self.cfg, {p.name: p for p in netG.get_parameters()}, self.per_image_copy))
        return self.per_image_copy

    def _save_best(self, netG, epoch, step):
        cfg = self.cfg
        save_generator(netG, self.best_path, cfg, self.palette)
        atomic_write_text(self.record_path, json.dumps(
            {"epoch": epoch, "step": step, "metric": self.metric, "value": self.best,
             "checkpoint": BEST_CKPT}, indent=1) + "\n")
        print(f"epoch {epoch}: best {self.metric} so far ({self.best:.4f}): saved {BEST_CKPT}", flush=True)

    def plot(self):
        """val_curve.png: one panel per metric over the epochs, the best value of --best_metric
        so far drawn as a dashed line."""
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        from matplotlib.ticker import MaxNLocator
        rows = self.read()
        names = [name for name in rows[0] if name not in ("epoch", "step")]
        epochs = [int(row["epoch"]) for row in rows]
        columns = min(4, len(names))
        lines = math.ceil(len(names) / columns)
        fig, axes = plt.subplots(lines, columns, figsize=(3.2 * columns, 2.6 * lines), squeeze=False)
        for axis, name in zip(axes.ravel(), names):
            values = [float(row[name]) for row in rows]
            axis.plot(epochs, values, marker="o", markersize=3, linewidth=1)
            direction = f" ({'lower' if BEST_METRICS[name] else 'higher'} is better)" if name in BEST_METRICS else ""
            axis.set_title(name + direction, fontsize=8)
            axis.xaxis.set_major_locator(MaxNLocator(integer=True))
            if name == self.metric and self.best is not None:
                axis.axhline(self.best, color="tab:green", linestyle="--", linewidth=0.8, label="best")
                axis.legend(fontsize=7)
            axis.set_xlabel("epoch", fontsize=8)
            axis.grid(alpha=0.3)
        for axis in axes.ravel()[len(names):]:
            axis.axis("off")
        fig.tight_layout()
        save_figure(fig, os.path.join(self.cfg.loss_show_dir, CURVE_FILE), dpi=90)
