#!/usr/bin/env bash
# Data-parallel training on CPU with msrun: WORKER_NUM processes on this machine, gradients
# averaged; NODE_NUM machines with NODE_NUM/NODE_RANK/MASTER_ADDR (see --help).
USAGE="bash scripts/run_distribute_train_cpu.sh [DATASET_PATH] [DATASET_NAME] [WORKER_NUM] [train.py flags...]"
source "$(dirname "$0")/common.sh"
show_help "$1"
need_args $# 3
DATA=$(abs_dir "$1" DATASET_PATH) || exit 2; NAME=$2; positive_int "$3" WORKER_NUM; WORKERS=$3; shift 3
make_run_dir distribute_train_cpu "$NAME"
msrun_launch "$WORKERS" "$REPO_DIR/train.py" --device_target CPU --run_distribute True \
    --train_data_dir "$(split_dir "$DATA" train)" $(dataset_flags "$NAME") $(train_output_flags) "$@"
