"""Scientific data: FITS/npy/tif in physical units, normalisation and its inverse, pairing and
splitting, and a short training that writes FITS predictions in physical units."""
import csv
import importlib.util
import os

import numpy as np
import pytest
from astropy.io import fits

from conftest import run_entry
from src.config import default_config
from src.dataset.io import read_array, read_fits
from src.dataset.normalize import Scaling, side_scaling, to_model, to_physical
from src.dataset.pairing import split_groups
from src.dataset.pairs import find_pairs, load_pair, load_target
from src.dataset.transforms import crop_and_flip
from src.utils.errors import UserError
from src.utils.metrics import physical_metrics

MAGNETOGRAM = ["--data_format_input", "fits", "--data_format_target", "fits", "--input_nc", "1",
               "--output_nc", "1", "--saturation_lower_limit_input", "-1500", "--saturation_upper_limit_input",
               "1500", "--saturation_lower_limit_target", "-1500", "--saturation_upper_limit_target", "1500",
               "--saturation_clip_input", "True", "--saturation_clip_target", "True"]


@pytest.mark.parametrize("scaling", [Scaling(-3000, 3000), Scaling(-100, 2500, clip=False),
                                     Scaling(0.5, 4.5, logscale=True)])
def test_normalisation_inverts_exactly_within_float32(scaling):
    rng = np.random.default_rng(0)
    if scaling.logscale:
        physical = 10 ** rng.uniform(scaling.lower, scaling.upper, (2, 16, 16))
    else:
        physical = rng.uniform(scaling.lower, scaling.upper, (2, 16, 16))
    model = to_model(physical.astype(np.float32), scaling)
    assert model.dtype == np.float32 and model.min() >= -1 and model.max() <= 1
    back = to_physical(model, scaling)
    assert np.allclose(back, physical, rtol=2e-6 if scaling.logscale else 1e-6,
                       atol=0 if scaling.logscale else 1e-6 * max(abs(scaling.lower), scaling.upper))


def test_clipping_saturates_and_limits_map_to_plus_minus_one():
    scaling = Scaling(-1000, 1000, clip=True)
    model = to_model(np.array([[[-5000, -1000, 0, 500, 1000, 9000]]], np.float32), scaling)
    assert model.tolist() == [[[-1, -1, 0, 0.5, 1, 1]]]
    assert to_physical(model, scaling).tolist() == [[[-1000, -1000, 0, 500, 1000, 1000]]]
    log = Scaling(1, 3, logscale=True, clip=True)  # limits in log10: 10 .. 1000 DN/s
    assert to_model(np.array([[[1, 10, 100, 1000, 1e6]]], np.float32), log).tolist() == [[[-1, -1, 0, 1, 1]]]


def test_missing_pixels_take_the_stated_fill_value():
    data = np.array([[[np.nan, np.inf, -np.inf, 0.0, -3.0, 100.0]]], np.float32)
    linear = to_model(data, Scaling(-200, 200))
    assert linear[0, 0, :3].tolist() == [0, 0, 0] and linear[0, 0, 4] == -3 / 200
    log = to_model(data, Scaling(-1, 3, logscale=True))  # fill 0.1 -> log10 = -1 -> -1
    assert log[0, 0, :5].tolist() == [-1] * 5 and log[0, 0, 5] == 0.5
    filled = to_model(data, Scaling(-200, 200, fill=-200))
    assert filled[0, 0, 0] == -1


def test_flags_build_the_scaling_and_8_bit_stays_0_255():
    cfg = default_config(data_format_input="fits", logscale_input=True, saturation_lower_limit_input=0,
                   saturation_upper_limit_input=4, saturation_clip_input=True, nan_fill_input=None)
    assert side_scaling(cfg, "input") == Scaling(0, 4, True, True, None)
    assert side_scaling(cfg, "input").fill_value == 0.1
    assert side_scaling(default_config(), "target") == Scaling(0, 255)
    assert side_scaling(default_config(data_format_target="npy"), "target") == Scaling(-1, 1)


def write_fits(path, data, **header):
    hdu = fits.PrimaryHDU(data)
    for key, value in header.items():
        hdu.header[key.replace("_", "-")] = value
    hdu.writeto(path, overwrite=True)
    return str(path)


def test_fits_scaling_blank_big_endian_and_hdu_choice(tmp_path):
    raw = np.array([[10, 20], [-32768, 40]], ">i2")
    hdu = fits.PrimaryHDU(raw)
    hdu.header["BSCALE"], hdu.header["BZERO"], hdu.header["BLANK"] = 0.5, 100.0, -32768
    hdu.writeto(tmp_path / "scaled.fits")
    data = read_array(str(tmp_path / "scaled.fits"), "fits", 1)
    assert data.dtype == np.float32 and data.dtype.isnative
    assert data[0, 0].tolist() == [105.0, 110.0] and np.isnan(data[0, 1, 0]) and data[0, 1, 1] == 120.0
    # compressed image: data in extension 1; auto finds it, a name or index picks it
    comp = fits.HDUList([fits.PrimaryHDU(), fits.CompImageHDU(np.arange(16, dtype=np.float32).reshape(4, 4),
                                                               name="MAG")])
    comp.writeto(tmp_path / "comp.fits")
    for hdu_flag in ("auto", "1", "MAG"):
        assert read_array(str(tmp_path / "comp.fits"), "fits", 1, hdu_flag)[0, 3, 3] == 15
    with pytest.raises(UserError, match="holds no image"):
        read_array(str(tmp_path / "comp.fits"), "fits", 1, "0")
    with pytest.raises(UserError, match="no HDU 'XYZ'"):
        read_array(str(tmp_path / "comp.fits"), "fits", 1, "XYZ")
    cube = write_fits(tmp_path / "cube.fits", np.zeros((3, 4, 4), ">f4"))
    assert read_array(cube, "fits", 3).shape == (3, 4, 4)
    with pytest.raises(UserError, match="3 channel\\(s\\), the model asks for 1"):
        read_array(cube, "fits", 1)


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_fits_file_is_one_error_line_naming_it(tmp_path, damage):
    path = write_fits(tmp_path / "m.fits", np.ones((64, 64), np.float32))
    content = open(path, "rb").read()
    open(path, "wb").write({"truncated": content[:len(content) // 2], "garbage": b"\x00junk" * 100,
                            "empty": b""}[damage])
    with pytest.raises(UserError) as error:
        read_fits(path)
    assert str(error.value).startswith(f"{path}: not a readable FITS file") and "\n" not in str(error.value)


def test_npy_and_tif_read_in_physical_units(tmp_path):
    import tifffile
    data = np.random.default_rng(1).normal(0, 800, (2, 8, 8)).astype(np.float32)
    np.save(tmp_path / "a.npy", data)
    tifffile.imwrite(tmp_path / "a.tif", np.moveaxis(data, 0, -1))  # channels last in the tif
    assert np.array_equal(read_array(str(tmp_path / "a.npy"), "npy", 2), data)
    assert np.array_equal(read_array(str(tmp_path / "a.tif"), "tif", 2), data)
    (tmp_path / "bad.npy").write_bytes(b"not numpy")
    with pytest.raises(UserError, match="bad.npy: not a readable .npy"):
        read_array(str(tmp_path / "bad.npy"), "npy", 2)


def test_polarity_flip_negates_both_sides_together():
    source, target = np.ones((1, 8, 8), np.float32), np.full((1, 8, 8), 0.5, np.float32)
    signs = set()
    for seed in range(20):
        s, t = crop_and_flip(source, target, np.random.default_rng(seed), 8, False, polarity_flip=True)
        assert np.sign(s[0, 0, 0]) == np.sign(t[0, 0, 0])
        signs.add(float(np.sign(s[0, 0, 0])))
    assert signs == {-1.0, 1.0}


def test_polarity_flip_needs_signed_limits(tmp_path):
    result = run_entry("train.py", ["--train_data_dir", tmp_path, "--data_format_input", "fits",
                                    "--logscale_input", "True", "--polarity_flip", "True"])
    assert result.returncode == 2 and "--polarity_flip True needs a signed input" in result.stderr


def test_physical_metrics_mask_missing_pixels_and_report_flux():
    target = np.array([[[100.0, -50.0, np.nan, 10.0]]])
    prediction = np.array([[[90.0, -50.0, 1e9, 20.0]]])
    row = physical_metrics(prediction, target, signed=True)
    assert row["MAE_phys"] == pytest.approx(20 / 3)
    assert row["flux_unsigned_target"] == 160 and row["flux_unsigned_pred"] == 160
    assert row["flux_net_target"] == 60 and row["flux_net_pred"] == 60 and row["flux_net_relerr"] == 0
    assert "flux_net_pred" not in physical_metrics(prediction, target, signed=False)


def make_named_files(folder, names):
    os.makedirs(folder, exist_ok=True)
    for name in names:
        write_fits(os.path.join(folder, name), np.zeros((4, 4), np.float32))


def test_pair_files_pairs_by_key_and_reports_missing_partners(tmp_path):
    make_named_files(tmp_path / "aia", ["aia_AR11158_t0.fits", "aia_AR11158_t1.fits", "aia_AR11429_t0.fits",
                                        "aia_AR99999_t0.fits", "readme.txt"])
    make_named_files(tmp_path / "hmi", ["hmi.AR11158.t1.fits", "hmi.AR11158.t2.fits", "hmi.AR11429.t1.fits"])
    # input at t0 is paired with the target at t1 of the same region
    result = run_entry("pair_files.py", ["--input_dir", tmp_path / "aia", "--target_dir", tmp_path / "hmi",
                                         "--key_regex", r"AR(\d+)_t0", "--target_key_regex", r"AR(\d+)\.t1",
                                         "--output", tmp_path / "all" / "pairs.csv"])
    assert result.returncode == 0, result.stderr
    assert "1 input file(s) have no partner" in result.stdout and "99999" in result.stdout
    with open(tmp_path / "all" / "pairs.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert [(r["key"], r["input"], r["target"]) for r in rows] == [
        ("11158", "../aia/aia_AR11158_t0.fits", "../hmi/hmi.AR11158.t1.fits"),
        ("11429", "../aia/aia_AR11429_t0.fits", "../hmi/hmi.AR11429.t1.fits")]
    cfg = default_config(direction="AtoB", data_format_input="fits", data_format_target="fits",
                   input_nc=1, output_nc=1)
    pairs = find_pairs(str(tmp_path / "all"), "--train_data_dir", cfg)
    assert [p.name for p in pairs] == ["aia_AR11158_t0.fits", "aia_AR11429_t0.fits"]
    assert load_pair(pairs[0], cfg)[1].shape == (1, 4, 4)


def test_folders_of_different_formats_pair_by_name_without_extension(tmp_path):
    make_named_files(tmp_path / "input", ["a.fits", "b.fits"])
    os.makedirs(tmp_path / "target")
    for name in ("a", "b"):
        np.save(tmp_path / "target" / f"{name}.npy", np.ones((4, 4), np.float32))
    cfg = default_config(direction="AtoB", data_format_input="fits", data_format_target="npy",
                   input_nc=1, output_nc=1)
    pairs = find_pairs(str(tmp_path), "--train_data_dir", cfg)
    assert [(p.name, os.path.basename(p.target_path)) for p in pairs] == [("a.fits", "a.npy"), ("b.fits", "b.npy")]
    os.remove(tmp_path / "target" / "b.npy")
    with pytest.raises(UserError, match="1 file\\(s\\) have no partner in target/, e.g. b.fits"):
        find_pairs(str(tmp_path), "--train_data_dir", cfg)


def test_pair_files_rejects_duplicate_keys(tmp_path):
    make_named_files(tmp_path / "a", ["x_AR1_v1.fits", "x_AR1_v2.fits"])
    make_named_files(tmp_path / "b", ["y_AR1.fits"])
    result = run_entry("pair_files.py", ["--input_dir", tmp_path / "a", "--target_dir", tmp_path / "b",
                                         "--key_regex", r"AR(\d+)", "--output", tmp_path / "p.csv"])
    assert result.returncode == 2
    assert "x_AR1_v1.fits and x_AR1_v2.fits both have the key '1'" in result.stderr
    assert not (tmp_path / "p.csv").exists()


def test_group_split_leaks_no_group(tmp_path):
    names = [f"AR{region}_t{t:02d}.fits" for region in (11, 12, 13, 14, 15) for t in range(4)]
    make_named_files(tmp_path / "in", names)
    make_named_files(tmp_path / "out", names)
    assert run_entry("pair_files.py", ["--input_dir", tmp_path / "in", "--target_dir", tmp_path / "out",
                                       "--key_regex", r"(AR\d+_t\d+)", "--output", tmp_path / "pairs.csv"]).returncode == 0
    result = run_entry("split_data.py", ["--pairs_csv", tmp_path / "pairs.csv", "--output_dir", tmp_path / "split",
                                         "--test_ratio", "0.4", "--seed", "3", "--group_regex", r"AR(\d+)_"])
    assert result.returncode == 0, result.stderr
    regions = {}
    for split in ("train", "test"):
        with open(tmp_path / "split" / split / "pairs.csv") as handle:
            regions[split] = {row["input"].split("AR")[1][:2] for row in csv.DictReader(handle)}
    assert regions["train"] and regions["test"] and not regions["train"] & regions["test"]
    assert len(regions["test"]) == 2  # 40% of 20 frames = 8 = two regions of four
    assert len(find_pairs(str(tmp_path / "split" / "test"), "--train_data_dir", default_config())) == 8


def test_split_groups_is_seeded_and_keeps_one_group_for_training():
    groups = ["a", "a", "b", "c", "c", "c"]
    assert split_groups(groups, 0.5, 1) == split_groups(groups, 0.5, 1)
    train, test = split_groups(["a", "b"], 0.99, 0)
    assert len(train) == 1 and len(test) == 1


def magnetogram_folder(root, count, size=40, seed=0):
    """Pairs of synthetic magnetograms (Gauss) with off-disk NaN corners: the target is the
    input's field a step later (shifted by two pixels), as in forecasting the next frame."""
    rng = np.random.default_rng(seed)
    for side in ("input", "target"):
        os.makedirs(os.path.join(root, side), exist_ok=True)
    yy, xx = np.mgrid[:size, :size]
    for index in range(count):
        centres = rng.uniform(8, size - 8, (4, 2))
        strengths = rng.uniform(-1500, 1500, 4)
        field = lambda shift: sum(s * np.exp(-((xx - cx - shift) ** 2 + (yy - cy) ** 2) / 40.0)
                                  for s, (cx, cy) in zip(strengths, centres))
        for side, shift in (("input", 0), ("target", 2)):
            data = field(shift).astype(">f4")
            data[:3, :3] = np.nan
            write_fits(os.path.join(root, side, f"hmi_{index:02d}.fits"), data, DATE_OBS=f"2011-02-15T0{index}:00:00",
                       INSTRUME="HMI_SIDE1", BUNIT="Gauss", CRPIX1=20.5, CDELT1=0.5, CTYPE1="HPLN-TAN")
    return root


def test_short_fits_training_writes_fits_predictions_in_physical_units(tmp_path):
    train = magnetogram_folder(str(tmp_path / "train"), 4)
    val = magnetogram_folder(str(tmp_path / "val"), 2, seed=9)
    model = ["--crop_size", "32", "--ngf", "8", *MAGNETOGRAM]
    result = run_entry("train.py", ["--train_data_dir", train, *model, "--load_size", "36", "--ndf", "8",
                                    "--n_epochs", "1", "--n_epochs_decay", "1", "--polarity_flip", "True",
                                    "--num_parallel_workers", "1", "--ckpt_dir", tmp_path / "ckpt",
                                    "--train_fakeimg_dir", tmp_path / "img", "--loss_show_dir", tmp_path / "loss"])
    assert result.returncode == 0, result.stderr[-2000:]
    result = run_entry("eval.py", ["--val_data_dir", val, *model, "--ckpt", tmp_path / "ckpt" / "Generator_2.ckpt",
                                   "--predict_dir", tmp_path / "pred", "--report_dir", tmp_path / "report"])
    assert result.returncode == 0, result.stderr[-2000:]
    assert sorted(os.listdir(tmp_path / "pred")) == ["hmi_00.fits", "hmi_00.png", "hmi_01.fits", "hmi_01.png"]
    with fits.open(tmp_path / "pred" / "hmi_00.fits") as hdus:
        header, data = hdus[0].header, hdus[0].data
    assert data.shape == (40, 40) and data.dtype.kind == "f"
    assert header["DATE-OBS"] == "2011-02-15T00:00:00.000" and header["INSTRUME"] == "HMI_SIDE1"
    assert header["CTYPE1"] == "HPLN-TAN" and header["BUNIT"] == "Gauss"
    assert list(header["HISTORY"]) == ["MindSpore Pix2Pix prediction, model pix2pix", "checkpoint Generator_2.ckpt",
                                       "input hmi_00.fits", "target keywords from hmi_00.fits",
                                       "input scaling: linear -1500..1500 -> -1..1, clipped, missing = 0",
                                       "target scaling: linear -1500..1500 -> -1..1, clipped, missing = 0",
                                       "DATE-OBS: the target file's"]
    # physical units: the network's tanh range [-1, 1] times 1500 G, not the normalised values
    assert 1.0 < np.abs(data).max() <= 1500 * 1.0001
    with open(tmp_path / "report" / "metrics.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert {"MAE_phys", "CC_phys", "flux_unsigned_target", "flux_unsigned_pred", "flux_unsigned_relerr",
            "flux_net_relerr"} <= set(rows[0])
    cfg = default_config(direction="AtoB", data_format_input="fits", data_format_target="fits",
                   input_nc=1, output_nc=1, saturation_lower_limit_target=-1500,
                   saturation_upper_limit_target=1500)
    target = load_target(find_pairs(val, "--train_data_dir", cfg)[0], cfg)
    assert np.isnan(target[0, :3, :3]).all()  # off-disk pixels, left out of the physical metrics
    assert float(rows[0]["flux_unsigned_target"]) == pytest.approx(np.nansum(np.abs(target)), rel=1e-5)
    # the FITS holds the physical values the metrics were computed on (in G, not normalised)
    valid = np.isfinite(target[0])
    assert float(rows[0]["MAE_phys"]) == pytest.approx(np.mean(np.abs(data[valid] - target[0][valid])), rel=1e-4)
    assert float(rows[0]["flux_unsigned_pred"]) == pytest.approx(np.sum(np.abs(data[valid])), rel=1e-4)
    # the exported model's card carries the FITS settings: predict.py writes the same FITS
    result = run_entry("export.py", [*model, "--ckpt", tmp_path / "ckpt" / "Generator_2.ckpt",
                                     "--file_name", tmp_path / "g"])
    assert result.returncode == 0, result.stderr[-2000:]
    result = run_entry("predict.py", ["--mindir", tmp_path / "g.mindir", "--input_dir", os.path.join(val, "input"),
                                      "--predict_dir", tmp_path / "by_mindir"])
    assert result.returncode == 0, result.stderr[-2000:]
    by_mindir = fits.getdata(tmp_path / "by_mindir" / "hmi_00.fits")
    assert np.abs(by_mindir - data).max() < 1e-5 * 1500


def sunpy_test_file(name):
    """A real solar FITS file from sunpy's test data (the sunpy wheel ships them)."""
    spec = importlib.util.find_spec("sunpy")
    if spec is None:
        pytest.fail("sunpy is in requirements.txt for its real solar test files; pip install -r requirements.txt")
    return os.path.join(spec.submodule_search_locations[0], "data", "test", name)


def test_real_solar_fits_files_read_with_units_and_missing_pixels():
    hmi = sunpy_test_file("resampled_hmi.fits")  # HMI, DN/s, big-endian float64, NaN off the disk
    data, header = read_fits(hmi)
    assert header["BUNIT"] == "DN/s" and data.shape == (100, 100) and np.isnan(data).sum() == 2430
    cfg = default_config(data_format_target="fits", logscale_target=True, saturation_lower_limit_target=2,
                   saturation_upper_limit_target=5, saturation_clip_target=True)
    model = to_model(read_array(hmi, "fits", 1), side_scaling(cfg, "target"))
    assert np.isfinite(model).all() and model.min() >= -1 and model.max() <= 1


def test_training_on_a_real_eit_pair_writes_fits_with_its_header(tmp_path):
    """Two real SOHO/EIT 195 images an hour apart (sunpy test data): predict the later from the
    earlier, on a log scale of counts, and get FITS in counts with EIT's header back."""
    data = tmp_path / "eit"
    for side, name in (("input", "efz20040301.000010_s.fits"), ("target", "efz20040301.010016_s.fits")):
        os.makedirs(data / side)
        os.symlink(sunpy_test_file(os.path.join("EIT", name)), data / side / "eit_195.fits")
    flags = ["--data_format_input", "fits", "--data_format_target", "fits", "--input_nc", "1", "--output_nc", "1",
             "--logscale_input", "True", "--logscale_target", "True", "--saturation_lower_limit_input", "0",
             "--saturation_upper_limit_input", "3.5", "--saturation_lower_limit_target", "0",
             "--saturation_upper_limit_target", "3.5", "--saturation_clip_input", "True",
             "--saturation_clip_target", "True", "--crop_size", "64", "--ngf", "8"]
    result = run_entry("train.py", ["--train_data_dir", data, *flags, "--load_size", "64", "--ndf", "8",
                                    "--n_epochs", "2", "--n_epochs_decay", "0", "--num_parallel_workers", "1",
                                    "--ckpt_dir", tmp_path / "ckpt", "--train_fakeimg_dir", tmp_path / "img",
                                    "--loss_show_dir", tmp_path / "loss"])
    assert result.returncode == 0, result.stderr[-2000:]
    result = run_entry("eval.py", ["--val_data_dir", data, *flags, "--ckpt", tmp_path / "ckpt" / "Generator_2.ckpt",
                                   "--predict_dir", tmp_path / "pred", "--report_dir", tmp_path / "report"])
    assert result.returncode == 0, result.stderr[-2000:]
    with fits.open(tmp_path / "pred" / "eit_195.fits") as hdus:
        header, predicted = hdus[0].header, hdus[0].data
    assert predicted.shape == (128, 128) and header["INSTRUME"] == "EIT" and header["BUNIT"] == "counts / pixel"
    assert 1.0 <= predicted.min() and predicted.max() <= 10 ** 3.5 * 1.0001  # counts, within the limits
