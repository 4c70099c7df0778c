"""Per-image quality metrics on arrays in the network's range [-1, 1] (data range 2), and their
summary. L1, MSE, PSNR, SSIM and Pearson's correlation coefficient (CC); PSNR of identical
images is inf, which the summary and the report handle."""
import math

import numpy as np
from scipy.ndimage import gaussian_filter

DATA_RANGE = 2.0


def l1(prediction, target):
    return float(np.mean(np.abs(prediction - target)))


def mse(prediction, target):
    return float(np.mean((prediction - target) ** 2))


def psnr(prediction, target):
    error = mse(prediction, target)
    return math.inf if error == 0 else 10.0 * math.log10(DATA_RANGE ** 2 / error)


def ssim(prediction, target):
    """Mean SSIM over channels (Wang et al. 2004: Gaussian window sigma 1.5, K1 0.01, K2 0.03)."""
    c1, c2 = (0.01 * DATA_RANGE) ** 2, (0.03 * DATA_RANGE) ** 2
    values = []
    for p, t in zip(prediction.astype(np.float64), target.astype(np.float64)):
        blur = lambda a: gaussian_filter(a, 1.5, truncate=3.5)
        mu_p, mu_t = blur(p), blur(t)
        var_p, var_t = blur(p * p) - mu_p ** 2, blur(t * t) - mu_t ** 2
        cov = blur(p * t) - mu_p * mu_t
        ssim_map = ((2 * mu_p * mu_t + c1) * (2 * cov + c2)) / ((mu_p ** 2 + mu_t ** 2 + c1) * (var_p + var_t + c2))
        values.append(ssim_map.mean())
    return float(np.mean(values))


def pearson_cc(prediction, target):
    """Pixel-to-pixel correlation; 1 for identical images, nan when either image is constant
    and they differ (no correlation is defined)."""
    p, t = prediction.ravel().astype(np.float64), target.ravel().astype(np.float64)
    if np.array_equal(p, t):
        return 1.0
    dp, dt = p - p.mean(), t - t.mean()
    denominator = math.sqrt(float(np.sum(dp * dp)) * float(np.sum(dt * dt)))
    return float(np.sum(dp * dt) / denominator) if denominator > 0 else math.nan


METRICS = {"L1": l1, "MSE": mse, "PSNR": psnr, "SSIM": ssim, "CC": pearson_cc}


def multiscale_cc_metrics(n_cc, concordance):
    """pix2pixCC's CC at each of its n_CC scales, by the very cell its loss uses (so the report
    and the objective cannot disagree): {"CC_scale0": f, ...}, scale k pooled k times."""
    from mindspore import Tensor
    from src.models.losses import MultiScaleCC
    cell = MultiScaleCC(n_cc, concordance=concordance)
    cache = {}

    def values(prediction, target):
        key = (id(prediction), id(target))
        if key not in cache:
            cache.clear()
            cache[key] = [float(v.asnumpy()) for v in cell(Tensor(target[None]), Tensor(prediction[None]))]
        return cache[key]

    return {f"CC_scale{k}": (lambda p, t, k=k: values(p, t)[k]) for k in range(n_cc)}


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


# The flags metrics_for reads; export records them so inference away from eval.py scores alike.
METRIC_FLAGS = ("n_CC", "ccc")


def metrics_for(cfg):
    """The metrics eval reports for this model: the common five, and pix2pixCC's per-scale CC."""
    if getattr(cfg, "model", "pix2pix") == "pix2pixcc":
        return {**METRICS, **multiscale_cc_metrics(cfg.n_CC, cfg.ccc)}
    return dict(METRICS)


def compute_metrics(prediction, target, functions=METRICS):
    """{metric: value} for CHW float arrays of the same shape in [-1, 1]."""
    prediction, target = np.asarray(prediction, np.float32), np.asarray(target, np.float32)
    if prediction.shape != target.shape:
        raise ValueError(f"prediction {prediction.shape} and target {target.shape} differ in shape")
    return {name: function(prediction, target) for name, function in functions.items()}


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
