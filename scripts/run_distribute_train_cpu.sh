#!/usr/bin/env bash
# Data-parallel training on CPU with msrun: WORKER_NUM processes, gradients averaged.
USAGE="bash scripts/run_distribute_train_cpu.sh [DATASET_PATH] [DATASET_NAME] [WORKER_NUM] [train.py flags...]"
source "$(dirname "$0")/common.sh"
need_args $# 3
DATA=$(abs_dir "$1" DATASET_PATH) || exit 2; NAME=$2; positive_int "$3" WORKER_NUM; WORKERS=$3; shift 3
command -v msrun > /dev/null || die_usage "msrun not found: put MindSpore's bin folder on PATH"
make_run_dir distribute_train_cpu "$NAME"
echo "per-rank logs: $RUN_DIR/logs/worker_<rank>.log"
launch "$RUN_DIR/logs/msrun.log" msrun --worker_num="$WORKERS" --local_worker_num="$WORKERS" \
    --master_port="${MASTER_PORT:-8118}" --log_dir="$RUN_DIR/logs" --join=True \
    "$REPO_DIR/train.py" --device_target CPU --run_distribute True \
    --train_data_dir "$(split_dir "$DATA" train)" $(dataset_flags "$NAME") $(train_output_flags) "$@"
