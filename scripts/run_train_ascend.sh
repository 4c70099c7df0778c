#!/usr/bin/env bash
# Single-card training on Ascend.
USAGE="bash scripts/run_train_ascend.sh [DATASET_PATH] [DATASET_NAME] [DEVICE_ID] [train.py flags...]"
source "$(dirname "$0")/common.sh"
need_args $# 3
non_negative_int "$3" DEVICE_ID
export DEVICE_ID=$3
train_main Ascend "$1" "$2" --device_id "$DEVICE_ID" "${@:4}"
