"""Scientific fidelity of the FITS path (issue 15): polarity augmentation, BLANK of every
integer type, prediction headers that sunpy reads right, size mismatches in eval, the log-scale
inverse's range, and log-scale limits that look linear. Real files from sunpy's test data, and
FITS written here."""
import os
import warnings

import numpy as np
import pytest
from astropy.io import fits

from conftest import run_entry
from src.config import default_config, parse_args
from src.dataset.io import read_array, read_fits
from src.dataset.normalize import FLOAT32_MAX, Scaling, to_model, to_physical
from src.dataset.pairs import Pair, write_prediction
from src.dataset.transforms import crop_and_flip
from src.evaluate import evaluate
from src.utils.errors import DataWarning, UserError, run_cli
from test_fits import MAGNETOGRAM, sunpy_test_file


def bipole(size=16):
    """A tilted bipole (positive east, negative west, in Gauss): no symmetry a mirror keeps."""
    yy, xx = np.mgrid[:size, :size]
    field = 1000 * np.exp(-((xx - 4) ** 2 + (yy - 6) ** 2) / 6.0) - 800 * np.exp(-((xx - 11) ** 2 + (yy - 9) ** 2) / 6.0)
    return field[None].astype(np.float32)


def test_polarity_flip_mirrors_and_negates_together_never_apart():
    source, target = bipole(), 0.5 * bipole()
    seen = set()
    for seed in range(40):
        s, t = crop_and_flip(source, target, np.random.default_rng(seed), 16, False, polarity_flip=True)
        if np.array_equal(s, source):
            seen.add("kept")
            assert np.array_equal(t, target)
        else:  # mirrored and negated, both sides alike: the leading polarity stays negative
            assert np.array_equal(s, -source[:, :, ::-1]) and np.array_equal(t, -target[:, :, ::-1])
            seen.add("mirrored and negated")
    assert seen == {"kept", "mirrored and negated"}


def train_cfg(*flags):
    return parse_args("train", ["--train_data_dir", "x", *flags])


def test_plain_flip_is_off_by_default_for_arrays_and_polarity_flip_excludes_it():
    assert train_cfg().no_flip is False  # 8-bit images: the pix2pix flip
    assert train_cfg("--data_format_input", "fits", "--data_format_target", "fits").no_flip is True
    assert train_cfg("--data_format_target", "npy", "--no_flip", "False").no_flip is False  # asked for
    assert train_cfg(*MAGNETOGRAM, "--polarity_flip", "True").no_flip is True
    with pytest.raises(UserError, match="--polarity_flip True mirrors with sign reversal; --no_flip False"):
        train_cfg(*MAGNETOGRAM, "--polarity_flip", "True", "--no_flip", "False")


# (stored dtype, BZERO, BSCALE, BLANK): every FITS integer width, signed and unsigned by BZERO.
INTEGER_CODINGS = [("u1", 0, 1, 255), ("u1", -128, 1, 0), (">i2", 0, 1, -32768), (">i2", 32768, 1, -32768),
                   (">i2", 32768, 1, 0), (">i4", 0, 1, -2147483648), (">i4", 2 ** 31, 1, 7),
                   (">i8", 0, 1, -1), (">i8", 2 ** 63, 1, 9), (">i2", 100, 0.5, -1)]


@pytest.mark.parametrize("dtype,bzero,bscale,blank", INTEGER_CODINGS)
def test_blank_pixels_are_missing_for_every_integer_type(tmp_path, dtype, bzero, bscale, blank):
    raw = np.array([[blank, 1, 2], [3, blank, 5]], dtype)
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BZERO"], hdu.header["BSCALE"], hdu.header["BLANK"] = bzero, bscale, blank
    hdu.writeto(tmp_path / "blank.fits")
    data = read_array(str(tmp_path / "blank.fits"), "fits", 1)[0]
    assert np.isnan(data).tolist() == [[True, False, False], [False, True, False]]
    expected = np.array([1, 2, 3, 5], np.float64) * bscale + bzero
    assert np.allclose(data[~np.isnan(data)], expected, rtol=1e-7)


def test_blank_of_a_real_hmi_image_stored_as_unsigned_16_bit(tmp_path):
    """The real HMI image (NaN off the disk) as an uncompressed and a Rice-compressed unsigned
    16-bit file (BZERO 32768, BSCALE 1, BLANK at raw 0): the off-disk pixels stay missing."""
    physical, header = read_fits(sunpy_test_file("resampled_hmi.fits"))
    off_disk = np.isnan(physical)
    counts = np.where(off_disk, 0, np.clip(np.rint(physical), 1, 65535))  # raw = counts - 32768
    raw = (counts - 32768).astype(">i2")
    plain = fits.PrimaryHDU(raw, header=header)
    plain.header["BZERO"], plain.header["BSCALE"], plain.header["BLANK"] = 32768, 1, -32768
    plain.writeto(tmp_path / "hmi_u16.fits")
    compressed = fits.CompImageHDU(counts.astype(np.uint16))
    compressed.header["BLANK"] = -32768  # astropy stores uint16 as int16 + 32768: counts 0 -> -32768
    fits.HDUList([fits.PrimaryHDU(), compressed]).writeto(tmp_path / "hmi_u16.fits.fz")
    for name in ("hmi_u16.fits", "hmi_u16.fits.fz"):
        data = read_array(str(tmp_path / name), "fits", 1)[0]
        assert np.array_equal(np.isnan(data), off_disk) and off_disk.sum() == 2430
        assert np.array_equal(data[~off_disk], counts[~off_disk])


def aia_to_hmi_pair(tmp_path):
    """The real AIA 171 image as input; as target a magnetogram in Gauss on its grid, with the
    real HMI file's header, observed 12 minutes later."""
    aia = sunpy_test_file("aia_171_level1.fits")
    hmi_header = fits.getheader(sunpy_test_file("resampled_hmi.fits"))
    hmi_header["BUNIT"], hmi_header["CONTENT"] = "Gauss", "MAGNETOGRAM"
    hmi_header["DATE-OBS"], hmi_header["T_OBS"] = "2011-02-15T00:12:00.00", "2011.02.15_00:12:34_TAI"
    del hmi_header["BLANK"]
    target = str(tmp_path / "hmi_m.fits")
    fits.PrimaryHDU(np.zeros((128, 128), np.float32), header=hmi_header).writeto(target)
    return Pair("aia_171.fits", aia, target, "folders")


def fits_cfg(**changes):
    values = dict(direction="AtoB", data_format_input="fits", data_format_target="fits", input_nc=1, output_nc=1,
                  logscale_input=True, saturation_lower_limit_input=0, saturation_upper_limit_input=4,
                  saturation_clip_input=True, saturation_lower_limit_target=-1500, saturation_upper_limit_target=1500,
                  saturation_clip_target=True, model="pix2pixcc", ckpt="/runs/ckpt/Generator_200.ckpt",
                  lead_time=None, target_unit=None)
    return default_config(**{**values, **changes})


def test_prediction_header_has_input_geometry_target_keywords_and_provenance(tmp_path):
    import sunpy.map
    pair = aia_to_hmi_pair(tmp_path)
    prediction = np.linspace(-0.5, 0.5, 128 * 128, dtype=np.float32).reshape(1, 128, 128)
    path, _ = write_prediction(pair, prediction, str(tmp_path / "pred"), fits_cfg(), (128, 128))
    header, aia = fits.getheader(path), fits.getheader(pair.input_path)
    for key in ("CTYPE1", "CRPIX1", "CDELT2", "CRVAL1", "CROTA2", "DSUN_OBS", "HGLT_OBS", "RSUN_REF"):
        assert header[key] == aia[key], key
    assert header["INSTRUME"] == "HMI_FRONT2" and header["TELESCOP"] == "SDO/HMI" and header["BUNIT"] == "Gauss"
    assert header["WAVELNTH"] == 6173.0 and header["DATE-OBS"] == "2011-02-15T00:12:00.000"
    for key in ("DATAMEAN", "DATARMS", "MISSVALS", "DATAP99", "EXPTIME", "QUALITY", "T_OBS", "T_REC", "DETECTOR"):
        assert key not in header or header[key] != aia.get(key), key
    history = list(header["HISTORY"])
    assert "checkpoint Generator_200.ckpt" in history and "input aia_171_level1.fits" in history
    assert "input scaling: log10 0..4 -> -1..1, clipped, missing = 0.1" in history
    assert "target scaling: linear -1500..1500 -> -1..1, clipped, missing = 0" in history
    solar_map = sunpy.map.Map(path)
    assert str(solar_map.unit) == "G" and solar_map.date.isot == "2011-02-15T00:12:00.000"
    assert solar_map.instrument.startswith("HMI") and solar_map.data[0, 0] == pytest.approx(-750)


def test_prediction_time_follows_the_lead_time_and_is_absent_when_unknown(tmp_path):
    import sunpy.map
    aia = sunpy_test_file("aia_171_level1.fits")
    alone = Pair("aia_171.fits", aia, None, "input")  # predict.py: no target
    prediction = np.zeros((1, 128, 128), np.float32)
    times = {}
    for lead in (0.0, 3600.0, None):
        path, _ = write_prediction(alone, prediction, str(tmp_path / f"lead_{lead}"), fits_cfg(lead_time=lead,
                                   target_unit="Gauss"), (128, 128))
        times[lead] = fits.getheader(path).get("DATE-OBS")
    assert times == {0.0: "2011-02-15T00:00:00.340", 3600.0: "2011-02-15T01:00:00.340", None: None}
    assert sunpy.map.Map(str(tmp_path / "lead_3600.0" / "aia_171.fits")).date.isot == "2011-02-15T01:00:00.340"
    assert "INSTRUME" not in fits.getheader(str(tmp_path / "lead_None" / "aia_171.fits"))
    assert parse_args("eval", ["--val_data_dir", "v", "--ckpt", "c", "--lead_time", "12min"]).lead_time == 720


def test_a_size_mismatch_is_the_same_one_line_error_in_train_and_eval(tmp_path):
    for side, size in (("input", 40), ("target", 32)):
        os.makedirs(tmp_path / side)
        fits.PrimaryHDU(np.zeros((size, size), np.float32)).writeto(tmp_path / side / "m.fits")
    result = run_entry("train.py", ["--train_data_dir", tmp_path, *MAGNETOGRAM, "--crop_size", "32"])
    message = "m.fits: input is 40x40, target 32x32; a pair must be the same size"
    assert result.returncode == 2 and result.stderr.strip().splitlines()[-1] == f"error: {message}"
    pair = Pair("m.fits", str(tmp_path / "input" / "m.fits"), str(tmp_path / "target" / "m.fits"), "folders")
    cfg = parse_args("eval", ["--val_data_dir", str(tmp_path), "--ckpt", "g.ckpt", *MAGNETOGRAM, "--crop_size", "32"])
    items = [(pair, np.zeros((1, 32, 32), np.float32), np.zeros((1, 32, 32), np.float32), (40, 40))]
    with pytest.raises(UserError) as error:
        evaluate(items, cfg, str(tmp_path / "pred"), str(tmp_path / "report"))
    assert str(error.value) == message and not os.path.exists(tmp_path / "pred")


def test_log_scale_inverse_clips_to_float32_with_a_count_or_to_the_limits():
    unconstrained = np.array([[[0.0, 1.0, 30.0, 40.0]]], np.float32)  # 30, 40 -> 10^62, 10^82 for limits 0..4
    with pytest.warns(DataWarning, match="2 output value\\(s\\) up to 10\\^82.0 exceed float32's range") as caught:
        values = to_physical(unconstrained, Scaling(0, 4, logscale=True, side="target"))
    assert "--saturation_clip_target True" in str(caught[0].message)
    assert np.isfinite(values).all() and values.tolist()[0][0] == [100.0, 10000.0, FLOAT32_MAX, FLOAT32_MAX]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        clipped = to_physical(unconstrained, Scaling(0, 4, logscale=True, clip=True))
        linear = to_physical(np.array([[[-3.0, 0.5, 3.0]]]), Scaling(-1500, 1500, clip=True))
    assert clipped.tolist() == [[[100.0, 10000.0, 10000.0, 10000.0]]]  # pix2pixCC clips the output
    assert linear.tolist() == [[[-1500.0, 750.0, 1500.0]]]


@pytest.mark.filterwarnings("default::src.utils.errors.DataWarning")  # pytest.ini ignores UserWarning
def test_log_limits_that_look_linear_warn_once_with_the_range_seen(capsys):
    eit = read_array(sunpy_test_file(os.path.join("EIT", "efz20040301.000010_s.fits")), "fits", 1)
    positive = eit[eit > 0]
    linear_looking = Scaling(1, 200, logscale=True, clip=True, side="input")

    def normalise_twice(argv):
        to_model(eit, linear_looking)
        to_model(eit, linear_looking)
        to_model(eit, Scaling(0, 4, logscale=True, side="target"))  # log10 limits: no warning
        return 0

    with pytest.raises(SystemExit) as finished:
        run_cli(normalise_twice)
    assert finished.value.code == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("warning: --logscale_input True: the limits 1 .. 200 are log10")
    assert f"the data seen span {positive.min():.4g} .. {positive.max():.4g}" in lines[0]


def concordance(t, p):
    """Lin's concordance with unbiased variances, as pix2pixCC's CC loss (numpy reference)."""
    t, p = t.astype(np.float64), p.astype(np.float64)
    r = np.corrcoef(t, p)[0, 1]
    return 2 * r * t.std(ddof=1) * p.std(ddof=1) / (t.var(ddof=1) + p.var(ddof=1) + (t.mean() - p.mean()) ** 2)


def off_disk_images(size=32, seed=0):
    """A target with a missing rim (off the disk) and a prediction that is good on the disk."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    valid = ((yy - size / 2 + 0.5) ** 2 + (xx - size / 2 + 0.5) ** 2 < (0.42 * size) ** 2)[None]
    target = rng.uniform(-0.8, 0.8, (1, size, size)).astype(np.float32)
    prediction = (target + rng.normal(0, 0.2, target.shape)).astype(np.float32)
    return target, prediction, valid


def test_metrics_and_the_cc_loss_count_only_pixels_with_data():
    from mindspore import Tensor
    from src.models.losses import MultiScaleCC
    from src.models.pix2pixcc import multiscale_cc_metrics
    from src.utils.metrics import METRICS, compute_metrics
    target, prediction, valid = off_disk_images()
    functions = {**METRICS, **multiscale_cc_metrics(3, True)}
    both_filled = compute_metrics(prediction, target, functions, valid)
    garbage = np.where(valid, prediction, 0.9), np.where(valid, target, -0.9)  # other fill values
    assert compute_metrics(*garbage, functions, valid) == pytest.approx(both_filled, rel=1e-5)
    assert both_filled["CC"] == pytest.approx(np.corrcoef(prediction[valid], target[valid])[0, 1], rel=1e-6)
    assert both_filled["L1"] == pytest.approx(np.abs(prediction - target)[valid].mean(), rel=1e-6)
    assert both_filled["CC_scale0"] == pytest.approx(concordance(target[valid], prediction[valid]), rel=1e-4)
    # counting the filled rim (identical in both) inflates CC: the masking matters
    filled_t, filled_p = np.where(valid, target, 0.95), np.where(valid, prediction, 0.95)
    assert compute_metrics(filled_p, filled_t)["CC"] > compute_metrics(filled_p, filled_t, valid=valid)["CC"] + 0.05
    cell = MultiScaleCC(3, concordance=True)
    weight = Tensor(valid[None].astype(np.float32))
    masked = [float(v.asnumpy()) for v in cell(Tensor(filled_t[None]), Tensor(filled_p[None]), weight)]
    other = [float(v.asnumpy()) for v in cell(Tensor(garbage[1][None]), Tensor(garbage[0][None]), weight)]
    assert masked == pytest.approx(other, rel=1e-5)
    unmasked = [float(v.asnumpy()) for v in cell(Tensor(filled_t[None]), Tensor(filled_p[None]))]
    assert unmasked == pytest.approx([float(v.asnumpy()) for v in cell(Tensor(filled_t[None]), Tensor(filled_p[None]),
                                                                      Tensor(np.ones((1, 1, 32, 32), np.float32)))])


def test_the_training_step_fills_missing_target_pixels_and_leaves_them_out_of_the_cc_loss(tmp_path):
    from mindspore import Tensor
    from src.dataset.pairs import find_pairs
    from src.dataset.pipeline import TrainSource
    from src.models import registry
    from test_fits import magnetogram_folder
    cfg = parse_args("train", ["--train_data_dir", magnetogram_folder(str(tmp_path / "m"), 1), *MAGNETOGRAM,
                               "--model", "pix2pixcc", "--crop_size", "32", "--load_size", "32", "--n_gf", "8",
                               "--n_df", "8", "--n_residual", "1", "--n_downsample", "2", "--n_CC", "2"])
    source, target, _ = TrainSource(find_pairs(cfg.train_data_dir, "--train_data_dir", cfg), cfg, 1).sample(0)
    assert np.isfinite(source).all() and np.isnan(target).any()  # the NaN corner (widened by the resize)
    netG, netD = registry.build_generator(cfg), registry.build_discriminator(cfg)
    step = registry.build_train_step(cfg, netG, netD, np.full(4, 1e-4, np.float32))
    target_with_gaps, prediction, valid = off_disk_images()
    y = np.where(valid, target_with_gaps, np.nan)[None]
    x, noise = Tensor(prediction[None]), Tensor(np.zeros((1, 1), np.float32))
    netG.set_train(True)
    fake = netG(x, noise)
    expected = np.mean([1 - float(v.asnumpy()) for v in MultiScaleCCFor(cfg)(
        Tensor(np.where(valid, target_with_gaps, 0.0)[None]), fake, Tensor(valid[None].astype(np.float32)))])
    losses = [float(v.asnumpy()) for v in step(x, Tensor(y), noise)]
    assert np.isfinite(losses).all()
    assert losses[-1] == pytest.approx(expected, rel=1e-4)  # loss_G_CC: the masked CC


def MultiScaleCCFor(cfg):
    from src.models.losses import MultiScaleCC
    return MultiScaleCC(cfg.n_CC, concordance=cfg.ccc)


def test_eval_counts_valid_pixels_and_draws_fits_in_solar_orientation_with_colour_bars(tmp_path):
    import csv
    from PIL import Image
    from test_fits import magnetogram_folder
    from src.dataset.pairs import find_pairs, load_pair
    data = magnetogram_folder(str(tmp_path / "val"), 2)
    cfg = parse_args("eval", ["--val_data_dir", data, "--ckpt", "g.ckpt", *MAGNETOGRAM, "--crop_size", "32"])
    pairs = find_pairs(data, "--train_data_dir", cfg)
    items = []
    for pair in pairs:  # a "model" that predicts the target itself, with the filled corner
        source, target = load_pair(pair, cfg)
        items.append((pair, source, target, source.shape[1:]))
    rows = evaluate(items, cfg, str(tmp_path / "pred"), str(tmp_path / "report"), progress=lambda line: None)
    assert rows[0]["counted_fraction"] == pytest.approx(1 - 9 / 1600)  # the 3x3 NaN corner is left out
    assert rows[0]["CC"] == 1.0 and rows[0]["MAE_phys"] == pytest.approx(0.0, abs=1e-3)
    with open(tmp_path / "report" / "metrics.csv") as handle:
        assert "counted_fraction" in next(csv.DictReader(handle))
    assert (tmp_path / "report" / "report.pdf").read_bytes().startswith(b"%PDF")
    for png in (tmp_path / "pred" / "hmi_00.png", tmp_path / "report" / "collages" / "hmi_00.png"):
        rgb = np.asarray(Image.open(png).convert("RGB")).astype(int)
        red, blue = (rgb[..., 0] - rgb[..., 2] > 80), (rgb[..., 2] - rgb[..., 0] > 80)
        assert red.sum() > 50 and blue.sum() > 50  # a diverging map, not grey
    # orientation: a field rising with the row index shows its positive end at the top
    from src.dataset.normalize import Scaling
    from src.utils.report import write_science_figure
    rising = np.repeat(np.linspace(-1500, 1500, 40)[:, None], 40, axis=1)
    write_science_figure(str(tmp_path / "rising.png"), [("rising", rising, Scaling(-1500, 1500), "G")])
    rgb = np.asarray(Image.open(tmp_path / "rising.png").convert("RGB")).astype(int)
    panel = rgb[:, : int(rgb.shape[1] * 0.6)]  # the image, left of its colour bar
    rows_red = np.nonzero((panel[..., 0] - panel[..., 2] > 80).any(axis=1))[0]
    rows_blue = np.nonzero((panel[..., 2] - panel[..., 0] > 80).any(axis=1))[0]
    assert rows_red.mean() < rows_blue.mean()  # PNG row 0 is the top
    bar = rgb[:, int(rgb.shape[1] * 0.65):int(rgb.shape[1] * 0.8)]
    assert (bar[..., 0] - bar[..., 2] > 80).any() and (bar[..., 2] - bar[..., 0] > 80).any()  # the colour bar


def timed_folder(folder, times, prefix):
    """FITS files named without any time, observed at `times` (ISO or JSOC T_REC form)."""
    os.makedirs(folder, exist_ok=True)
    for index, time in enumerate(times):
        key = "T_REC" if "_TAI" in time else "DATE-OBS"
        hdu = fits.PrimaryHDU(np.zeros((4, 4), np.float32))
        hdu.header[key] = time
        hdu.writeto(os.path.join(folder, f"{prefix}_{index:02d}.fits"))


def test_pair_files_by_observation_time_with_a_lead_time_and_a_chronological_split(tmp_path):
    import csv
    aia = [f"2011-02-15T{hour:02d}:00:0{hour % 7}.5" for hour in range(8)]
    hmi = [f"2011.02.15_{hour:02d}:0{hour % 4}:00_TAI" for hour in range(1, 9)] + ["2011.02.16_00:00:00_TAI"]
    timed_folder(str(tmp_path / "aia"), aia[::-1], "aia")  # names in reverse time order
    timed_folder(str(tmp_path / "hmi"), hmi, "hmi")
    result = run_entry("pair_files.py", ["--input_dir", tmp_path / "aia", "--target_dir", tmp_path / "hmi",
                                         "--time_tolerance", "2min", "--lead_time", "1h",
                                         "--output", tmp_path / "pairs.csv"])
    assert result.returncode == 0, result.stderr
    with open(tmp_path / "pairs.csv") as handle:
        rows = list(csv.DictReader(handle))
    # HMI at hour h+1 lies (h+1) % 4 minutes (+34 s TAI-UTC) after AIA's hour h + 1 h: within 2 min for
    # (h+1) % 4 in {0, 1, 2}; the input at 02:00 (target 03:03) has none, nor the one at 06:00 (07:03)
    assert [row["key"][:16] for row in rows] == [f"2011-02-15T{h:02d}:00" for h in (0, 1, 3, 4, 5, 7)]
    assert rows[0]["input"] == "aia/aia_07.fits" and rows[0]["target"] == "hmi/hmi_00.fits"
    assert "2 input file(s) have no partner" in result.stdout
    result = run_entry("split_data.py", ["--pairs_csv", tmp_path / "pairs.csv", "--output_dir", tmp_path / "split",
                                         "--test_ratio", "0.34", "--chronological", "True"])
    assert result.returncode == 0, result.stderr
    split = {}
    for part in ("train", "test"):
        with open(tmp_path / "split" / part / "pairs.csv") as handle:
            split[part] = sorted(row["input"] for row in csv.DictReader(handle))
    assert split["test"] == ["../../aia/aia_00.fits", "../../aia/aia_02.fits"]  # 07:00 and 05:00, the latest
    assert len(split["train"]) == 4
    result = run_entry("pair_files.py", ["--input_dir", tmp_path / "aia", "--target_dir", tmp_path / "hmi"])
    assert result.returncode == 2 and "by name (--key_regex) or by time (--time_tolerance): give one" in result.stderr


def test_pad_and_rotate_moves_both_sides_alike_and_pads_with_edges():
    from src.dataset.transforms import pad_and_rotate
    source = bipole(20)
    padded, _ = pad_and_rotate(source, source, np.random.default_rng(0), 3, 0)
    assert padded.shape == (1, 26, 26) and np.array_equal(padded[0, :3, 3:23], np.repeat(source[0, :1], 3, axis=0))
    for seed in range(3):
        s, t = pad_and_rotate(source, 2 * source, np.random.default_rng(seed), 2, 30)
        assert s.shape == (1, 24, 24) and np.allclose(t, 2 * s, atol=1e-3)  # one angle for both sides
        assert not np.allclose(s[0, 2:-2, 2:-2], source[0], atol=10)  # rotated
    for seed in range(3):  # both poles stay within the padded frame, their peaks kept (bilinear)
        rotated = pad_and_rotate(source, source, np.random.default_rng(seed), 6, 45)[0]
        assert rotated.max() == pytest.approx(source.max(), rel=0.1)
        assert rotated.min() == pytest.approx(source.min(), rel=0.1)


def test_native_scale_training_crops_without_resizing(tmp_path):
    from src.dataset.pairs import find_pairs, load_pair
    from src.dataset.pipeline import TrainSource, check_native_sizes
    from test_fits import magnetogram_folder
    data = magnetogram_folder(str(tmp_path / "m"), 1)
    cfg = train_cfg(*MAGNETOGRAM, "--resize_or_crop", "crop", "--padding_size", "4", "--crop_size", "32",
                    "--load_size", "16")  # load_size is unused at native scale
    cfg.train_data_dir = data
    pair = find_pairs(data, "--train_data_dir", cfg)[0]
    native = np.pad(load_pair(pair, cfg)[0], ((0, 0), (4, 4), (4, 4)), mode="edge")
    source, _, _ = TrainSource([pair], cfg, 1).sample(0)
    windows = [native[:, top:top + 32, left:left + 32] for top in range(17) for left in range(17)]
    assert any(np.array_equal(source, window) for window in windows)  # the plate scale is kept
    cfg.padding_size, cfg.crop_size = 0, 48
    with pytest.raises(UserError, match="40x40 with --padding_size 0 is smaller than --crop_size 48"):
        check_native_sizes([pair], cfg)


def test_a_short_native_scale_training_with_rotation_and_polarity_flip_runs(tmp_path):
    from conftest import tiny_train_args
    from test_fits import magnetogram_folder
    data = magnetogram_folder(str(tmp_path / "m"), 2)
    result = run_entry("train.py", tiny_train_args(data, str(tmp_path / "out"), *MAGNETOGRAM, "--input_nc", "1",
                                                   "--output_nc", "1", "--resize_or_crop", "crop", "--padding_size", "4",
                                                   "--max_rotation_angle", "15", "--polarity_flip", "True"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert os.path.isfile(tmp_path / "out" / "ckpt" / "Generator_2.ckpt")


def test_several_fits_of_one_time_are_the_channels_of_one_input(tmp_path):
    import csv
    from src.dataset.pairs import find_pairs, load_pair, load_target
    aia, header = read_fits(sunpy_test_file("aia_171_level1.fits"))
    pair = aia_to_hmi_pair(tmp_path)
    for wavelength, factor in ((171, 1.0), (193, 1.6), (211, 0.4)):  # three "wavelengths" of one time
        header["WAVELNTH"] = wavelength
        fits.PrimaryHDU((aia * factor).astype(np.float32), header=header).writeto(tmp_path / f"aia_{wavelength}.fits")
    fits.PrimaryHDU(np.zeros((64, 64), np.float32)).writeto(tmp_path / "small.fits")
    with open(tmp_path / "pairs.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerows([["input", "target"], ["aia_171.fits;aia_193.fits;aia_211.fits", "hmi_m.fits"],
                          ["x_171.fits;small.fits", "hmi_m.fits"]])
    os.symlink(tmp_path / "aia_171.fits", tmp_path / "x_171.fits")
    cfg = fits_cfg(input_nc=3, data_format_input="fits")
    stacked, broken = find_pairs(str(tmp_path), "--train_data_dir", cfg)
    source, target = load_pair(stacked, cfg)
    assert source.shape == (3, 128, 128) and target.shape == (1, 128, 128)
    physical = [read_array(str(tmp_path / f"aia_{w}.fits"), "fits", 1)[0] for w in (171, 193, 211)]
    assert np.array_equal(source, to_model(np.stack(physical), Scaling(0, 4, True, True)))
    assert load_target(stacked, cfg).shape == (1, 128, 128)
    with pytest.raises(UserError, match="the files differ in size"):
        load_pair(broken, cfg)
    with pytest.raises(UserError, match="3 channel\\(s\\) together, the model asks for 1"):
        load_pair(stacked, fits_cfg(input_nc=1))
    path, _ = write_prediction(stacked, np.zeros((1, 128, 128), np.float32), str(tmp_path / "pred"), cfg, (128, 128))
    assert fits.getheader(path)["CRPIX1"] == header["CRPIX1"] and "input aia_171.fits" in fits.getheader(path)["HISTORY"]
    os.remove(tmp_path / "pairs.csv")
    with open(tmp_path / "pairs.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["input", "target"], *[[f"aia_171.fits;aia_{w}.fits", "hmi_m.fits"]
                                                            for w in (193, 211)]])
    with pytest.raises(UserError, match="a second input named aia_171.fits"):
        find_pairs(str(tmp_path), "--train_data_dir", cfg)
    with open(tmp_path / "pairs.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([["input", "target"], ["aia_171.fits;aia_193.fits", "hmi_m.fits"],
                                      ["x_171.fits;aia_211.fits", "hmi_m.fits"]])
    result = run_entry("split_data.py", ["--pairs_csv", tmp_path / "pairs.csv", "--output_dir", tmp_path / "split",
                                         "--test_ratio", "0.5"])
    assert result.returncode == 0, result.stderr
    inputs = sorted(pair.input_files for part in ("train", "test")
                    for pair in find_pairs(str(tmp_path / "split" / part), "--train_data_dir", default_config()))
    assert [[os.path.basename(f) for f in files] for files in inputs] == [["aia_171.fits", "aia_193.fits"],
                                                                          ["x_171.fits", "aia_211.fits"]]
