"""Labelled image strips of arrays on the network's scale: the evaluation collages, the training
sample grids and the quickstart's picture. They live with the data layer because they show
samples through its one de-normalisation (`model_to_image`)."""
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
    write_image(path, grid)
    return grid
