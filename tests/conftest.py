"""Fixtures that make tiny paired data on the fly, and a helper to run entry points."""
import os
import subprocess
import sys

import src  # noqa: F401  (first: chooses oneDNN's CPU ISA and the log level before MindSpore loads)

import mindspore as ms
import numpy as np
import pytest
from PIL import Image

# Everything runs in graph mode, as the entry points do (src/utils/device.py).
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_device("CPU")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def colour_transform(a):
    """A learnable, fixed per-pixel map from input to target: channel swap and inversion."""
    return 255 - a[:, :, ::-1]


def write_ab_folder(folder, count, size=40, seed=0, channels=3, transform=colour_transform, width=None):
    """`count` AB images (height `size`, each half `width` wide, default `size`: square halves)
    whose right half is `transform` of the smooth left half."""
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(seed)
    width = width or size
    for index in range(count):
        coarse = (rng.random((size // 8, width // 8, 3)) * 255).astype(np.uint8)
        left = np.asarray(Image.fromarray(coarse).resize((width, size), Image.BILINEAR))
        right = transform(left)
        ab = np.concatenate([left, right], axis=1)
        image = Image.fromarray(np.ascontiguousarray(ab))
        image = image.convert("L") if channels == 1 else image
        image.save(os.path.join(folder, f"{index:03d}.png"))
    return folder


@pytest.fixture
def ab_dir(tmp_path):
    return write_ab_folder(str(tmp_path / "ab"), 4)


def tiny_train_args(data_dir, out_dir, *extra):
    """Flags for a fast 32-px CPU run writing everything under `out_dir`."""
    return ["--train_data_dir", str(data_dir), "--crop_size", "32", "--load_size", "36",
            "--ngf", "8", "--ndf", "8", "--n_epochs", "1", "--n_epochs_decay", "1",
            "--num_parallel_workers", "1", "--print_interval", "1",
            "--ckpt_dir", os.path.join(out_dir, "ckpt"),
            "--train_fakeimg_dir", os.path.join(out_dir, "img"),
            "--loss_show_dir", os.path.join(out_dir, "loss"), *extra]


def run_entry(script, args, timeout=600, env=None):
    """Run `python <script> args` in the repo; returns the CompletedProcess (text output)."""
    return subprocess.run([sys.executable, os.path.join(REPO, script), *map(str, args)],
                          cwd=REPO, capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})


def copy_card_claiming(card_source, path):
    """Copy the model card `card_source` beside `path`, made to claim that file (its SHA-256 and
    its own checksum rewritten): how a test gets past the card's checks to the loader's own."""
    import json
    from src.model_card import card_digest, file_sha256
    with open(card_source, encoding="utf-8") as handle:
        card = json.load(handle)
    card["sha256"] = file_sha256(path)
    card["card_sha256"] = card_digest(card)
    with open(str(path) + ".json", "w", encoding="utf-8") as handle:
        json.dump(card, handle)
