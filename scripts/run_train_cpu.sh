#!/usr/bin/env bash
# Single-process training on CPU.
USAGE="bash scripts/run_train_cpu.sh [DATASET_PATH] [DATASET_NAME] [train.py flags...]"
source "$(dirname "$0")/common.sh"
need_args $# 2
DATA=$(abs_dir "$1" DATASET_PATH) || exit 2; NAME=$2; shift 2
make_run_dir train_cpu "$NAME"
launch "$RUN_DIR/logs/train.log" "$PYTHON" "$REPO_DIR/train.py" --device_target CPU \
    --train_data_dir "$(split_dir "$DATA" train)" $(dataset_flags "$NAME") $(train_output_flags) "$@"
