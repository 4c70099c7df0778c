"""The quickstart's data: grey -> colour pairs cut from photographs that scikit-image ships.

Whole photographs are held out for testing, so no test crop comes from a training photograph.
Licences (from scikit-image's docstrings): astronaut, rocket and hubble_deep_field are public
domain (NASA, SpaceX); coffee and chelsea are CC0 by their photographers; retina is CC0;
immunohistochemistry has no known copyright restrictions.

    python -m src.dataset.quickstart_data build --out DIR [--crops N] [--size S]
    python -m src.dataset.quickstart_data picture --collages DIR --out imgs/quickstart.png
"""
import argparse
import os

import numpy as np
from PIL import Image

from src.dataset.collages import stack_labelled_strips
from src.dataset.io import write_image
from src.utils.files import atomic_path

TRAIN_PHOTOS = ("astronaut", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
TEST_PHOTOS = ("chelsea", "coffee")


def photograph(name, shorter_side=256):
    """An RGB photograph from scikit-image, scaled so its shorter side is `shorter_side`."""
    from skimage import data
    image = Image.fromarray(getattr(data, name)()).convert("RGB")
    scale = shorter_side / min(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.BICUBIC)


def ab_crops(image, count, size, rng):
    """`count` random size x size crops as AB images: grey (as RGB) | colour."""
    crops = []
    for _ in range(count):
        left = int(rng.integers(0, image.width - size + 1))
        top = int(rng.integers(0, image.height - size + 1))
        colour = image.crop((left, top, left + size, top + size))
        grey = colour.convert("L").convert("RGB")
        ab = Image.new("RGB", (2 * size, size))
        ab.paste(grey, (0, 0))
        ab.paste(colour, (size, 0))
        crops.append((ab, grey))
    return crops


def build(out, crops, size, test_crops, seed=0):
    """Each photograph's crops come from its own random stream, so the test pairs do not depend
    on --crops, and fewer training crops are the first of more."""
    splits = (("train", TRAIN_PHOTOS, crops), ("test", TEST_PHOTOS, test_crops))
    for number, (split, names, count) in enumerate(splits):
        for photo, name in enumerate(names):
            rng = np.random.default_rng([seed, number, photo])
            for index, (ab, grey) in enumerate(ab_crops(photograph(name), count, size, rng)):
                for image, folder in ((ab, split), (grey, f"{split}_inputs")):
                    with atomic_path(os.path.join(out, folder, f"{name}_{index:03d}.png")) as tmp:
                        image.save(tmp)
    print(f"{len(TRAIN_PHOTOS) * crops} training and {len(TEST_PHOTOS) * test_crops} test pairs in {out} "
          f"(train: {', '.join(TRAIN_PHOTOS)}; held out: {', '.join(TEST_PHOTOS)})")


def picture(collages, out, rows=4):
    """`rows` of eval.py's collages (input | target | generated | |error|), spread over the sorted
    names, one above the other under one band of column labels, enlarged 2x."""
    names = sorted(os.listdir(collages))
    picks = [names[i * len(names) // rows] for i in range(min(rows, len(names)))]
    strips = [np.asarray(Image.open(os.path.join(collages, name)).convert("RGB")) for name in picks]
    sheet = Image.fromarray(stack_labelled_strips(strips))
    sheet = sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    write_image(out, np.asarray(sheet))
    print(f"results picture: {out}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("build", help="cut the grey -> colour pairs")
    make.add_argument("--out", required=True, help="dataset folder to create")
    make.add_argument("--crops", type=int, default=40, help="training crops per photograph (default: 40)")
    make.add_argument("--test_crops", type=int, default=6, help="test crops per held-out photograph (default: 6)")
    make.add_argument("--size", type=int, default=72, help="crop size in pixels (default: 72)")
    show = commands.add_parser("picture", help="stack evaluation collages into one results picture")
    show.add_argument("--collages", required=True, help="eval.py's collages folder")
    show.add_argument("--out", required=True, help="PNG to write")
    args = parser.parse_args(argv)
    if args.command == "build":
        build(args.out, args.crops, args.size, args.test_crops)
    else:
        picture(args.collages, args.out)


if __name__ == "__main__":
    main()
