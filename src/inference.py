"""Translating images of any size, the same way for the checkpoint (eval.py), an exported MINDIR
(predict.py) and the 310 flow (preprocess/postprocess).

The generators are fully convolutional, so each image is translated at its own resolution:
reflect-padded to sides the network takes (multiples of its size unit), translated, cropped
back. An image larger than the tile size is cut into overlapping tiles whose predictions are
blended with a smooth window (a sin^2 ramp over each overlap, weights summing to one across a
seam), so that no tile border shows. `--inference_size N` keeps the old behaviour: resize to
N x N, translate, resize back.
"""
import math
from dataclasses import asdict, dataclass
from typing import Optional

import numpy as np
from mindspore import Tensor

from src.dataset.pairs import load_input
from src.dataset.transforms import resize_chw
from src.utils.errors import UserError
from src.utils.progress import progress_bar

# --tile_overlap's default, as a share of the tile.
DEFAULT_OVERLAP_SHARE = 8


@dataclass(frozen=True)
class Tiling:
    """How images are cut for the network: sides are multiples of `unit`; an image side longer
    than `tile_size` is covered by tiles of that size overlapping by at least `overlap`;
    `exact`: every tile is exactly tile_size (a graph exported at one size);
    `inference_size`: resize to that square instead (no padding, no tiles)."""
    unit: int
    tile_size: int
    overlap: int
    exact: bool = False
    inference_size: Optional[int] = None

    def to_dict(self):
        return asdict(self)


def make_tiling(unit, tile_size, overlap=None, inference_size=None, exact=False):
    """A checked Tiling; sizes the network cannot take are a one-line UserError naming the flag."""
    if inference_size is not None and inference_size % unit:
        raise UserError(f"--inference_size {inference_size}: must be a multiple of {unit}, the size "
                        "unit of this network")
    if tile_size % unit:
        raise UserError(f"--tile_size {tile_size}: must be a multiple of {unit}, the size unit of this "
                        f"network (e.g. {max(unit, tile_size // unit * unit)})")
    if overlap is None:
        overlap = min(tile_size // DEFAULT_OVERLAP_SHARE, tile_size - unit)
    if overlap * 2 >= tile_size or tile_size - overlap < unit:
        raise UserError(f"--tile_overlap {overlap}: must be below half of --tile_size {tile_size} and at "
                        f"most {tile_size - unit} (tiles start on multiples of the size unit {unit})")
    return Tiling(unit, tile_size, overlap, exact, inference_size)


def tiling_from_flags(cfg, unit, static_size=None):
    """The Tiling of --tile_size/--tile_overlap/--inference_size for a network of size unit
    `unit`; a graph of one static size takes tiles of exactly that size."""
    if static_size is None:
        return make_tiling(unit, cfg.tile_size, cfg.tile_overlap, cfg.inference_size)
    if cfg.inference_size not in (None, static_size):
        raise UserError(f"--inference_size {cfg.inference_size}: this model was exported for "
                        f"{static_size}x{static_size} inputs only")
    return make_tiling(unit, static_size, cfg.tile_overlap, cfg.inference_size, exact=True)


def card_tiling(card, cfg):
    """How predict.py and the 310 flow cut images for an exported graph with model card `card`
    (--tile_size, --tile_overlap, --inference_size of `cfg`; a static graph takes tiles of
    exactly its size)."""
    return tiling_from_flags(cfg, card["size_unit"], card["input_shape"][2])


@dataclass(frozen=True)
class Layout:
    """Where one image's tiles lie: the image (height x width) padded by `pad` (top, bottom,
    left, right) and cut at rows `tops` and columns `lefts` into tiles of `tile` (h, w); or,
    with `resized`, resized to `tile` whole."""
    height: int
    width: int
    pad: tuple
    tops: tuple
    lefts: tuple
    tile: tuple
    resized: bool = False

    @property
    def count(self):
        return len(self.tops) * len(self.lefts)


def _padded_length(length, tiling):
    """Padded to a multiple of the size unit (and to a whole tile for exact tiles)."""
    padded = -(-length // tiling.unit) * tiling.unit
    return max(padded, tiling.tile_size) if tiling.exact else padded


def tile_starts(length, tile, overlap, unit):
    """Starts of tiles covering [0, length), neighbours overlapping by >= overlap. Starts are
    multiples of `unit`: a network that downsamples by `unit` then sees every tile on the same
    pixel grid as the whole image, so tiles agree with one another and with it."""
    if length <= tile:
        return (0,)
    count = math.ceil((length - overlap) / (tile - overlap))
    while True:
        starts = [round(k * (length - tile) / (count - 1) / unit) * unit for k in range(count)]
        if max(np.diff(starts)) <= tile - overlap:
            return tuple(sorted(set(starts)))
        count += 1


def layout_for(height, width, tiling, name="image"):
    """The Layout of a height x width image; one too small for padding to make sense, or an
    empty one, is a UserError naming `name`."""
    if height == 0 or width == 0:
        raise UserError(f"{name}: empty image ({width}x{height})")
    if tiling.inference_size:
        size = tiling.inference_size
        return Layout(height, width, (0, 0, 0, 0), (0,), (0,), (size, size), resized=True)
    padded = (_padded_length(height, tiling), _padded_length(width, tiling))
    if height * 2 < padded[0] or width * 2 < padded[1]:
        raise UserError(f"{name}: {width}x{height} is less than half the {padded[1]}x{padded[0]} this "
                        f"network takes; translate it resized with --inference_size {tiling.unit}")
    pad = ((padded[0] - height) // 2, (padded[0] - height + 1) // 2,
           (padded[1] - width) // 2, (padded[1] - width + 1) // 2)
    tile = (min(padded[0], tiling.tile_size), min(padded[1], tiling.tile_size))
    return Layout(height, width, pad, tile_starts(padded[0], tile[0], tiling.overlap, tiling.unit),
                  tile_starts(padded[1], tile[1], tiling.overlap, tiling.unit), tile)


def split(image, layout):
    """The CHW tiles of `image` (row by row), padded by reflection as `layout` says."""
    if layout.resized:
        return [resize_chw(image, layout.tile)]
    top, bottom, left, right = layout.pad
    padded = np.pad(image, ((0, 0), (top, bottom), (left, right)), mode="reflect") if any(layout.pad) else image
    height, width = layout.tile
    return [np.ascontiguousarray(padded[:, y:y + height, x:x + width]) for y in layout.tops for x in layout.lefts]


def _ramp(overlap):
    """sin^2 from near 0 to near 1 over `overlap` pixels; ramp + reversed ramp == 1."""
    return np.sin(np.pi / 2 * (np.arange(overlap) + 0.5) / overlap) ** 2


def _window(starts, start, tile, overlap):
    """1-D blending weights of the tile at `start`: ramps on the sides that have a neighbour."""
    weights = np.ones(tile, np.float64)
    if overlap:
        if start != starts[0]:
            weights[:overlap] = _ramp(overlap)
        if start != starts[-1]:
            weights[-overlap:] = _ramp(overlap)[::-1]
    return weights


def merge(outputs, layout, overlap):
    """The prediction at the image's own size from its tiles' outputs (CHW each)."""
    if layout.resized:
        return resize_chw(np.asarray(outputs[0], np.float32), (layout.height, layout.width))
    top, _, left, _ = layout.pad
    if layout.count == 1:
        return np.ascontiguousarray(outputs[0][:, top:top + layout.height, left:left + layout.width])
    rows, columns = layout.tops[-1] + layout.tile[0], layout.lefts[-1] + layout.tile[1]
    total = np.zeros((outputs[0].shape[0], rows, columns), np.float32)
    weight = np.zeros((rows, columns), np.float32)
    tiles = iter(outputs)
    for y in layout.tops:
        row_weights = _window(layout.tops, y, layout.tile[0], overlap)
        for x in layout.lefts:
            window = np.outer(row_weights, _window(layout.lefts, x, layout.tile[1], overlap)).astype(np.float32)
            total[:, y:y + layout.tile[0], x:x + layout.tile[1]] += next(tiles) * window
            weight[y:y + layout.tile[0], x:x + layout.tile[1]] += window
    total /= weight
    return total[:, top:top + layout.height, left:left + layout.width]


# A tile bar from this many tiles on: fewer are done before a bar would say anything useful.
MANY_TILES = 10


def forward_batched(forward, tiles, batch_size, before_batch=None, show_bar=False):
    """Outputs of `forward` (NCHW -> NCHW array) for every tile, up to batch_size equal-shaped tiles
    at a time. `before_batch()`, if given, is called before each batch: a caller that must give
    up (a server's time budget) raises there, so work stops at a tile boundary. `show_bar`: a
    bar over the tiles when there are MANY_TILES or more (off by default: the server and
    validation stay quiet)."""
    outputs, start = [], 0
    with progress_bar(total=len(tiles), desc="tiles", unit="tile", shown=show_bar and len(tiles) >= MANY_TILES,
                      transient=True) as bar:
        while start < len(tiles):
            if before_batch:
                before_batch()
            end = start + 1
            while end < len(tiles) and end - start < batch_size and tiles[end].shape == tiles[start].shape:
                end += 1
            outputs.extend(forward(np.stack(tiles[start:end])))
            bar.update(end - start)
            start = end
    return outputs


def translate(images, forward, batch_size, tiling, names=None, before_batch=None, show_tiles=False):
    """Predictions (CHW, each at its image's size) of CHW `images`; `forward` maps an NCHW batch to
    the network's NCHW output; `before_batch` as in forward_batched, `show_tiles` its `show_bar`."""
    names = names or ["image"] * len(images)
    layouts = [layout_for(*image.shape[1:], tiling, name) for image, name in zip(images, names)]
    outputs = forward_batched(forward, [tile for image, layout in zip(images, layouts) for tile in split(image, layout)],
                              batch_size, before_batch, show_tiles)
    predictions, offset = [], 0
    for layout in layouts:
        predictions.append(merge(outputs[offset:offset + layout.count], layout, tiling.overlap))
        offset += layout.count
    return predictions


def _check_finite(prediction, pair):
    if not np.all(np.isfinite(prediction)):
        raise UserError(f"the model produced NaN or inf for {pair.name}: the checkpoint is damaged or "
                        "training diverged")


def predictions(pairs, cfg, forward, batch_size, tiling, before_batch=None, show_tiles=False):
    """Yield (pair, input, prediction, original size) per pair, both at the input's own size;
    `before_batch` as in forward_batched, `show_tiles` its `show_bar`."""
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        sources = [load_input(pair, cfg) for pair in chunk]
        outputs = translate(sources, forward, batch_size, tiling, [pair.input_path for pair in chunk], before_batch,
                            show_tiles)
        for pair, source, prediction in zip(chunk, sources, outputs):
            _check_finite(prediction, pair)
            yield pair, source, prediction, source.shape[1:]


def network_forward(netG):
    """NCHW batch -> NCHW prediction with a generator in inference mode."""
    return lambda batch: netG(Tensor(batch)).asnumpy()


def graph_forward(graph, batch_size):
    """As `network_forward` for an exported graph of fixed batch size: a short batch is padded with
    copies of its first image."""
    def forward(batch):
        padded = np.concatenate([batch, np.repeat(batch[:1], batch_size - len(batch), axis=0)])
        return graph(Tensor(padded)).asnumpy()[:len(batch)]
    return forward
