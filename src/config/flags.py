"""Every command-line flag of every entry point, declared once, with its default.

Each entry point calls `parse_args(ENTRY, argv)` (src/config/parse.py); the entry's name picks
which flag groups `build_parser` adds, so `--help` lists only what that command uses. Flag names
follow the MindSpore model zoo's pix2pix where it has one (device_target, LAMBDA_L1,
train_data_dir, ...). A flag whose default depends on other flags has the default None here and
says "derived" in its help: src/config/derive.py computes it. A model's own flags, and its
values of the shared model-dependent flags (`Model.defaults`), are declared in its module.
"""
import argparse

from src.models.registry import models
from src.utils.flag_types import (PADDING_TYPES, duration, non_negative_float, non_negative_int, optional_float,
                                  padding_name, port_number, positive_float, positive_int, str2bool, unit_interval)


# mindspore.device_context.ascend.op_precision.precision_mode's values (MindSpore 2.6 to 2.10).
ASCEND_PRECISION_MODES = ["must_keep_origin_dtype", "allow_fp32_to_fp16", "force_fp16", "allow_mix_precision",
                          "force_fp32", "allow_fp32_to_bf16", "allow_mix_precision_fp16", "allow_mix_precision_bf16"]


def _add_device(parser):
    group = parser.add_argument_group("device")
    group.add_argument("--device_target", default="CPU", choices=["CPU", "GPU", "Ascend"],
                       help="backend to run on (default: %(default)s)")
    group.add_argument("--device_id", type=non_negative_int, default=0,
                       help="device index on a single-card run; launchers set it per rank (default: %(default)s)")
    group.add_argument("--jit_level", default=None, choices=["O0", "O1"],
                       help="MindSpore's compile level on GPU and Ascend: O0 kernel by kernel, O1 adds its automatic "
                            "operator (graph-kernel) fusion, which MindSpore calls experimental (default: O0 on GPU "
                            "and Ascend, MindSpore's own choice on CPU; docs/devices.md says why)")
    group.add_argument("--ascend_precision_mode", default=None, choices=ASCEND_PRECISION_MODES,
                       help="Ascend's operator precision mode (default: must_keep_origin_dtype: float32 as trained "
                            "and measured on CPU; --amp_level is the way to float16; docs/devices.md)")


def _add_distribute(parser):
    parser.add_argument_group("data parallel").add_argument(
        "--run_distribute", type=str2bool, default=False,
        help="True: data-parallel over all ranks started by msrun/mpirun; "
             "gradients are averaged across ranks (default: %(default)s)")


def _add_model(parser):
    group = parser.add_argument_group(
        "model", "A generator checkpoint records these: eval and export need them only for a checkpoint "
                 "written before checkpoints did.")
    registered = models()
    group.add_argument("--model", default="pix2pix", choices=list(registered),
                       help="; ".join(f"{name}: {model.summary}" for name, model in registered.items())
                            + " (default: %(default)s)")
    group.add_argument("--input_nc", type=positive_int, default=3,
                       help="channels of the input image (3 RGB, 1 grey) (default: %(default)s)")
    group.add_argument("--output_nc", type=positive_int, default=3,
                       help="channels of the output image (default: %(default)s)")
    group.add_argument("--ngf", "--n_gf", type=positive_int, default=64,
                       help="generator filters in the first layer (default: %(default)s)")
    group.add_argument("--norm", default=None, choices=["batch", "instance"],
                       help="normalisation layer of the generator (and of pix2pix's discriminator); " +
                            DERIVED + _per_model("norm"))
    group.add_argument("--padding_type", "--pad_mode", type=padding_name, default=None,
                       choices=list(PADDING_TYPES),
                       help="padding of the convolutions (--pad_mode CONSTANT/REFLECT, the zoo's names, "
                            "mean zero/reflection); " + DERIVED + _per_model("padding_type"))
    group.add_argument("--crop_size", type=positive_int, default=256,
                       help="square size the networks are trained on; a multiple of 32. The U-Net's "
                            "depth follows it: 8 downsamplings at 256, 7 at 128, 6 at 64, 5 at 32 "
                            "(default: %(default)s)")
    for model in registered.values():
        model.add_generator_flags(parser.add_argument_group(f"{model.name} generator (--model {model.name})"))


def _add_training_model(parser):
    group = parser.add_argument_group("discriminator and objective")
    group.add_argument("--ndf", "--n_df", type=positive_int, default=64,
                       help="discriminator filters in the first layer (default: %(default)s)")
    group.add_argument("--lambda_GAN", "--LAMBDA_GAN", "--lambda_LSGAN", type=float, default=None,
                       help="weight of G's adversarial loss; " + DERIVED + _per_model("lambda_GAN"))
    for model in models().values():
        model.add_training_flags(parser.add_argument_group(
            f"{model.name} discriminator and objective (--model {model.name})"))


def _add_metrics(parser):
    for model in models().values():
        model.add_metric_flags(parser.add_argument_group(f"{model.name} metrics (--model {model.name})"))


# How the help of a flag whose default depends on other flags begins its default: validate()
# in src/config/derive.py computes every such value (DERIVED_FLAGS there lists them).
DERIVED = "default (derived): "


def _per_model(flag):
    return ", ".join(f"{model.defaults[flag]} for {name}" for name, model in models().items())


def _add_init(parser):
    group = parser.add_argument_group("initialisation")
    group.add_argument("--init_type", default="normal",
                       choices=["normal", "xavier", "kaiming", "orthogonal"],
                       help="weight initialisation (default: %(default)s)")
    group.add_argument("--init_gain", type=positive_float, default=0.02,
                       help="scale of the initialisation (default: %(default)s)")
    group.add_argument("--seed", type=int, default=1,
                       help="seed of weights, data order, crops, flips and dropout (default: %(default)s)")
    group.add_argument("--pretrained_G", default=None,
                       help="start from this generator checkpoint's weights instead of --init_type's: a "
                            "Generator_*.ckpt of train.py or of import_pytorch.py (the PyTorch reference's "
                            "generators). The flags it records (architecture, crop size, direction, data "
                            "formats, dropout) are taken unless given here (default: none)")
    group.add_argument("--pretrained_D", default=None,
                       help="start from this discriminator checkpoint's weights (Discriminator_*.ckpt); its "
                            "architecture must be this run's (default: none)")


def _add_direction(group):
    group.add_argument("--direction", default="AtoB", choices=["AtoB", "BtoA"],
                       help="AtoB: the left half of an AB image is the input; BtoA: the right half "
                            "(default: %(default)s)")


def _add_data_format(parser):
    group = parser.add_argument_group(
        "data formats and normalisation", "Names as in pix2pixCC; _input is the network's input, _target "
                                          "its target and output. Checkpoints record them.")
    for side in ("input", "target"):
        group.add_argument(f"--data_format_{side}", default="image",
                           choices=["image", "png", "jpg", "tif", "npy", "fits"],
                           help=f"file format of the {side} side: image (any 8-bit png/jpg/bmp), or "
                                "tif/npy/fits arrays in physical units (default: %(default)s)")
    for side in ("input", "target"):
        group.add_argument(f"--logscale_{side}", type=str2bool, default=False,
                           help=f"True: the {side} is mapped on log10 (EUV intensities); its limits are "
                                "then in log10 units (default: %(default)s)")
        group.add_argument(f"--saturation_lower_limit_{side}", type=float, default=None,
                           help=f"value of the {side} mapped to -1; default 0 for 8-bit images, -1 for "
                                "tif/npy/fits as in pix2pixCC")
        group.add_argument(f"--saturation_upper_limit_{side}", type=float, default=None,
                           help=f"value of the {side} mapped to +1; default 255 for 8-bit images, 1 for "
                                "tif/npy/fits")
        group.add_argument(f"--saturation_clip_{side}", type=str2bool, default=False,
                           help=f"True: clip the {side} to its limits before mapping (default: %(default)s)")
        group.add_argument(f"--nan_fill_{side}", type=optional_float, default=None,
                           help=f"physical value that replaces missing {side} pixels (NaN, inf, BLANK; and "
                                "<= 0 under logscale); default 0, or 0.1 under logscale, as in pix2pixCC")
    group.add_argument("--fits_hdu", default="auto",
                       help="FITS HDU to read, by index or name; auto: the primary HDU, or the first "
                            "extension holding an image (compressed files) (default: %(default)s)")
    group.add_argument("--target_unit", default=None,
                       help="BUNIT written into FITS predictions (e.g. Gauss); default: the target "
                            "file's BUNIT when there is one")
    group.add_argument("--lead_time", type=duration, default=None,
                       help="time from the input's observation to the target's, e.g. 0 (simultaneous), "
                            "90s, 12min, 6h, 1d: a FITS prediction's DATE-OBS is the input's plus this; "
                            "default: the target file's DATE-OBS in eval, none without a target")
    group.add_argument("--fits_mean_channels", type=str2bool, default=False,
                       help="True: a multi-channel prediction is written to FITS as the mean of its "
                            "channels (one image), as the solar pipeline does (default: %(default)s)")


def _add_data(parser):
    group = parser.add_argument_group("data")
    _add_direction(group)
    group.add_argument("--load_size", type=positive_int, default=286,
                       help="images are resized to this square size before the random crop "
                            "(default: %(default)s)")
    group.add_argument("--resize_or_crop", "--preprocess", default="resize_and_crop",
                       choices=["resize_and_crop", "crop"],
                       help="how training samples are cut (--preprocess: the reference pix2pix's name, kept as "
                            "an alias; this project's preprocess is the 310 step); resize_and_crop: resize to "
                            "--load_size, then a random --crop_size crop "
                            "(pix2pix); crop: keep the data's own plate scale (no resize): pad the edges "
                            "by --padding_size, rotate by up to --max_rotation_angle, then a random "
                            "--crop_size crop, both sides alike (pix2pixCC) (default: %(default)s)")
    group.add_argument("--padding_size", type=non_negative_int, default=0,
                       help="with --resize_or_crop crop: pixels added on every side by repeating the edge, "
                            "so that crops reach the borders (pix2pixCC's name) (default: %(default)s)")
    group.add_argument("--max_rotation_angle", type=non_negative_float, default=0.0,
                       help="with --resize_or_crop crop: rotate both sides by one random angle within "
                            "+-this many degrees (pix2pixCC's name; 0: none) (default: %(default)s)")
    group.add_argument("--no_flip", type=str2bool, default=None,
                       help="True: no random horizontal flip; False flips arrays too; " + DERIVED +
                            "flip 8-bit images, not tif/npy/fits arrays, whose mirror is unphysical (a "
                            "magnetogram's polarity rule, solar rotation in a t -> t+dt pair)")
    group.add_argument("--polarity_flip", type=str2bool, default=False,
                       help="for half the samples, mirror input and target left-right "
                            "and multiply both by -1 (the solar pipeline's augmentation for "
                            "line-of-sight magnetograms: mirroring alone breaks Hale's polarity rule); "
                            "needs symmetric linear limits on both sides and no plain flip "
                            "(default: %(default)s)")
    group.add_argument("--batch_size", type=positive_int, default=1,
                       help="images per step on each device (default: %(default)s)")
    group.add_argument("--num_parallel_workers", type=positive_int, default=2,
                       help="data loading workers (default: %(default)s)")


def _add_train_data(parser):
    group = parser.add_argument_group("training data")
    group.add_argument(
        "--train_data_dir", required=True,
        help="folder of training pairs: a pairs.csv (columns input,target, paths relative to "
             "it), input/ and target/ subfolders paired by file name, or AB images (input and "
             "target side by side)")
    _add_palette(group, "recorded in the generator checkpoints and the model card for the served page's "
                        "drawing canvas (default: the label colours found in the training inputs, unnamed, "
                        "if a few colours cover them)")


def _add_palette(group, use):
    group.add_argument("--palette", default=None,
                       help="a legend of a label-map model's input colours (YAML or JSON: label name -> "
                            "\"#rrggbb\" or [r, g, b], the eraser's first), " + use)


def _add_val_data(parser, required):
    parser.add_argument_group("evaluation data").add_argument(
        "--val_data_dir", required=required,
        help="folder of evaluation pairs, in the same layout as the training data")


def _add_optim(parser):
    group = parser.add_argument_group("objective and optimiser")
    group.add_argument("--lr", type=positive_float, default=0.0002,
                       help="initial Adam learning rate of G and D (default: %(default)s)")
    group.add_argument("--beta1", type=float, default=0.5, help="Adam beta1 (default: %(default)s)")
    group.add_argument("--beta2", type=float, default=0.999, help="Adam beta2 (default: %(default)s)")
    group.add_argument("--lr_policy", default="linear", choices=["linear", "constant", "cosine"],
                       help="linear: constant for n_epochs then linearly to 0 over n_epochs_decay; "
                            "cosine: cosine to 0 over all epochs (default: %(default)s)")
    group.add_argument("--n_epochs", type=non_negative_int, default=100,
                       help="epochs at the initial learning rate (default: %(default)s)")
    group.add_argument("--n_epochs_decay", type=non_negative_int, default=100,
                       help="epochs of linear decay to 0 (default: %(default)s)")
    group.add_argument("--epoch_num", type=positive_int, default=None,
                       help="epochs to train; " + DERIVED + "--n_epochs + --n_epochs_decay")
    group.add_argument("--ema_decay", type=unit_interval, default=None,
                       help="decay of an exponential moving average of G's weights, saved in "
                            "Generator_<epoch>.ckpt for eval and export in place of the last weights; "
                            "0 turns it off (bench/QUALITY.md measures it); " + DERIVED + _per_model("ema_decay"))
    group.add_argument("--ema_every", type=positive_int, default=10,
                       help="update the weight average every N steps with the decay raised to the N-th "
                            "power: an update reads and writes all of G's weights, about half a 64-px "
                            "step; 1 updates every step (bench/RESULTS.md measures both) "
                            "(default: %(default)s)")
    group.add_argument("--amp_level", default="O0", choices=["O0", "O2", "O3"],
                       help="mixed precision on Ascend/GPU; CPU runs O0 (default: %(default)s)")
    group.add_argument("--loss_scale", type=float, default=0.0,
                       help="initial dynamic loss scale for mixed precision (e.g. 65536); 0 turns "
                            "loss scaling off (default: %(default)s)")


def _add_train_output(parser):
    group = parser.add_argument_group("training outputs")
    group.add_argument("--ckpt_dir", default="./results/ckpt",
                       help="checkpoints and the resume state (default: %(default)s)")
    group.add_argument("--train_fakeimg_dir", default="./results/fake_img",
                       help="a sample grid input | generated | target per epoch (default: %(default)s)")
    group.add_argument("--loss_show_dir", default="./results/loss_show",
                       help="loss CSV and loss-curve PNG (default: %(default)s)")
    group.add_argument("--save_checkpoint_epochs", type=positive_int, default=1,
                       help="write Generator_<epoch>.ckpt and Discriminator_<epoch>.ckpt every this "
                            "many epochs, and at the end (default: %(default)s)")
    group.add_argument("--save_checkpoint_steps", type=non_negative_int, default=0,
                       help="also write the resume state every this many steps, so a killed run "
                            "loses little; 0: only at checkpoint epochs (default: %(default)s)")
    group.add_argument("--resume", type=str2bool, default=False,
                       help="True: continue the run whose resume state is in ckpt_dir, with its "
                            "weights, optimiser state, epoch and step (default: %(default)s)")
    group.add_argument("--print_interval", type=positive_int, default=10,
                       help="print a progress line every this many steps (default: %(default)s)")
    group.add_argument("--tensorboard_dir", default=None,
                       help="TensorBoard event files to watch the run live with tensorboard --logdir: "
                            "losses, learning rates and seconds per step every --print_interval, "
                            "validation metrics, each epoch's sample grid, the flags (as text and "
                            "hparams); rank 0 writes them, --resume continues them; '' turns them off; "
                            + DERIVED + "tensorboard/ beside --loss_show_dir (./results/tensorboard)")


# --best_metric's choices, and whether a lower value is better.
BEST_METRICS = {"L1": True, "MSE": True, "PSNR": False, "SSIM": False, "CC": False,
                "MAE_phys": True, "RMSE_phys": True, "CC_phys": False}


def _add_validation(parser):
    group = parser.add_argument_group("validation during training")
    group.add_argument("--val_interval", type=non_negative_int, default=1,
                       help="every this many epochs (and at the last), translate all of --val_data_dir "
                            "with the current generator in inference mode and append the mean metrics to "
                            "val_metrics.csv and val_curve.png in --loss_show_dir; 0: off; needs "
                            "--val_data_dir (default: %(default)s)")
    group.add_argument("--best_metric", default=None, choices=sorted(BEST_METRICS),
                       help="the validation metric that picks Generator_best.ckpt (with "
                            "Generator_best.json: its epoch and value); L1, MSE, MAE_phys, RMSE_phys: "
                            "lower is better; " + DERIVED + "L1 for 8-bit targets, CC for arrays (FITS, npy, tif)")
    _add_bn_stats(group)


def _add_eval(parser):
    group = parser.add_argument_group("evaluation")
    group.add_argument("--val_data_dir", required=True,
                       help="folder of pairs to evaluate, in a layout training takes")
    _add_direction(group)
    model = group.add_mutually_exclusive_group(required=True)
    model.add_argument("--ckpt", help="generator checkpoint (Generator_<epoch>.ckpt)")
    model.add_argument("--onnx", default=None,
                       help="or an ONNX file written by export.py (its .json model card beside it), run by "
                            "onnxruntime; the card gives the model and data flags")
    group.add_argument("--batch_size", type=positive_int, default=1,
                       help="images per forward pass (default: %(default)s)")
    group.add_argument("--predict_dir", default="./results/predict",
                       help="predictions, named like the inputs, at the inputs' size (default: %(default)s)")
    group.add_argument("--report_dir", default="./results/eval",
                       help="metrics.csv, summary.json, metrics.png, report.pdf, collages/ "
                            "(default: %(default)s)")
    _add_bn_stats(group)


def _add_inference(parser):
    group = parser.add_argument_group("inference at any size")
    group.add_argument("--tile_size", type=positive_int, default=1024,
                       help="images larger than this are translated in overlapping tiles of this size, "
                            "blended without seams; a multiple of the network's size unit (2**depth of "
                            "the U-Net, 2**n_downsample for pix2pixcc) (default: %(default)s)")
    group.add_argument("--tile_overlap", type=non_negative_int, default=None,
                       help="least overlap of neighbouring tiles in pixels, below half the tile; "
                            "default: tile_size / 8")
    group.add_argument("--inference_size", type=positive_int, default=None,
                       help="the old behaviour: resize every input to this square size, translate, and "
                            "resize the output back; default: translate at the input's own size")


def _add_bn_stats(group):
    group.add_argument("--bn_stats", default="image", choices=["running", "image"],
                       help="batch-norm statistics when translating: image (each forward pass's own, one "
                            "image at a time, as the pix2pix paper and the PyTorch pix2pix test by default; "
                            "better on bench/QUALITY.md at 128 px) or running (the averages kept in training); "
                            "dropout is off in both; no effect on instance norm (default: %(default)s)")


def _add_export(parser):
    group = parser.add_argument_group("export")
    group.add_argument("--ckpt", required=True, help="generator checkpoint (Generator_<epoch>.ckpt)")
    group.add_argument("--file_name", default="./results/pix2pix_generator",
                       help="output path; the format's suffix is added (default: %(default)s)")
    group.add_argument("--file_format", default="MINDIR", choices=["MINDIR", "AIR", "ONNX"],
                       help="MINDIR for MindSpore and Ascend 310, AIR on Ascend only, ONNX for ONNX Runtime, "
                            "TensorRT, OpenVINO (default: %(default)s)")
    group.add_argument("--batch_size", type=positive_int, default=1,
                       help="batch size the exported graph takes (default: %(default)s)")
    group.add_argument("--image_size", type=positive_int, default=None,
                       help="square input size of a static exported graph; default: any height and width "
                            "(multiples of the network's size unit) for MINDIR and ONNX, --crop_size for AIR")
    _add_bn_stats(group)
    _add_direction(group)


ONNX_HELP = ("ONNX file written by export.py --file_format ONNX (its .json model card must be beside it), run "
             "by onnxruntime: on CUDA with --device_target GPU when onnxruntime-gpu is installed, else on the CPU")


def _add_predict(parser):
    group = parser.add_argument_group("prediction with an exported model (one of --mindir, --onnx)")
    model = group.add_mutually_exclusive_group(required=True)
    model.add_argument("--mindir", default=None,
                       help="MINDIR written by export.py (its .json model card must be beside it), run by MindSpore")
    model.add_argument("--onnx", default=None, help=ONNX_HELP)
    group.add_argument("--input_dir", required=True,
                       help="folder of input images (only the input side, not AB pairs)")
    group.add_argument("--predict_dir", default="./results/predict_mindir",
                       help="translated images, named like the inputs (default: %(default)s)")


def _add_preprocess(parser):
    group = parser.add_argument_group("310 flow: preprocess")
    group.add_argument("--mindir", required=True,
                       help="MINDIR written by export.py with --batch_size 1; its .json model card "
                            "says how to read and normalise the data")
    group.add_argument("--dataset_path", required=True,
                       help="folder of pairs in a layout training takes (or of inputs only, with "
                            "--inputs_only True)")
    group.add_argument("--inputs_only", type=str2bool, default=False,
                       help="True: every image of --dataset_path is an input, there are no targets "
                            "and no metrics (default: %(default)s)")
    group.add_argument("--output_path", default="./preprocess_Result",
                       help="<name>.bin per image (float32 NCHW), manifest.tsv, samples.json "
                            "(default: %(default)s)")


def _add_infer_bins(parser):
    group = parser.add_argument_group("310 flow: the device step with MindSpore's Python API")
    group.add_argument("--mindir", required=True, help="MINDIR written by export.py with --batch_size 1")
    group.add_argument("--input0_path", required=True,
                       help="folder written by preprocess.py (.bin files and manifest.tsv)")
    group.add_argument("--output_dir", default="./result_Files",
                       help="<name>_0.bin per input, as ascend310_infer's main writes (default: %(default)s)")
    group.add_argument("--time_dir", default="./time_Result",
                       help="test_perform_static.txt with latency statistics (default: %(default)s)")


def _add_postprocess(parser):
    group = parser.add_argument_group("310 flow: postprocess")
    group.add_argument("--preprocess_path", default="./preprocess_Result",
                       help="folder preprocess.py wrote (samples.json, input .bin files) (default: %(default)s)")
    group.add_argument("--result_path", default="./result_Files",
                       help="<name>_0.bin outputs of main or infer_bins.py (default: %(default)s)")
    group.add_argument("--predict_dir", default="./results/predict_310",
                       help="predictions named like the inputs, at their size (default: %(default)s)")
    group.add_argument("--report_dir", default="./results/eval_310",
                       help="metrics.csv, summary.json, metrics.png, report.pdf, collages/ when the "
                            "data have targets (default: %(default)s)")


def _add_pair_files(parser):
    group = parser.add_argument_group("pairing")
    group.add_argument("--input_dir", required=True, help="folder of input files")
    group.add_argument("--target_dir", required=True, help="folder of target files")
    group.add_argument("--key_regex", default=None,
                       help="regular expression whose groups, found in an input file name, form the "
                            "pairing key, e.g. 'AR(\\d+)_(\\d{8}_\\d{4})'; needed unless --time_tolerance")
    group.add_argument("--target_key_regex", default=None,
                       help="the key's expression for target names when it differs (e.g. another "
                            "instrument's naming); default: --key_regex")
    group.add_argument("--time_tolerance", type=duration, default=None,
                       help="pair FITS files by observation time (DATE-OBS, DATE_OBS, T_OBS or T_REC) "
                            "instead of by name: each input with the target observed closest to its "
                            "time plus --lead_time, if within this (e.g. 6min); a target serves one "
                            "input at most")
    group.add_argument("--lead_time", type=duration, default=0.0,
                       help="with --time_tolerance: the target is observed this long after the input, "
                            "e.g. 6h for a 6-hour forecast (default: 0, simultaneous)")
    group.add_argument("--output", default="./pairs.csv",
                       help="pairs.csv to write (key,input,target; paths relative to it) (default: %(default)s)")


def _add_split_data(parser):
    group = parser.add_argument_group("splitting")
    group.add_argument("--pairs_csv", required=True, help="pairs.csv written by pair_files.py")
    group.add_argument("--output_dir", required=True,
                       help="train/pairs.csv and test/pairs.csv are written here")
    group.add_argument("--test_ratio", type=float, default=0.2,
                       help="share of the pairs that go to test (default: %(default)s)")
    group.add_argument("--seed", type=int, default=1, help="seed of the split (default: %(default)s)")
    group.add_argument("--chronological", type=str2bool, default=False,
                       help="True: the latest pairs (by the input FITS files' observation times) go "
                            "to test and the earlier ones to train, so that the test period follows "
                            "training; with --group_regex, whole groups by their first time "
                            "(default: %(default)s)")
    group.add_argument("--group_regex", default=None,
                       help="regular expression whose groups, found in the input file name, name a "
                            "group (e.g. 'AR(\\d+)'); a group lies wholly in train or in test, so "
                            "frames of one region do not leak into the test set")


def _add_serve(parser):
    group = parser.add_argument_group("serving over HTTP (the model: one of --mindir, --onnx, --ckpt)")
    model = group.add_mutually_exclusive_group(required=True)
    model.add_argument("--mindir", default=None,
                       help="MINDIR written by export.py (its .json model card must be beside it)")
    model.add_argument("--onnx", default=None, help=ONNX_HELP)
    model.add_argument("--ckpt", default=None,
                       help="a generator checkpoint instead (Generator_<epoch>.ckpt of a train.py that "
                            "records its flags), served as eval.py translates by default: batch norm with each image's own "
                            "statistics (export with --bn_stats running and serve the MINDIR for running statistics)")
    group.add_argument("--host", default="127.0.0.1",
                       help="address to listen on; 0.0.0.0 serves every network interface, e.g. to "
                            "colleagues on the LAN (default: %(default)s)")
    group.add_argument("--port", type=port_number, default=8000,
                       help="TCP port (default: %(default)s)")
    group.add_argument("--max_upload_mb", type=positive_float, default=50.0,
                       help="largest upload accepted, in megabytes (10^6 bytes); larger ones get 413 "
                            "(default: %(default)s)")
    group.add_argument("--workers", type=positive_int, default=1,
                       help="server processes, each with its own copy of the model; within one, the "
                            "model's graph calls run one at a time (default: %(default)s)")
    group.add_argument("--examples", default=None,
                       help="a folder of example inputs the page's drawing canvas offers as a start "
                            "(images the model reads; default: none, start blank or from an upload)")
    _add_palette(group, "offered by the page's drawing canvas with its names (default: the colours the "
                        "model card records)")
    _add_serve_limits(parser)


# --max_pixels' default: 2048 x 2048. A translation holds about 135 bytes a pixel (measured here:
# a 2048x2048 RGB PNG, 1024-px tiles, peak RSS 540 MB above the loaded model), so about 0.6 GB.
DEFAULT_MAX_PIXELS = 2048 * 2048
# The environment variable --api_key may come from, which keeps the key out of the process list.
API_KEY_VARIABLE = "PIX2PIX_API_KEY"


def _add_serve_limits(parser):
    group = parser.add_argument_group("serving: limits, access and shutdown")
    group.add_argument("--max_pixels", type=positive_int, default=DEFAULT_MAX_PIXELS,
                       help="largest upload in pixels (width x height; FITS, npy, TIFF: values / the "
                            "model's channels), read from the file's header before any decoding; larger "
                            "ones get 413. A translation holds about 135 bytes a pixel (RGB), so the "
                            "default (2048 x 2048) needs about 0.6 GB a request (default: %(default)s)")
    group.add_argument("--request_timeout", type=positive_float, default=300.0,
                       help="seconds a translation may take once its upload has arrived, waiting included; past it the request is "
                            "answered 503 and its work stops at the next tile (default: %(default)s)")
    group.add_argument("--max_queue", type=non_negative_int, default=8,
                       help="translations that may wait while the server is busy; beyond them a request "
                            "is answered 503 at once with a Retry-After header (default: %(default)s)")
    group.add_argument("--api_key", default=None,
                       help=f"a key every endpoint but /health (and the page and API docs, which hold no "
                            f"data) asks for, as 'Authorization: Bearer KEY' or 'X-API-Key: KEY'; else 401. "
                            f"Better set it in the environment variable {API_KEY_VARIABLE}, out of the "
                            "process list (default: no key)")
    group.add_argument("--show_paths", type=str2bool, default=False,
                       help="True: the model card at /model and on the page shows the server's full file "
                            "paths (checkpoint, served file); default: file names only")
    group.add_argument("--shutdown_timeout", type=non_negative_float, default=30.0,
                       help="on SIGTERM or Ctrl-C: seconds in-flight translations may still take; then "
                            "they are answered 503 and the process exits 0 (default: %(default)s)")


def _add_import_pytorch(parser):
    group = parser.add_argument_group(
        "the PyTorch reference's checkpoints", "The architecture comes from the state dict: U-Net depth "
        "(unet_128, unet_256, ...), ngf, channels, batch or instance norm; PatchGAN depth and ndf.")
    group.add_argument("--pth", required=True,
                       help="the reference's generator state dict (latest_net_G.pth, <epoch>_net_G.pth; "
                            "reading a .pth needs torch), or the same tensors as a .npz (NumPy)")
    group.add_argument("--pth_D", default=None,
                       help="its discriminator's state dict (<epoch>_net_D.pth or .npz), to fine-tune both "
                            "(default: none, the generator alone)")
    group.add_argument("--out_dir", default="./results/imported",
                       help="where Generator_imported.ckpt (and Discriminator_imported.ckpt) are written "
                            "(default: %(default)s)")
    group.add_argument("--dropout", type=str2bool, default=True,
                       help="whether the generator was trained with dropout (a state dict cannot tell; the "
                            "reference's default and its pretrained models: yes), recorded for fine-tuning "
                            "(default: %(default)s)")
    _add_direction(group)


ENTRY_GROUPS = {
    "train": (_add_device, _add_distribute, _add_model, _add_training_model, _add_metrics, _add_init, _add_data,
              _add_data_format, _add_train_data, lambda p: _add_val_data(p, required=False), _add_validation, _add_inference,
              _add_optim,
              _add_train_output),
    "eval": (_add_device, _add_model, _add_metrics, _add_eval, _add_data_format, _add_inference),
    "export": (_add_device, _add_model, _add_metrics, _add_export, _add_data_format),
    "predict": (_add_device, _add_predict, _add_inference),
    "serve": (_add_device, _add_serve, _add_inference),
    "preprocess": (_add_preprocess, _add_inference),
    "infer_bins": (_add_device, _add_infer_bins),
    "postprocess": (_add_postprocess,),
    "pair_files": (_add_pair_files,),
    "split_data": (_add_split_data,),
    "import_pytorch": (_add_import_pytorch,),
}

DESCRIPTIONS = {
    "train": "Train Pix2Pix (U-Net generator + PatchGAN discriminator) on paired images.",
    "eval": "Translate a folder of pairs with a generator checkpoint; write the predictions, "
            "per-image metrics, plots and a PDF report.",
    "export": "Export a generator checkpoint to MINDIR, AIR or ONNX for inference.",
    "predict": "Translate a folder of images with an exported MINDIR (no training code or "
               "checkpoint needed).",
    "serve": "Serve a trained generator over HTTP: POST /translate, GET /model, GET /health, "
             "API docs at /docs and a web page at / to try it in a browser.",
    "preprocess": "Ascend 310 flow, step 1: turn a dataset into the C++ harness's inputs, one "
                  "float32 NCHW .bin per image normalised as eval.py does, plus a manifest.",
    "infer_bins": "Ascend 310 flow, step 2 without a 310: run an exported MINDIR over "
                  "preprocess.py's .bin files with MindSpore's Python API, writing result_Files/ "
                  "and time_Result/ exactly as ascend310_infer's main does.",
    "pair_files": "Pair the files of two folders by a key found in their names with a regular "
                  "expression, and write a pairs.csv that train.py and eval.py read.",
    "split_data": "Split a pairs.csv into train and test by ratio, with a seed, optionally keeping "
                  "every group (e.g. an active region) on one side.",
    "import_pytorch": "Turn the PyTorch reference pix2pix's checkpoints (*_net_G.pth, *_net_D.pth) into "
                      "this project's, which eval.py, export.py, predict.py, serve.py and train.py "
                      "(--pretrained_G) take.",
    "postprocess": "Ascend 310 flow, step 3: turn result_Files/*.bin into predictions named like "
                   "the inputs and, where targets exist, eval.py's metrics and report.",
}

# The entry points whose flags describe a model and its data, in the order their defaults are
# taken for a config built outside a command line (default_config: a model card, a test).
DEFAULT_CONFIG_ENTRIES = ("train", "eval", "export", "predict")
CONFIG_FILE = "config.yaml"


def build_parser(entry):
    parser = argparse.ArgumentParser(prog=f"{entry}.py", description=DESCRIPTIONS[entry])
    parser.add_argument("--config_path", default=None,
                        help="YAML file of flag values (keys: flag names without --, as in configs/ or "
                             f"the {CONFIG_FILE} a run writes); flags given on the command line override "
                             "it; keys of flags this command does not take are ignored")
    for add_group in ENTRY_GROUPS[entry]:
        add_group(parser)
    return parser
