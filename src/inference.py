"""Predictions for a list of pairs, batched, from the checkpoint network or an exported MINDIR."""
import numpy as np
from mindspore import Tensor

from src.dataset.pairs import load_eval_pair
from src.utils.errors import UserError


def _batches(pairs, cfg, batch_size):
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start:start + batch_size]
        loaded = [load_eval_pair(pair, cfg) for pair in chunk]
        yield chunk, np.stack([source for source, _, _ in loaded]), [size for _, _, size in loaded]


def _check_finite(prediction, chunk):
    if not np.all(np.isfinite(prediction)):
        raise UserError(f"the model produced NaN or inf for {chunk[0].name}...: the checkpoint is "
                        "damaged or training diverged")


def network_predictions(netG, pairs, cfg):
    """Yield (pair, input, prediction, original size), running `netG` on cfg.batch_size images."""
    for chunk, sources, sizes in _batches(pairs, cfg, cfg.batch_size):
        prediction = netG(Tensor(sources)).asnumpy()
        _check_finite(prediction, chunk)
        yield from zip(chunk, sources, prediction, sizes)


def graph_predictions(graph, batch_size, pairs, cfg):
    """As `network_predictions` for an exported graph of fixed batch size (the last batch is
    padded with copies of its first image)."""
    for chunk, sources, sizes in _batches(pairs, cfg, batch_size):
        padded = np.concatenate([sources, np.repeat(sources[:1], batch_size - len(sources), axis=0)])
        prediction = graph(Tensor(padded)).asnumpy()[:len(chunk)]
        _check_finite(prediction, chunk)
        yield from zip(chunk, sources, prediction, sizes)
