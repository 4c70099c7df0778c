"""Pictures and tables that people read: sample grids and loss curves."""
import csv
import os

import numpy as np

from src.dataset.io import write_image
from src.dataset.normalize import model_to_image


def _as_rgb(hwc):
    return np.repeat(hwc, 3, axis=2) if hwc.shape[2] == 1 else hwc


# Height of the band of column labels above a labelled strip (the same at every panel size, so
# that a stack of labelled strips can keep the first one's labels only).
LABEL_BAND = 16
# Column labels of the evaluation collages and of the training sample grids.
COLLAGE_LABELS = ("input", "target", "generated", "|error|")
INPUT_ONLY_LABELS = ("input", "generated")
SAMPLE_GRID_LABELS = ("input", "generated", "target")


def _label_font(labels, width):
    """Pillow's bundled font at the largest size up to 12 px at which every label fits `width`."""
    from PIL import ImageFont
    for size in range(12, 5, -1):
        font = ImageFont.load_default(size)
        if max(font.getlength(label) for label in labels) <= width - 2:
            return font
    return font


def label_band(labels, widths, gap):
    """A white LABEL_BAND-high uint8 RGB band with each label centred over its panel."""
    from PIL import Image, ImageDraw
    band = Image.new("RGB", (sum(widths) + gap * (len(widths) - 1), LABEL_BAND), "white")
    draw, font, left = ImageDraw.Draw(band), _label_font(labels, min(widths)), 0
    for label, width in zip(labels, widths):
        draw.text((left + width / 2, LABEL_BAND / 2), label, fill="black", font=font, anchor="mm")
        left += width + gap
    return np.asarray(band)


def image_row(panels_chw, gap=4, labels=None):
    """Side-by-side uint8 RGB strip of CHW arrays in [-1, 1] (grey panels shown as grey RGB),
    under a band of column `labels` if given."""
    images = [_as_rgb(model_to_image(panel)) for panel in panels_chw]
    height = max(image.shape[0] for image in images)
    strip = []
    for image in images:
        padded = np.full((height, image.shape[1], 3), 255, np.uint8)
        padded[:image.shape[0]] = image
        strip += [padded, np.full((height, gap, 3), 255, np.uint8)]
    strip = np.concatenate(strip[:-1], axis=1)
    if labels is None:
        return strip
    return np.concatenate([label_band(labels, [image.shape[1] for image in images], gap), strip], axis=0)


def stack_rows(rows, gap=4):
    """Rows (uint8 RGB HWC) one above the other, `gap` white pixels between, narrower ones padded
    white on the right."""
    width = max(row.shape[1] for row in rows)
    parts = []
    for row in rows:
        padded = np.full((row.shape[0], width, 3), 255, np.uint8)
        padded[:, :row.shape[1]] = row
        parts += [padded, np.full((gap, width, 3), 255, np.uint8)]
    return np.concatenate(parts[:-1], axis=0)


def stack_labelled_strips(strips, gap=4):
    """Labelled strips one above the other, the column labels kept once, at the top."""
    return stack_rows([strips[0]] + [strip[LABEL_BAND:] for strip in strips[1:]], gap)


def save_sample_grid(path, inputs, fakes, targets):
    """One row per sample: input | generated | target (NCHW batches in [-1, 1]), labelled once;
    returns the grid."""
    rows = [image_row(panels, labels=None if number else SAMPLE_GRID_LABELS)
            for number, panels in enumerate(zip(inputs, fakes, targets))]
    grid = stack_rows(rows)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    write_image(path, grid)
    return grid


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
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".{base}.{os.getpid()}.tmp.png")
    fig.savefig(tmp, dpi=80)
    plt.close(fig)
    os.replace(tmp, path)


class LossLog:
    """Per-step losses in a CSV that a resumed run continues, and the loss-curve PNG."""

    def __init__(self, directory, loss_names):
        self.path = os.path.join(directory, "losses.csv")
        self.names = list(loss_names)
        os.makedirs(directory, exist_ok=True)

    def start(self, from_step):
        """Keep the rows up to step `from_step` (a resumed run writes the later ones again)."""
        rows = [row for row in self.read() if int(row["step"]) <= from_step] if from_step else []
        with open(self.path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["step", "epoch"] + self.names)
            writer.writerows([[row["step"], row["epoch"]] + [row[n] for n in self.names] for row in rows])

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
        tmp = png_path + ".tmp.png"
        fig.savefig(tmp, dpi=100)
        plt.close(fig)
        os.replace(tmp, png_path)
