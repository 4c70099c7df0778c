"""The training data pipeline on mindspore.dataset: resize (or, with --resize_or_crop crop, native-
scale edge padding and rotation), shared random crop and flip, sharding.

Every random choice is drawn from a generator seeded by (seed, epoch, sample index), not from
a global RNG, so a batch's content does not depend on worker count, on restarts, or on how
many ranks share the work. Each rank takes its own contiguous block of every global batch:
with W ranks of batch b, global batch k holds samples [k*W*b, (k+1)*W*b) of the epoch's
permutation, and rank r gets [k*W*b + r*b, k*W*b + (r+1)*b). An epoch whose length is not a
multiple of W*b is padded with its first samples, so every sample is seen at least once.
"""
import math

import numpy as np

from src.dataset.pairs import load_pair
from src.dataset.transforms import crop_and_flip, pad_and_rotate, resize_chw
from src.utils.errors import UserError


def steps_per_epoch(num_samples, batch_size, rank_size):
    return math.ceil(num_samples / (batch_size * rank_size))


def epoch_order(num_samples, seed, epoch, batch_size, rank_size, rank):
    """This rank's sample indices for one epoch (see the module docstring)."""
    order = np.random.default_rng([seed, epoch]).permutation(num_samples)
    global_batch = batch_size * rank_size
    padded = steps_per_epoch(num_samples, batch_size, rank_size) * global_batch
    order = np.resize(order, padded)  # np.resize repeats from the start
    blocks = order.reshape(-1, rank_size, batch_size)
    return blocks[:, rank, :].reshape(-1)


class TrainSource:
    """Random-access source: ticket = epoch * N + index -> (input, target, dropout noise)."""

    def __init__(self, pairs, cfg, noise_size):
        self.pairs = pairs
        self.cfg = cfg
        self.noise_size = max(1, noise_size)  # a 1-element dummy when G has no dropout

    def __len__(self):
        """The ticket range (mindspore.dataset checks sampled ids against it)."""
        return len(self.pairs) * self.cfg.epoch_num

    def sample(self, ticket):
        epoch, index = divmod(int(ticket), len(self.pairs))
        rng = np.random.default_rng([self.cfg.seed, epoch, index])
        # Missing target pixels stay NaN (a resize widens them by its kernel's reach) until the
        # training step, which fills them and leaves them out of the CC loss.
        source, target = load_pair(self.pairs[index], self.cfg, missing_as_nan=True)
        if self.cfg.resize_or_crop == "crop":
            source, target = pad_and_rotate(source, target, rng, self.cfg.padding_size, self.cfg.max_rotation_angle)
        else:
            source = resize_chw(source, self.cfg.load_size)
            target = resize_chw(target, self.cfg.load_size)
        source, target = crop_and_flip(source, target, rng, self.cfg.crop_size, not self.cfg.no_flip,
                                       self.cfg.polarity_flip)
        noise = rng.random(self.noise_size, dtype=np.float32)
        return source, target, noise

    __getitem__ = sample


def train_tickets(num_samples, cfg, rank_size, rank, start_step, total_epochs):
    """The ordered tickets this rank reads from global step `start_step` to the end of training."""
    per_epoch = steps_per_epoch(num_samples, cfg.batch_size, rank_size)
    start_epoch, step_in_epoch = divmod(start_step, per_epoch)
    tickets = []
    for epoch in range(start_epoch, total_epochs):
        order = epoch_order(num_samples, cfg.seed, epoch, cfg.batch_size, rank_size, rank)
        if epoch == start_epoch:
            order = order[step_in_epoch * cfg.batch_size:]
        tickets.extend(epoch * num_samples + order)
    return tickets


def check_native_sizes(pairs, cfg):
    """Under --resize_or_crop crop every image, padded, must hold a --crop_size crop."""
    for pair in pairs:
        height, width = load_pair(pair, cfg)[0].shape[1:]
        if min(height, width) + 2 * cfg.padding_size < cfg.crop_size:
            raise UserError(f"{pair.name}: {width}x{height} with --padding_size {cfg.padding_size} is smaller "
                            f"than --crop_size {cfg.crop_size} (--resize_or_crop crop does not resize)")


def train_dataset(pairs, cfg, noise_size, rank_size=1, rank=0, start_step=0):
    """Batched mindspore.dataset yielding (input, target, noise) from `start_step` to the end."""
    import mindspore.dataset as ds
    if cfg.resize_or_crop == "crop":
        check_native_sizes(pairs, cfg)
    source = TrainSource(pairs, cfg, noise_size)
    tickets = train_tickets(len(pairs), cfg, rank_size, rank, start_step, cfg.epoch_num)
    dataset = ds.GeneratorDataset(source, column_names=["input", "target", "noise"],
                                  sampler=tickets, num_parallel_workers=cfg.num_parallel_workers,
                                  python_multiprocessing=False)
    return dataset.batch(cfg.batch_size, drop_remainder=True)
