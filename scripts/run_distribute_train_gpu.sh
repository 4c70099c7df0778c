#!/usr/bin/env bash
# Data-parallel training on DEVICE_NUM GPUs of this machine (NCCL), with msrun (default) or
# mpirun (P2P_LAUNCHER=mpirun, one machine); NODE_NUM machines with msrun (see --help).
USAGE="bash scripts/run_distribute_train_gpu.sh [DATASET_PATH] [DATASET_NAME] [DEVICE_NUM] [train.py flags...]"
source "$(dirname "$0")/common.sh"
show_help "$1"
need_args $# 3
DATA=$(abs_dir "$1" DATASET_PATH) || exit 2; NAME=$2; positive_int "$3" DEVICE_NUM; DEVICES=$3; shift 3
make_run_dir distribute_train_gpu "$NAME"
TRAIN=("$REPO_DIR/train.py" --device_target GPU --run_distribute True
       --train_data_dir "$(split_dir "$DATA" train)" $(dataset_flags "$NAME") $(train_output_flags) "$@")
if [ "${P2P_LAUNCHER:-msrun}" = "mpirun" ]; then
    [ "${NODE_NUM:-1}" = "1" ] || die_usage "P2P_LAUNCHER=mpirun runs on one machine; use msrun (the default) with NODE_NUM"
    command -v mpirun > /dev/null || die_usage "mpirun not found (OpenMPI)"
    launch "$RUN_DIR/logs/mpirun.log" mpirun -n "$DEVICES" --output-filename "$RUN_DIR/logs/mpi" \
        --merge-stderr-to-stdout --allow-run-as-root "$PYTHON" "${TRAIN[@]}"
else
    msrun_launch "$DEVICES" "${TRAIN[@]}"
fi
