"""Fast convolution kernels on every CPU, and quiet logs: src/utils/runtime_env.py."""
import os

from conftest import run_entry, tiny_train_args, write_ab_folder
from src.utils import runtime_env

AVX2_CPU = {"sse4_2", "avx", "avx2", "fma"}
AVX512_CPU = AVX2_CPU | {"avx512f", "avx512bw", "avx512_bf16"}


def test_avx512_cpus_are_capped_at_avx2_and_others_left_alone():
    environ = {}
    runtime_env.configure(environ, AVX512_CPU)
    assert environ["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    environ = {}
    runtime_env.configure(environ, AVX2_CPU)
    assert "ONEDNN_MAX_CPU_ISA" not in environ


def test_a_choice_the_user_made_is_never_overridden():
    for name in ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA"):
        environ = {name: "ALL", "GLOG_v": "1"}
        runtime_env.configure(environ, AVX512_CPU)
        assert environ == {name: "ALL", "GLOG_v": "1"}


def test_mindspore_logs_errors_only_by_default():
    environ = {}
    runtime_env.configure(environ, AVX2_CPU)
    assert environ["GLOG_v"] == "3"


def test_reference_kernels_are_recognised_in_onednn_verbose_output():
    # Lines as oneDNN 3.10 prints them: the first is the AVX-512 fallback this project avoids.
    text = "\n".join([
        "onednn_verbose,v1,info,cpu,isa:Intel AVX-512 with AVX512BW, AVX512VL, and AVX512DQ extensions",
        "onednn_verbose,v1,primitive,exec,cpu,convolution,jit_uni_ncsp:conv+ref:any,forward_training,"
        "src:f32::blocked:abcd::f0,,alg:convolution_direct,mb1_ic64oc128_ih32oh16kh4sh2dh0ph1,59.1",
        "onednn_verbose,v1,primitive,exec,cpu,convolution,x64:gemm:jit,backward_data,"
        "src:f32::blocked:abcd::f0,,alg:convolution_direct,mb1_ic64oc128_ih32oh16kh4sh2dh0ph1,1.2",
        "onednn_verbose,v1,primitive,exec,cpu,deconvolution,ref:any,forward_inference,,,,mb1,3.0",
        "onednn_verbose,v1,primitive,exec,cpu,batch_normalization,ncsp_bnorm:any,forward_training,,,,mb1,0.1",
    ])
    found = runtime_env.onednn_implementations(text)
    assert found[("convolution", "backward_data")] == {"x64:gemm:jit": 1}
    assert runtime_env.reference_convolutions(found) == [
        ("convolution", "forward_training", "jit_uni_ncsp:conv+ref:any"),
        ("deconvolution", "forward_inference", "ref:any")]


def assert_fast_convolutions(result, propagations):
    """Every convolution in `result`'s ONEDNN_VERBOSE output ran a fast kernel, and each of
    `propagations` was seen (so the check cannot pass on output without convolutions)."""
    assert result.returncode == 0, result.stderr[-2000:]
    found = runtime_env.onednn_implementations(result.stdout)
    assert {("convolution", prop) for prop in propagations} <= set(found), found
    assert runtime_env.reference_convolutions(found) == [], found


def test_training_and_exported_inference_never_run_reference_convolutions(tmp_path):
    verbose = {"ONEDNN_VERBOSE": "1"}
    data = write_ab_folder(str(tmp_path / "ab"), 2)
    out = str(tmp_path / "run")
    trained = run_entry("train.py", tiny_train_args(data, out, "--n_epochs_decay", "0"), env=verbose)
    assert_fast_convolutions(trained, ("forward_training", "backward_data", "backward_weights"))

    ckpt = os.path.join(out, "ckpt", "Generator_1.ckpt")
    mindir = str(tmp_path / "generator")
    exported = run_entry("export.py", ["--ckpt", ckpt, "--crop_size", "32", "--ngf", "8",
                                       "--file_name", mindir])
    assert exported.returncode == 0, exported.stderr[-2000:]
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    for name in sorted(os.listdir(data)):  # AB pictures serve as plain 3-channel inputs here
        os.link(os.path.join(data, name), inputs / name)
    predicted = run_entry("predict.py", ["--mindir", mindir + ".mindir", "--input_dir", inputs,
                                         "--predict_dir", tmp_path / "pred"], env=verbose)
    # MindSpore creates even inference convolutions as forward_training primitives; the U-Net's
    # decoder runs its transposed convolutions as backward_data primitives.
    assert_fast_convolutions(predicted, ("forward_training", "backward_data"))
