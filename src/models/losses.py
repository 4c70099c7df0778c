"""Objectives of Pix2Pix: the adversarial loss on PatchGAN logits and the L1 reconstruction loss."""
import mindspore.nn as nn
import mindspore.ops as ops


class GANLoss(nn.Cell):
    """Mean over all patches of the loss of `logits` against an all-real or all-fake target.

    vanilla: sigmoid cross-entropy on logits (the paper's log D); lsgan: least squares.
    """

    def __init__(self, gan_mode="vanilla"):
        super().__init__()
        if gan_mode not in ("vanilla", "lsgan"):
            raise ValueError(f"unknown gan_mode {gan_mode!r}")
        self.vanilla = gan_mode == "vanilla"

    def construct(self, logits, target_is_real):
        target = ops.ones_like(logits) if target_is_real else ops.zeros_like(logits)
        if self.vanilla:
            return ops.binary_cross_entropy_with_logits(logits, target, ops.ones_like(logits),
                                                        ops.ones_like(logits))
        return ops.mean(ops.square(logits - target))


def l1_loss(prediction, target):
    return ops.mean(ops.abs(prediction - target))
