"""Per-step learning-rate schedules, as arrays the MindSpore optimisers index by global step."""
import math

import numpy as np


def epoch_factor(policy, epoch, n_epochs, n_epochs_decay):
    """Multiplier of the initial rate during `epoch` (0-based) for the epoch-wise policies."""
    if policy == "constant":
        return 1.0
    if policy == "linear":
        # The PyTorch pix2pix rule: constant for n_epochs, then to 0 over n_epochs_decay.
        return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)
    raise ValueError(f"unknown lr_policy {policy!r}")


def learning_rates(policy, base_lr, steps_per_epoch, n_epochs, n_epochs_decay, total_epochs):
    """float32 array of one learning rate per step for `total_epochs` epochs.

    The schedule spans n_epochs + n_epochs_decay epochs whatever `total_epochs` is, so a run
    stopped early and resumed later follows the same rates as one that never stopped.
    """
    horizon = steps_per_epoch * (n_epochs + n_epochs_decay)
    total_steps = steps_per_epoch * total_epochs
    if policy == "cosine":
        step = np.minimum(np.arange(total_steps, dtype=np.float64), horizon)
        rates = 0.5 * base_lr * (1.0 + np.cos(math.pi * step / horizon))
    else:
        rates = np.repeat([base_lr * max(0.0, epoch_factor(policy, epoch, n_epochs, n_epochs_decay))
                           for epoch in range(total_epochs)], steps_per_epoch)
    return rates.astype(np.float32)
