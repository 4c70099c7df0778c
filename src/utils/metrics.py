"""Per-image quality metrics on arrays in the network's range [-1, 1] (data range 2), and their
summary. L1, MSE, PSNR, SSIM and Pearson's correlation coefficient (CC); PSNR of identical
images is inf, which the summary and the report handle.

Every metric takes `valid`, a boolean array of the images' shape that is True where the target
has data: only those pixels are counted (missing pixels hold a fill value that would inflate CC,
SSIM and PSNR)."""
import math

import numpy as np
from scipy.ndimage import gaussian_filter
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

DATA_RANGE = 2.0


def l1(prediction, target, valid):
    return float(np.mean(np.abs(prediction - target)[valid]))


def mse(prediction, target, valid):
    return float(np.mean(((prediction - target) ** 2)[valid]))


def psnr(prediction, target, valid):
    """scikit-image's PSNR over the counted pixels (data range 2); inf for identical images."""
    if mse(prediction, target, valid) == 0:
        return math.inf
    return float(peak_signal_noise_ratio(target[valid], prediction[valid], data_range=DATA_RANGE))


# The SSIM variant reported everywhere: Wang et al. 2004's Gaussian window (sigma 1.5), population
# statistics, K1 0.01, K2 0.03. scikit-image's default (7x7 uniform window) gives other values.
SSIM_WINDOW = 11  # scikit-image's Gaussian window: 2 * round(3.5 * 1.5) + 1 pixels
SSIM_VARIANT = "Gaussian-window SSIM (Wang et al. 2004: sigma 1.5, K1 0.01, K2 0.03), scikit-image"


def ssim(prediction, target, valid):
    """scikit-image's Gaussian-window SSIM (SSIM_VARIANT), mean over the channels, when every
    pixel is counted; with missing target pixels (or images smaller than its 11-pixel window),
    `masked_ssim`."""
    if not valid.all() or min(target.shape[1:]) < SSIM_WINDOW:
        return masked_ssim(prediction, target, valid)
    return float(structural_similarity(target.astype(np.float64), prediction.astype(np.float64),
                                       data_range=DATA_RANGE, channel_axis=0, gaussian_weights=True,
                                       sigma=1.5, use_sample_covariance=False))


def masked_ssim(prediction, target, valid):
    """The same SSIM over the counted pixels only, which scikit-image cannot do: the window's local
    statistics weigh counted pixels alone (normalised convolution), so missing neighbours and
    their fill values do not enter. Its map equals scikit-image's where a window is complete."""
    c1, c2 = (0.01 * DATA_RANGE) ** 2, (0.03 * DATA_RANGE) ** 2
    maps = []
    for p, t, w in zip(prediction.astype(np.float64), target.astype(np.float64), valid.astype(np.float64)):
        weight = np.maximum(gaussian_filter(w, 1.5, truncate=3.5), 1e-12)
        blur = lambda a: gaussian_filter(a * w, 1.5, truncate=3.5) / weight
        mu_p, mu_t = blur(p), blur(t)
        var_p, var_t = blur(p * p) - mu_p ** 2, blur(t * t) - mu_t ** 2
        cov = blur(p * t) - mu_p * mu_t
        maps.append(((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p ** 2 + mu_t ** 2 + c1) * (var_p + var_t + c2)))
    return float(np.mean(np.stack(maps)[valid]))


def pearson_cc(prediction, target, valid=None):
    """Pixel-to-pixel correlation over the counted pixels; 1 for identical images, nan when
    either image is constant and they differ (no correlation is defined)."""
    if valid is not None:
        prediction, target = prediction[valid], target[valid]
    p, t = prediction.ravel().astype(np.float64), target.ravel().astype(np.float64)
    if np.array_equal(p, t):
        return 1.0
    dp, dt = p - p.mean(), t - t.mean()
    denominator = math.sqrt(float(np.sum(dp * dp)) * float(np.sum(dt * dt)))
    return float(np.sum(dp * dt) / denominator) if denominator > 0 else math.nan


METRICS = {"L1": l1, "MSE": mse, "PSNR": psnr, "SSIM": ssim, "CC": pearson_cc}


def _relative_error(predicted, true):
    return (predicted - true) / abs(true) if true != 0 else math.nan


def physical_metrics(prediction, target, signed):
    """Metrics in the target's own units (FITS, npy, tif data), on the pixels where the target
    has data (NaN in `target` marks missing pixels, which are left out): mean absolute error,
    RMS error, pixel-to-pixel Pearson CC; for signed fields (magnetograms) also the total
    unsigned flux sum|B| and net flux sum B of target and prediction (in unit x pixels) and the
    prediction's relative error on each."""
    valid = np.isfinite(target)
    if not valid.any():
        return {}
    p, t = np.asarray(prediction, np.float64)[valid], np.asarray(target, np.float64)[valid]
    row = {"MAE_phys": float(np.mean(np.abs(p - t))), "RMSE_phys": float(np.sqrt(np.mean((p - t) ** 2))),
           "CC_phys": pearson_cc(p, t)}
    if signed:
        for kind, flux in (("unsigned", lambda a: float(np.sum(np.abs(a)))), ("net", lambda a: float(np.sum(a)))):
            row[f"flux_{kind}_target"], row[f"flux_{kind}_pred"] = flux(t), flux(p)
            row[f"flux_{kind}_relerr"] = _relative_error(row[f"flux_{kind}_pred"], row[f"flux_{kind}_target"])
    return row


def compute_metrics(prediction, target, functions=METRICS, valid=None):
    """{metric: value} for CHW float arrays of the same shape in [-1, 1], over the pixels where
    `valid` (default: all) is True; nan for every metric when no pixel is valid."""
    prediction, target = np.asarray(prediction, np.float32), np.asarray(target, np.float32)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
    valid = np.ones(target.shape, bool) if valid is None else np.broadcast_to(valid, target.shape)
    if not valid.any():
        return {name: math.nan for name in functions}
    return {name: function(prediction, target, valid) for name, function in functions.items()}


def summarise(rows, names=tuple(METRICS)):
    """mean, median, std, min, max of each metric over the finite values (PSNR inf is counted
    apart, as `n_inf`)."""
    summary = {}
    for name in names:
        values = np.array([row.get(name, math.nan) for row in rows], np.float64)
        finite = values[np.isfinite(values)]
        stats = {"n": int(len(values)), "n_inf": int(np.isinf(values).sum())}
        if len(finite):
            stats.update(mean=float(finite.mean()), median=float(np.median(finite)),
                         std=float(finite.std()), min=float(finite.min()), max=float(finite.max()))
        summary[name] = stats
    return summary
