#!/usr/bin/env bash
# The Ascend 310 inference flow: preprocess -> build -> infer -> postprocess, each step logged to
# its own file under RUN_DIR/logs, stopping at the first failure with the tail of its log.
#   MINDIR_PATH      exported with export.py --batch_size 1 (its .json model card beside it)
#   DATASET_PATH     NEED_PREPROCESS=y: a folder of pairs (or of inputs only, with P2P_INPUTS_ONLY=1);
#                    NEED_PREPROCESS=n: a folder preprocess.py already wrote
#   DEVICE_TYPE      Ascend310 (default), Ascend310P, Ascend, GPU or CPU
#   DEVICE_ID        default 0
# The device step runs ascend310_infer's main when it was built (MindSpore C++ API found). Without
# it, DEVICE_TYPE CPU runs infer_bins.py, the same step with MindSpore's Python API.
# Environment: P2P_RUN_DIR (outputs; default runs/infer310_<time>), MINDSPORE_PATH (see build.sh).
USAGE="bash scripts/run_infer_310.sh [MINDIR_PATH] [DATASET_PATH] [NEED_PREPROCESS y|n] [DEVICE_TYPE] [DEVICE_ID]"
source "$(dirname "$0")/common.sh"

need_args $# 3
MINDIR=$(abs_file "$1" MINDIR_PATH) || exit 2
[ -f "$MINDIR.json" ] || die_usage "MINDIR_PATH $1 has no model card $1.json beside it (export.py writes it)"
DATASET=$(abs_dir "$2" DATASET_PATH) || exit 2
NEED_PREPROCESS=$3
case "$NEED_PREPROCESS" in y|n) ;; *) die_usage "NEED_PREPROCESS must be y or n, got '$NEED_PREPROCESS'" ;; esac
DEVICE_TYPE=${4:-Ascend310}
case "$DEVICE_TYPE" in Ascend310|Ascend310P|Ascend|GPU|CPU) ;;
    *) die_usage "DEVICE_TYPE must be Ascend310, Ascend310P, Ascend, GPU or CPU, got '$DEVICE_TYPE'" ;; esac
DEVICE_ID=${5:-0}
non_negative_int "$DEVICE_ID" DEVICE_ID
[ "$NEED_PREPROCESS" = y ] || [ -f "$DATASET/manifest.tsv" ] \
    || die_usage "NEED_PREPROCESS n: DATASET_PATH must be a folder preprocess.py wrote (no manifest.tsv in $DATASET)"

make_run_dir infer310 "$(basename "$MINDIR" .mindir)"
BUILD_DIR="$REPO_DIR/ascend310_infer/build"

# step NAME COMMAND...: run COMMAND with its output in logs/NAME.log; on failure show the tail and stop.
step() {
    local name=$1; shift
    local log="$RUN_DIR/logs/$name.log"
    echo "[$name] log: $log"
    if ! "$@" > "$log" 2>&1; then
        echo "error: step '$name' failed; last lines of $log:" >&2
        tail -n 20 "$log" >&2
        exit 1
    fi
}

if [ "$NEED_PREPROCESS" = y ]; then
    INPUTS="$RUN_DIR/preprocess_Result"
    step preprocess "$PYTHON" "$REPO_DIR/preprocess.py" --mindir "$MINDIR" --dataset_path "$DATASET" \
        --inputs_only "$([ "${P2P_INPUTS_ONLY:-0}" = 1 ] && echo True || echo False)" --output_path "$INPUTS"
else
    INPUTS="$DATASET"
fi

step build bash "$REPO_DIR/ascend310_infer/build.sh" "$BUILD_DIR"

if [ -x "$BUILD_DIR/main" ]; then
    # main is not Python, so it does not pass through src/: give it the same oneDNN ISA choice.
    eval "$(cd "$REPO_DIR" && "$PYTHON" -c 'import src.utils.runtime_env as env; env.print_exports()')"
    step infer "$BUILD_DIR/main" --mindir_path "$MINDIR" --input0_path "$INPUTS" --device_type "$DEVICE_TYPE" \
        --device_id "$DEVICE_ID" --output_dir "$RUN_DIR/result_Files" --time_dir "$RUN_DIR/time_Result"
elif [ "$DEVICE_TYPE" = CPU ]; then
    echo "[infer] main was not built (no MindSpore C++ API); running the MINDIR with MindSpore's Python API"
    step infer "$PYTHON" "$REPO_DIR/infer_bins.py" --mindir "$MINDIR" --input0_path "$INPUTS" \
        --output_dir "$RUN_DIR/result_Files" --time_dir "$RUN_DIR/time_Result"
else
    echo "error: main was not built (no MindSpore C++ API, see $RUN_DIR/logs/build.log); $DEVICE_TYPE needs it." >&2
    echo "Install the MindSpore inference package and set MINDSPORE_PATH, or use DEVICE_TYPE CPU." >&2
    exit 1
fi

step postprocess "$PYTHON" "$REPO_DIR/postprocess.py" --preprocess_path "$INPUTS" \
    --result_path "$RUN_DIR/result_Files" --predict_dir "$RUN_DIR/predict" --report_dir "$RUN_DIR/report"
cat "$RUN_DIR/time_Result/test_perform_static.txt"
tail -n 8 "$RUN_DIR/logs/postprocess.log"
echo "predictions: $RUN_DIR/predict; report: $RUN_DIR/report"
