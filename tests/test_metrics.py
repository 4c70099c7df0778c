"""Metrics against hand-computed values."""
import math

import numpy as np
import pytest

from src.utils.metrics import compute_metrics, summarise


def test_identical_images():
    image = np.random.default_rng(0).uniform(-1, 1, (3, 16, 16)).astype(np.float32)
    metrics = compute_metrics(image, image)
    assert metrics["L1"] == 0 and metrics["MSE"] == 0
    assert math.isinf(metrics["PSNR"])
    assert metrics["SSIM"] == pytest.approx(1.0, abs=1e-9)
    assert metrics["CC"] == 1.0


def test_hand_computed_values():
    target = np.zeros((1, 2, 2), np.float32)
    prediction = np.array([[[0.5, -0.5], [0.5, 0.5]]], np.float32)
    metrics = compute_metrics(prediction, target)
    assert metrics["L1"] == pytest.approx(0.5)
    assert metrics["MSE"] == pytest.approx(0.25)
    assert metrics["PSNR"] == pytest.approx(10 * math.log10(4 / 0.25))
    shifted = compute_metrics(np.array([[[1.0, 2.0], [3.0, 4.0]]], np.float32) / 4,
                              np.array([[[2.0, 4.0], [6.0, 8.0]]], np.float32) / 8)
    assert shifted["CC"] == pytest.approx(1.0)
    anti = compute_metrics(np.array([[[1.0, -1.0]]], np.float32), np.array([[[-1.0, 1.0]]], np.float32))
    assert anti["CC"] == pytest.approx(-1.0)


def test_ssim_falls_with_noise():
    rng = np.random.default_rng(1)
    image = rng.uniform(-1, 1, (1, 32, 32)).astype(np.float32)
    small = compute_metrics(image + 0.05 * rng.standard_normal(image.shape).astype(np.float32), image)
    large = compute_metrics(image + 0.5 * rng.standard_normal(image.shape).astype(np.float32), image)
    assert 1 > small["SSIM"] > large["SSIM"]


def test_summary_keeps_infinite_psnr_apart():
    rows = [{"L1": 0.0, "MSE": 0.0, "PSNR": math.inf, "SSIM": 1.0, "CC": 1.0},
            {"L1": 0.2, "MSE": 0.1, "PSNR": 16.0, "SSIM": 0.5, "CC": 0.5},
            {"L1": 0.4, "MSE": 0.3, "PSNR": 12.0, "SSIM": 0.3, "CC": 0.1}]
    summary = summarise(rows)
    assert summary["PSNR"]["n_inf"] == 1 and summary["PSNR"]["mean"] == pytest.approx(14.0)
    assert summary["L1"]["median"] == pytest.approx(0.2) and summary["L1"]["max"] == pytest.approx(0.4)
