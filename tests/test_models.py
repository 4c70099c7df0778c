"""Networks, losses and the compiled D-then-G training step."""
import mindspore as ms
import numpy as np
import pytest
from mindspore import Tensor

from src.config import parse_args
from src.models import registry
from src.models.generators import UnetGenerator, unet_depth
from src.utils.errors import UserError
from src.utils.lr import learning_rates


def make_cfg(size, *extra):
    return parse_args("train", ["--train_data_dir", "unused", "--crop_size", str(size),
                                "--load_size", str(size), "--ngf", "8", "--ndf", "8", *extra])


def rand(*shape, seed=0):
    return Tensor(np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32))


@pytest.mark.parametrize("size,depth", [(256, 8), (128, 7), (64, 6), (32, 5), (512, 8), (96, 5)])
def test_unet_depth_follows_crop_size(size, depth):
    assert unet_depth(size) == depth


@pytest.mark.parametrize("size", [16, 48, 100, 0])
def test_unet_rejects_sizes_it_cannot_take(size):
    with pytest.raises(UserError, match="multiple of 32"):
        unet_depth(size)


@pytest.mark.parametrize("size", [256, 128, 64, 32])
def test_generator_output_shape_and_range(size):
    netG = registry.build_generator(make_cfg(size))
    netG.set_train(False)
    out = netG(rand(1, 3, size, size)).asnumpy()
    assert out.shape == (1, 3, size, size)
    assert np.abs(out).max() <= 1.0  # tanh output


def test_generator_channels_follow_flags():
    netG = registry.build_generator(make_cfg(32, "--input_nc", "1", "--output_nc", "3"))
    netG.set_train(False)
    assert netG(rand(2, 1, 32, 32)).shape == (2, 3, 32, 32)


def test_patchgan_gives_30x30_logits_at_256():
    netD = registry.build_discriminator(make_cfg(256))
    netD.set_train(False)
    assert netD(rand(1, 3, 256, 256), rand(1, 3, 256, 256, seed=1)).shape == (1, 1, 30, 30)


def test_dropout_masks_follow_the_noise():
    netG = registry.build_generator(make_cfg(64))
    netG.set_train(True)
    x = rand(1, 3, 64, 64)
    size = netG.dropout_noise_size
    assert size > 0
    keep_all, drop_half = Tensor(np.ones((1, size), np.float32)), rand(1, size, seed=3)
    out_keep = netG(x, keep_all).asnumpy()
    assert np.array_equal(out_keep, netG(x, keep_all).asnumpy())  # deterministic given noise
    assert not np.allclose(out_keep, netG(x, drop_half).asnumpy())


def numpy_bce_with_logits(logits, real):
    target = 1.0 if real else 0.0
    return float(np.mean(np.maximum(logits, 0) - logits * target + np.log1p(np.exp(-np.abs(logits)))))


def snapshot(net):
    return {p.name: p.asnumpy().copy() for p in net.get_parameters()}


def restore(net, values):
    for p in net.get_parameters():
        p.set_data(Tensor(values[p.name]))


def build_step(cfg, steps=4):
    netG, netD = registry.build_generator(cfg), registry.build_discriminator(cfg)
    step = registry.build_train_step(cfg, netG, netD, learning_rates("constant", cfg.lr, steps, 1, 0, 1))
    step.set_train(True)
    return netG, netD, step


def test_train_step_updates_both_networks_and_returns_the_loss_formulas():
    cfg = make_cfg(32, "--norm", "instance")
    netG, netD, step = build_step(cfg)
    x, y = rand(1, 3, 32, 32, seed=1), rand(1, 3, 32, 32, seed=2)
    noise = rand(1, max(1, netG.dropout_noise_size), seed=3)
    g_before, d_before = snapshot(netG), snapshot(netD)

    fake = netG(x, noise).asnumpy()
    expected_d_real = numpy_bce_with_logits(netD(x, y).asnumpy(), True)
    expected_d_fake = numpy_bce_with_logits(netD(x, Tensor(fake)).asnumpy(), False)

    loss_D, loss_G, d_real, d_fake, g_gan, g_l1 = [float(v.asnumpy()) for v in step(x, y, noise)]

    assert d_real == pytest.approx(expected_d_real, rel=1e-4)
    assert d_fake == pytest.approx(expected_d_fake, rel=1e-4)
    assert loss_D == pytest.approx(cfg.lambda_D * (expected_d_real + expected_d_fake), rel=1e-4)
    # G's loss is measured through the updated D, on the fake made by G before its update.
    g_after = snapshot(netG)
    restore(netG, g_before)
    expected_g_gan = numpy_bce_with_logits(netD(x, Tensor(fake)).asnumpy(), True)
    expected_g_l1 = float(np.mean(np.abs(fake - y.asnumpy())))
    restore(netG, g_after)
    assert g_gan == pytest.approx(expected_g_gan, rel=1e-4)
    assert g_l1 == pytest.approx(expected_g_l1, rel=1e-4)
    assert loss_G == pytest.approx(cfg.lambda_GAN * expected_g_gan + cfg.lambda_L1 * expected_g_l1, rel=1e-4)

    changed = lambda before, after: sum(not np.array_equal(before[k], after[k]) for k in before)
    assert changed(g_before, snapshot(netG)) >= len(netG.trainable_params())
    assert changed(d_before, snapshot(netD)) >= len(netD.trainable_params())


def test_train_step_gradient_of_g_matches_direct_differentiation():
    """The vjp pull-back through the saved G forward gives the gradient of the whole G loss."""
    cfg = make_cfg(32, "--norm", "instance", "--gan_mode", "lsgan")
    netG, netD, step = build_step(cfg)
    x, y = rand(1, 3, 32, 32, seed=4), rand(1, 3, 32, 32, seed=5)
    noise = rand(1, max(1, netG.dropout_noise_size), seed=6)
    loss_D_cell, loss_G_cell = step.loss_D, step.loss_G

    class FullGLoss(ms.nn.Cell):
        def __init__(self):
            super().__init__(auto_prefix=False)
            self.netG, self.loss_G = netG, loss_G_cell

        def construct(self, a, b, n):
            return self.loss_G(a, b, self.netG(a, n))[0]

    step(x, y, noise)  # D and G move once; then compare gradients at the new point
    direct = ms.grad(FullGLoss(), None, step.weights_G)(x, y, noise)
    fake, pullback = ms.vjp(netG, x, noise, weights=step.weights_G)
    _, pull, _ = ms.vjp(loss_G_cell, x, y, fake, has_aux=True)
    d_fake = pull(Tensor(np.float32(1.0)))[2]
    via_vjp = pullback(d_fake)[1]
    for a, b in zip(direct, via_vjp):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-4, atol=1e-6)
    assert loss_D_cell is not None


def test_loss_scaling_gives_the_same_step_as_float32():
    x, y = rand(1, 3, 32, 32, seed=7), rand(1, 3, 32, 32, seed=8)
    results = []
    for extra in ([], ["--loss_scale", "1024"]):
        ms.set_seed(5)
        netG, netD, step = build_step(make_cfg(32, "--norm", "instance", *extra))
        noise = rand(1, max(1, netG.dropout_noise_size), seed=9)
        losses = [float(v.asnumpy()) for v in step(x, y, noise)]
        results.append((losses, snapshot(netG)))
    (losses_plain, g_plain), (losses_scaled, g_scaled) = results
    np.testing.assert_allclose(losses_plain, losses_scaled, rtol=1e-5)
    for name in g_plain:
        np.testing.assert_allclose(g_plain[name], g_scaled[name], rtol=1e-4, atol=1e-6)


def test_lsgan_and_vanilla_losses():
    from src.models.losses import GANLoss
    logits = Tensor(np.array([[0.5, -1.0], [2.0, 0.0]], np.float32))
    assert float(GANLoss("lsgan")(logits, True).asnumpy()) == pytest.approx(
        np.mean((logits.asnumpy() - 1) ** 2), rel=1e-6)
    assert float(GANLoss("vanilla")(logits, False).asnumpy()) == pytest.approx(
        numpy_bce_with_logits(logits.asnumpy(), False), rel=1e-5)


def test_learning_rate_schedules():
    linear = learning_rates("linear", 1.0, 2, 2, 2, 4)
    np.testing.assert_allclose(linear, [1, 1, 1, 1, 2 / 3, 2 / 3, 1 / 3, 1 / 3], rtol=1e-6)
    cosine = learning_rates("cosine", 1.0, 2, 1, 1, 2)
    assert cosine[0] == 1.0 and np.all(np.diff(cosine) < 0)
    # Stopping early does not change the rates of the epochs that run.
    np.testing.assert_array_equal(learning_rates("linear", 1.0, 2, 2, 2, 3), linear[:6])


@pytest.mark.parametrize("init_scale, clean_steps, scale_after", [(1024.0, 3, 1024.0), (3e38, 0, 3e38 / 8)])
def test_the_loss_scale_moves_once_per_step(init_scale, clean_steps, scale_after):
    """3 steps: clean ones count 1 each (not 2: D and G share one step), and a scale that
    overflows both networks' gradients halves once per step, 3 times in all."""
    x, y = rand(1, 3, 32, 32, seed=7), rand(1, 3, 32, 32, seed=8)
    netG, _, step = build_step(make_cfg(32, "--norm", "instance", "--loss_scale", str(init_scale)))
    noise = rand(1, max(1, netG.dropout_noise_size), seed=9)
    for _ in range(3):
        step(x, y, noise)
    assert int(step.loss_scale.clean_steps.asnumpy()) == clean_steps
    assert float(step.loss_scale.scale.asnumpy()) == pytest.approx(scale_after, rel=1e-6)


def test_unet_encoder_has_no_bias_under_batch_norm_as_in_the_reference():
    """Every encoder convolution, outermost and innermost included, drops its bias under batch
    norm; the decoder's outermost (transposed) convolution keeps one."""
    net = UnetGenerator(3, 3, 8, 5, norm="batch", train_size=32)
    biases = [name for name, _ in net.parameters_and_names() if name.endswith(".bias")]
    assert not [name for name in biases if name.startswith("downs.")]
    assert [name for name in biases if name.startswith("ups.")] == ["ups.0.block.1.bias"]


def test_a_checkpoint_with_the_old_encoder_biases_is_refused_not_loaded_in_part(tmp_path):
    from src.checkpoint import load_network
    net = UnetGenerator(3, 3, 8, 5, norm="batch", train_size=32)
    old = [{"name": name, "data": param.data} for name, param in net.parameters_and_names()]
    old.append({"name": "downs.0.block.0.bias", "data": Tensor(np.zeros(8, np.float32))})
    path = str(tmp_path / "old.ckpt")
    ms.save_checkpoint(old, path)
    with pytest.raises(UserError, match="downs.0.block.0.bias"):
        load_network(net, path, {})


class _OneWeight(ms.nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = ms.Parameter(Tensor(np.zeros(2, np.float32)), name="w")


def test_weight_average_follows_the_warmed_up_decay():
    """An update covering k steps: average -= (1 - keep ** k) * (average - weight), with
    keep = min(decay, (1 + n) / (10 + n)) after n steps; k = 1 is the per-step average."""
    from src.models.train_step import WeightAverage
    net = _OneWeight()
    average = WeightAverage(net, 0.5)
    expected, n = np.zeros(2), 0
    for value, steps in [(1.0, 1), (3.0, 1), (-2.0, 1), (4.0, 3)]:
        net.w.set_data(Tensor(np.full(2, value, np.float32)))
        average(Tensor(steps, ms.float32))
        n += steps
        keep = min(0.5, (1 + n) / (10 + n)) ** steps
        expected = expected - (1 - keep) * (expected - value)
        np.testing.assert_allclose(average.average[0].asnumpy(), expected, rtol=1e-6)
    assert float(average.updates.asnumpy()) == n
    assert average.averaged()[0]["name"] == "w"


def test_the_training_step_averages_every_n_steps_and_catches_up_before_checkpoints():
    """--ema_every N: an update at every N-th step covering the N steps, and one covering the
    steps since the last when a checkpoint or validation asks (catch_up)."""
    cfg = make_cfg(32, "--ema_decay", "0.9", "--ema_every", "4")
    netG, netD = registry.build_generator(cfg), registry.build_discriminator(cfg)
    step = registry.build_train_step(cfg, netG, netD, learning_rates("constant", 2e-4, 10, 1, 0, 1))
    covered = []
    for done in range(1, 11):
        step.average_weights(done, catch_up=done == 6)
        covered.append(float(step.ema.updates.asnumpy()))
    assert covered == [0, 0, 0, 4, 4, 6, 6, 8, 8, 8]
    step.average_weights(8, catch_up=True)  # nothing pending: no update
    assert float(step.ema.updates.asnumpy()) == 8


class _Weighted(ms.nn.Cell):
    """sum(layer(x) * seed): a scalar whose gradient pulls `seed` back through the layer."""

    def __init__(self, layer, seed):
        super().__init__()
        self.layer = layer
        self.seed = seed

    def construct(self, x):
        return (self.layer(x) * self.seed).sum()


def _explicit_resize_conv(x, weight, bias, padding_type):
    """Nearest x2, padding 1, 3x3 cross-correlation, in NumPy: the definition."""
    up = x.repeat(2, axis=2).repeat(2, axis=3)
    mode = {"zero": "constant", "reflection": "reflect", "replication": "edge"}[padding_type]
    up = np.pad(up, ((0, 0), (0, 0), (1, 1), (1, 1)), mode=mode)
    height, width = up.shape[2] - 2, up.shape[3] - 2
    out = np.zeros((x.shape[0], weight.shape[0], height, width))
    for dy in range(3):
        for dx in range(3):
            out += np.einsum("bihw,oi->bohw", up[:, :, dy:dy + height, dx:dx + width], weight[:, :, dy, dx])
    return out + bias[None, :, None, None]


@pytest.mark.parametrize("padding_type", ["zero", "reflection", "replication"])
def test_resize_convolution_as_a_transposed_convolution_equals_upsample_then_convolve(padding_type):
    """Both formulations of ResizeConv, with the same weights, give nearest x2 + 3x3 convolution:
    the output, and the gradients for the input and the weights."""
    from src.models.layers import ResizeConv
    x = rand(2, 5, 6, 10)
    forms = {form: ResizeConv(5, 4, True, padding_type, transposed=form) for form in (True, False)}
    forms[False].conv.weight.set_data(forms[True].conv.weight.data)
    forms[False].conv.bias.set_data(Tensor(np.linspace(-1, 1, 4).astype(np.float32)))
    forms[True].conv.bias.set_data(forms[False].conv.bias.data)
    expected = _explicit_resize_conv(x.asnumpy(), forms[True].conv.weight.asnumpy(),
                                     forms[True].conv.bias.asnumpy(), padding_type)
    seed = rand(2, 4, 12, 20, seed=1)
    gradients = []
    for layer in forms.values():
        np.testing.assert_allclose(layer(x).asnumpy(), expected, atol=1e-5)
        grad_x, grad_weights = ms.grad(_Weighted(layer, seed), grad_position=0,
                                       weights=layer.trainable_params())(x)
        gradients.append([grad_x.asnumpy()] + [g.asnumpy() for g in grad_weights])
    for transposed, explicit in zip(*gradients):
        np.testing.assert_allclose(transposed, explicit, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("padding_type", ["zero", "reflection"])
def test_an_old_resize_convolution_checkpoint_gives_the_output_it_gave(padding_type):
    """tests/data/resize_unet_*.ckpt and their outputs were written by the explicit-only
    ResizeConv of commit ae654c6 (ngf 2, trained at 32 px, random batch-norm statistics)."""
    import os
    data = os.path.join(os.path.dirname(__file__), "data")
    saved = np.load(os.path.join(data, "resize_unet_outputs.npz"))
    net = UnetGenerator(3, 3, 2, 5, padding_type=padding_type, train_size=32, upsample="resize")
    not_loaded, unused = ms.load_param_into_net(
        net, ms.load_checkpoint(os.path.join(data, f"resize_unet_{padding_type}.ckpt")), strict_load=True)
    assert not not_loaded and not unused
    net.set_train(False)
    np.testing.assert_allclose(net(Tensor(saved["input"])).asnumpy(), saved[padding_type], atol=1e-5)


def test_resize_convolution_decoder_keeps_sizes_and_has_no_transposed_convolution():
    from mindspore import nn
    from src.models.layers import ResizeConv
    for padding_type in ("zero", "reflection", "replication"):
        net = UnetGenerator(3, 2, 8, 5, padding_type=padding_type, train_size=32, upsample="resize")
        net.set_train(False)
        assert net(Tensor(np.zeros((1, 3, 64, 32), np.float32))).shape == (1, 2, 64, 32)
        cells = [cell for _, cell in net.cells_and_names()]
        assert not any(isinstance(cell, nn.Conv2dTranspose) for cell in cells)
        assert sum(isinstance(cell, ResizeConv) for cell in cells) == 5


@pytest.mark.parametrize("padding_type", ["zero", "reflection"])
def test_training_with_resize_convolutions_runs_past_the_third_step(tmp_path, padding_type):
    """ops.pad's constant mode made MindSpore's CPU graph stall on the third step of a U-Net with
    resize-convolutions; 8 steps must finish well inside the time bound."""
    from conftest import run_entry, tiny_train_args, write_ab_folder
    data = write_ab_folder(str(tmp_path / "data"), 4)
    result = run_entry("train.py", tiny_train_args(data, str(tmp_path / "out"), "--upsample", "resize",
                                                   "--padding_type", padding_type), timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "step 8/8" in result.stdout
