"""pix2pixCC: residual generator, multi-scale feature discriminators, FM and CC losses."""
import csv
import os

import mindspore as ms
import mindspore.nn as nn
import numpy as np
import pytest
from mindspore import Tensor

from conftest import run_entry, tiny_train_args
from src import checkpoint
from src.config import parse_args
from src.models import registry
from src.models.discriminators import balanced_channel_repeats
from src.models.losses import MultiScaleCC, correlation_coefficient, feature_matching_loss


def cc_cfg(size, *extra):
    return parse_args("train", ["--train_data_dir", "unused", "--model", "pix2pixcc", "--crop_size",
                                str(size), "--load_size", str(size), "--n_gf", "8", "--n_df", "8",
                                "--n_residual", "2", *extra])


def rand(*shape, seed=0):
    return np.random.default_rng(seed).uniform(-1, 1, shape).astype(np.float32)


class CC(nn.Cell):
    def __init__(self, concordance):
        super().__init__()
        self.concordance = concordance

    def construct(self, target, prediction):
        return correlation_coefficient(target, prediction, 1e-8, self.concordance)


def cc(target, prediction, concordance=False):
    return float(CC(concordance)(Tensor(target), Tensor(prediction)).asnumpy())


@pytest.mark.parametrize("size", [256, 128, 64])
def test_generator_keeps_the_size(size):
    netG = registry.build_generator(cc_cfg(size, "--input_nc", "1", "--output_nc", "2"))
    netG.set_train(False)
    assert netG(Tensor(rand(1, 1, size, size))).shape == (1, 2, size, size)


def test_generator_with_resize_upsampling_and_tanh():
    netG = registry.build_generator(cc_cfg(64, "--trans_conv", "False", "--output_activation", "tanh"))
    netG.set_train(False)
    out = netG(Tensor(rand(1, 3, 64, 64))).asnumpy()
    assert out.shape == (1, 3, 64, 64) and np.abs(out).max() <= 1


def test_multiscale_discriminator_returns_features_per_scale():
    cfg = cc_cfg(128, "--n_D", "3")
    registry.check_model_config(cfg)
    netD = registry.build_discriminator(cfg)
    netD.set_train(False)
    scales = netD(Tensor(rand(1, 3, 128, 128)), Tensor(rand(1, 3, 128, 128, seed=1)))
    assert len(scales) == 3 and all(len(features) == 5 for features in scales)
    assert [f.shape[2] for f in scales[0]] == [64, 32, 16, 15, 14]
    assert [f.shape[2] for f in scales[2]] == [16, 8, 4, 3, 2]
    assert scales[0][-1].shape[1] == 1


def test_channel_balance_follows_pix2pixcc():
    assert balanced_channel_repeats(3, 1, 1.0) == (1, 3)
    assert balanced_channel_repeats(1, 3, 1.0) == (3, 1)
    assert balanced_channel_repeats(2, 2, 1.0) == (1, 1)
    assert balanced_channel_repeats(3, 1, 0) == (1, 1)


def test_cc_of_identical_images_is_one_and_loss_zero():
    image = rand(2, 1, 16, 16)
    assert cc(image, image) == pytest.approx(1.0, abs=1e-6)
    assert cc(image, image, concordance=True) == pytest.approx(1.0, abs=1e-6)
    values = MultiScaleCC(4)(Tensor(image), Tensor(image))
    assert len(values) == 4
    assert max(abs(1 - float(v.asnumpy())) for v in values) < 1e-5


def test_pearson_cc_is_invariant_to_positive_affine_change():
    target, prediction = rand(1, 1, 16, 16), rand(1, 1, 16, 16, seed=2)
    assert cc(target, 3.0 * prediction + 0.7) == pytest.approx(cc(target, prediction), abs=1e-6)
    assert cc(target, -prediction) == pytest.approx(-cc(target, prediction), abs=1e-6)


def test_cc_equals_hand_computed_values():
    target = np.array([1.0, 2.0, 3.0, 4.0], np.float32).reshape(1, 1, 2, 2)
    prediction = np.array([2.0, 1.0, 4.0, 5.0], np.float32).reshape(1, 1, 2, 2)
    # deviations: t = (-1.5, -0.5, 0.5, 1.5), p = (-1, -2, 1, 2); sum tp = 6
    pearson = 6.0 / (np.sqrt(5.0) * np.sqrt(10.0))
    assert cc(target, prediction) == pytest.approx(pearson, rel=1e-6)
    var_t, var_p = 5.0 / 3, 10.0 / 3  # unbiased, as torch.var
    concordance = 2 * pearson * np.sqrt(var_t * var_p) / (var_t + var_p + (2.5 - 3.0) ** 2)
    assert cc(target, prediction, concordance=True) == pytest.approx(concordance, rel=1e-6)


def test_cc_loss_gradient_is_finite_for_a_constant_image():
    """eps = 1e-8 in the denominator: a constant prediction has CC 0 and a finite gradient."""
    class Loss(nn.Cell):
        def __init__(self):
            super().__init__()
            self.cc = MultiScaleCC(2)

        def construct(self, target, prediction):
            values = self.cc(target, prediction)
            return 2.0 - values[0] - values[1]

    target, constant = Tensor(rand(1, 1, 8, 8)), Tensor(np.full((1, 1, 8, 8), 0.3, np.float32))
    assert float(Loss()(target, constant).asnumpy()) == pytest.approx(2.0, abs=1e-6)
    grad = ms.grad(Loss(), grad_position=1)(target, constant).asnumpy()
    assert np.all(np.isfinite(grad))


def test_feature_matching_is_zero_when_fake_equals_real():
    class FM(nn.Cell):
        def __init__(self, netD):
            super().__init__()
            self.netD = netD

        def construct(self, x, fake, real):
            return feature_matching_loss(self.netD(x, fake), self.netD(x, real))

    netD = registry.build_discriminator(cc_cfg(64, "--n_D", "2"))
    netD.set_train(False)
    x, real = Tensor(rand(1, 3, 64, 64)), Tensor(rand(1, 3, 64, 64, seed=1))
    fm = FM(netD)
    assert float(fm(x, real, real).asnumpy()) == 0.0
    assert float(fm(x, Tensor(rand(1, 3, 64, 64, seed=5)), real).asnumpy()) > 0.0


def test_sizes_the_networks_cannot_take_are_named():
    from src.utils.errors import UserError
    with pytest.raises(UserError, match="multiple of 16"):
        registry.check_model_config(cc_cfg(40))
    with pytest.raises(UserError, match="at least 128 px"):
        registry.check_model_config(cc_cfg(64, "--n_D", "3"))


def write_signed_pairs(folder, count=4, size=40):
    """input/target-free AB PNGs are 8-bit; signed float pairs arrive with the FITS/npy layer, so
    here the toy task is a smooth grey field -> its negative (what a polarity-aware map learns)."""
    from PIL import Image
    os.makedirs(folder, exist_ok=True)
    rng = np.random.default_rng(1)
    for index in range(count):
        coarse = (rng.random((5, 5)) * 255).astype(np.uint8)
        left = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC))
        Image.fromarray(np.concatenate([left, 255 - left], axis=1)).save(os.path.join(folder, f"{index}.png"))
    return folder


def test_short_pix2pixcc_run_lowers_cc_loss_and_exports_a_matching_mindir(tmp_path):
    data = write_signed_pairs(str(tmp_path / "data"))
    out = str(tmp_path / "out")
    flags = ["--model", "pix2pixcc", "--input_nc", "1", "--output_nc", "1", "--n_gf", "8", "--n_df", "8",
             "--n_residual", "1", "--n_downsample", "2", "--n_CC", "3"]
    result = run_entry("train.py", tiny_train_args(data, out, *flags, "--n_epochs", "15",
                                                   "--n_epochs_decay", "0", "--lr", "0.001",
                                                   "--print_interval", "20"))
    assert result.returncode == 0, result.stderr[-2000:]
    with open(os.path.join(out, "loss", "losses.csv")) as handle:
        rows = list(csv.DictReader(handle))
    cc_loss = np.array([float(r["loss_G_CC"]) for r in rows])
    assert len(cc_loss) == 60
    assert cc_loss[-8:].mean() < 0.5 * cc_loss[:8].mean()

    cfg = parse_args("train", tiny_train_args(data, str(tmp_path / "x"), *flags))
    netG = registry.build_generator(cfg)
    checkpoint.load_network(netG, os.path.join(out, "ckpt", "Generator_15.ckpt"),
                            {"model": cfg.model, **registry.arch(cfg, "generator")})
    netG.set_train(False)
    x = Tensor(rand(1, 1, 32, 32, seed=9))
    mindir = str(tmp_path / "cc")
    ms.export(netG, x, file_name=mindir, file_format="MINDIR")
    exported = nn.GraphCell(ms.load(mindir + ".mindir"))
    np.testing.assert_allclose(exported(x).asnumpy(), netG(x).asnumpy(), atol=1e-5)

    evaluated = run_entry("eval.py", ["--val_data_dir", data, "--ckpt", os.path.join(out, "ckpt", "Generator_15.ckpt"),
                                      "--crop_size", "32", *flags, "--ccc", "False",
                                      "--predict_dir", tmp_path / "pred", "--report_dir", tmp_path / "report"])
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    with open(tmp_path / "report" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0])[-3:] == ["CC_scale0", "CC_scale1", "CC_scale2"]
    for row in rows:  # with --ccc False, scale 0 is the Pearson CC of the written prediction
        assert float(row["CC_scale0"]) == pytest.approx(float(row["CC"]), abs=1e-4)
