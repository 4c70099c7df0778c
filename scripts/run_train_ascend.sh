#!/usr/bin/env bash
# Single-card training on Ascend.
USAGE="bash scripts/run_train_ascend.sh [DATASET_PATH] [DATASET_NAME] [DEVICE_ID] [train.py flags...]"
source "$(dirname "$0")/common.sh"
need_args $# 3
DATA=$(abs_dir "$1" DATASET_PATH) || exit 2; NAME=$2; non_negative_int "$3" DEVICE_ID
export DEVICE_ID=$3; shift 3
make_run_dir train_ascend "$NAME"
launch "$RUN_DIR/logs/train_device$DEVICE_ID.log" "$PYTHON" "$REPO_DIR/train.py" --device_target Ascend \
    --device_id "$DEVICE_ID" --train_data_dir "$(split_dir "$DATA" train)" $(dataset_flags "$NAME") \
    $(train_output_flags) "$@"
