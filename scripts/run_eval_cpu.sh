#!/usr/bin/env bash
# Evaluate a generator checkpoint on the dataset's val (or test) split on CPU.
USAGE="bash scripts/run_eval_cpu.sh [DATASET_PATH] [DATASET_NAME] [CKPT_PATH] [RESULT_DIR] [eval.py flags...]"
source "$(dirname "$0")/common.sh"
need_args $# 4
DATA=$(abs_dir "$1" DATASET_PATH) || exit 2; NAME=$2
CKPT=$(abs_file "$3" CKPT_PATH) || exit 2
mkdir -p "$4"; RESULT=$(cd "$4" && pwd); shift 4
VAL=$(split_dir "$DATA" val); [ "$VAL" != "$DATA" ] || VAL=$(split_dir "$DATA" test)
launch "$RESULT/eval.log" "$PYTHON" "$REPO_DIR/eval.py" --device_target CPU \
    --val_data_dir "$VAL" --ckpt "$CKPT" $(dataset_flags "$NAME") \
    --predict_dir "$RESULT/predict" --report_dir "$RESULT/report" "$@"
