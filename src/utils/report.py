"""Figures and tables that people read, from plain arrays: the loss log and its curve, and the
science figures of physical arrays with their units."""
import csv
import os

import numpy as np

from src.utils.files import atomic_write_csv, save_figure


def _colour_scale(image, scaling):
    """(colour map, norm): a diverging map centred on 0 for signed fields (magnetograms), a
    logarithmic one for log-scale sides, linear otherwise; `scaling` None: an error map."""
    from matplotlib.colors import LogNorm, Normalize
    if scaling is None:
        return "magma", Normalize(0.0, max(float(np.nanmax(image)) if np.isfinite(image).any() else 0.0, 1e-12))
    if scaling.signed:
        return "RdBu_r", Normalize(scaling.lower, scaling.upper)
    if scaling.logscale:
        return "inferno", LogNorm(10.0 ** scaling.lower, 10.0 ** scaling.upper, clip=True)
    return "inferno", Normalize(scaling.lower, scaling.upper)


def write_science_figure(path, panels):
    """Side-by-side panels of physical 2-D arrays, each with a colour bar labelled with its
    unit, in solar orientation (row 0 at the bottom: origin lower, north up for solar images).
    panels: [(title, HW array, Scaling or None for an error map, unit)]. Written atomically."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(panels), figsize=(3.3 * len(panels), 3.0), squeeze=False)
    for axis, (title, image, scaling, unit) in zip(axes[0], panels):
        cmap, norm = _colour_scale(image, scaling)
        shown = axis.imshow(image, origin="lower", cmap=cmap, norm=norm, interpolation="nearest")
        axis.set_title(title, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
        fig.colorbar(shown, ax=axis, fraction=0.046, pad=0.04).set_label(unit or "no unit given", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=80)


class LossLog:
    """Per-step losses in a CSV that a resumed run continues, and the loss-curve PNG."""

    def __init__(self, directory, loss_names):
        self.path = os.path.join(directory, "losses.csv")
        self.names = list(loss_names)
        os.makedirs(directory, exist_ok=True)

    def start(self, from_step):
        """Keep the rows up to step `from_step` (a resumed run writes the later ones again)."""
        rows = [row for row in self.read() if int(row["step"]) <= from_step] if from_step else []
        atomic_write_csv(self.path, [["step", "epoch"] + self.names]
                         + [[row["step"], row["epoch"]] + [row[n] for n in self.names] for row in rows])

    def append(self, step, epoch, values):
        with open(self.path, "a", newline="", encoding="utf-8") as handle:
            csv.writer(handle).writerow([step, epoch] + [f"{v:.6g}" for v in values])

    def read(self):
        if not os.path.isfile(self.path):
            return []
        with open(self.path, newline="", encoding="utf-8") as handle:
            return list(csv.DictReader(handle))

    def plot(self, png_path):
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        rows = self.read()
        if not rows:
            return
        steps = [int(row["step"]) for row in rows]
        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        groups = ([n for n in self.names if n.startswith("loss_D")],
                  [n for n in self.names if not n.startswith("loss_D")])
        for axis, names in zip(axes, groups):
            for name in names:
                axis.plot(steps, [float(row[name]) for row in rows], label=name, linewidth=1)
            axis.set_xlabel("step")
            axis.legend()
            axis.grid(alpha=0.3)
        axes[0].set_title("discriminator")
        axes[1].set_title("generator")
        fig.tight_layout()
        save_figure(fig, png_path, dpi=100)
