"""Facade-like label maps and the pictures they stand for: a small label-to-photo task, with its
legend, for the drawing canvas's tests and screenshots (bench/draw_page.py).

Each label map is a facade (with a cornice, rows of windows, some with balconies, and a door) on
a background; its picture paints each label with its own texture. Pairs are saved as aligned AB
JPEGs, as facades ships them, so the label colours carry JPEG's noise.

    python -m src.dataset.toy_labels --out DIR [--count N] [--size S] [--examples K]

writes DIR/train/*.jpg, DIR/legend.yaml (label name -> colour, for --palette) and DIR/examples/
(K label maps alone, as PNG, for serve.py --examples).
"""
import argparse
import os

import numpy as np
from PIL import Image

from src.utils.files import atomic_write_text
from src.utils.flag_types import non_negative_int, positive_int

# Label name -> colour; the first is the background (the eraser's colour on the served page).
LEGEND = {"background": (0, 0, 170), "facade": (0, 85, 255), "cornice": (255, 0, 0), "window": (0, 255, 255),
          "balcony": (170, 255, 85), "door": (255, 170, 0)}
# Each label's picture: a base colour and how much texture noise it carries.
LOOKS = {"background": ((150, 190, 230), 6), "facade": ((205, 180, 140), 18), "cornice": ((235, 225, 205), 8),
         "window": ((45, 55, 70), 10), "balcony": ((110, 110, 115), 25), "door": ((95, 60, 35), 12)}
JPEG_QUALITY = 92
MIN_SIZE = 32


def label_map(rng, size):
    """(size x size) label indices into LEGEND of one random facade."""
    names = list(LEGEND)
    labels = np.zeros((size, size), np.uint8)
    left, right = rng.integers(size // 16, size // 5), size - rng.integers(size // 16, size // 5)
    top = rng.integers(size // 10, size // 4)
    labels[top:, left:right] = names.index("facade")
    labels[top:top + max(2, size // 16), left:right] = names.index("cornice")
    columns, rows = rng.integers(2, 5), rng.integers(2, 4)
    cell_w, cell_h = (right - left) / columns, (size - top - size // 8) / (rows + 1)
    for row in range(rows):
        for column in range(columns):
            x0, y0 = int(left + (column + 0.25) * cell_w), int(top + size // 12 + (row + 0.2) * cell_h)
            x1, y1 = int(left + (column + 0.75) * cell_w), int(top + size // 12 + (row + 0.8) * cell_h)
            labels[y0:y1, x0:x1] = names.index("window")
            if rng.random() < 0.6:
                labels[y1:y1 + max(2, size // 20), x0 - 1:x1 + 1] = names.index("balcony")
    door = int(left + (right - left) * rng.uniform(0.3, 0.6))
    labels[size - size // 5:, door:door + max(3, size // 10)] = names.index("door")
    return labels


def colours_of(labels):
    return np.array(list(LEGEND.values()), np.uint8)[labels]


def picture_of(labels, rng):
    """The 'photo' of a label map: each label's look, textured, lit from above."""
    names = list(LEGEND)
    base = np.array([LOOKS[name][0] for name in names], np.float32)[labels]
    noise = np.array([LOOKS[name][1] for name in names], np.float32)[labels]
    texture = rng.normal(0, 1, labels.shape)[:, :, None] * noise[:, :, None]
    light = np.linspace(1.08, 0.9, labels.shape[0], dtype=np.float32)[:, None, None]
    return np.clip(base * light + texture, 0, 255).astype(np.uint8)


def build(out, count, size, examples, seed=0):
    rng = np.random.default_rng(seed)
    os.makedirs(os.path.join(out, "train"), exist_ok=True)
    os.makedirs(os.path.join(out, "examples"), exist_ok=True)
    for index in range(count + examples):
        labels = label_map(rng, size)
        if index < count:
            pair = np.concatenate([colours_of(labels), picture_of(labels, rng)], axis=1)
            Image.fromarray(pair).save(os.path.join(out, "train", f"{index:03d}.jpg"), quality=JPEG_QUALITY,
                                       subsampling=0)
        else:
            Image.fromarray(colours_of(labels)).save(os.path.join(out, "examples", f"facade_{index - count}.png"))
    atomic_write_text(os.path.join(out, "legend.yaml"), "".join(
        f'{name}: "#{r:02x}{g:02x}{b:02x}"\n' for name, (r, g, b) in LEGEND.items()))
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description="Write a toy label-to-photo dataset (facade-like label maps as "
                                                 "aligned AB JPEGs), its legend and example label maps.")
    parser.add_argument("--out", required=True, help="folder to write train/, legend.yaml and examples/ into")
    parser.add_argument("--count", type=positive_int, default=200, help="training pairs (default: %(default)s)")
    parser.add_argument("--size", type=positive_int, default=64,
                        help=f"side of each label map in pixels, at least {MIN_SIZE} (default: %(default)s)")
    parser.add_argument("--examples", type=non_negative_int, default=3, help="label maps alone, for serve.py --examples "
                                                                "(default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    args = parser.parse_args(argv)
    if args.size < MIN_SIZE:
        parser.error(f"--size {args.size}: at least {MIN_SIZE} pixels, room for a facade's windows and door")
    build(args.out, args.count, args.size, args.examples, args.seed)
    print(f"{args.count} pairs in {os.path.join(args.out, 'train')}, legend in {os.path.join(args.out, 'legend.yaml')}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
