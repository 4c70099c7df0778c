#!/usr/bin/env bash
# Data-parallel training on DEVICE_NUM Ascend cards (HCCL). With a RANK_TABLE_FILE, one process
# per card gets RANK_ID, DEVICE_ID, RANK_SIZE and RANK_TABLE_FILE as HCCL expects; with
# RANK_TABLE_FILE "none", msrun starts the processes and no rank table is needed.
USAGE="bash scripts/run_distribute_train_ascend.sh [DEVICE_NUM] [DISTRIBUTE] [RANK_TABLE_FILE|none] [DATASET_PATH] [DATASET_NAME] [train.py flags...]"
source "$(dirname "$0")/common.sh"
need_args $# 5
positive_int "$1" DEVICE_NUM; DEVICES=$1
case "$2" in true|True) DISTRIBUTE=True ;; false|False) DISTRIBUTE=False ;; *) die_usage "DISTRIBUTE must be True or False, got '$2'" ;; esac
DATA=$(abs_dir "$4" DATASET_PATH) || exit 2; NAME=$5
make_run_dir distribute_train_ascend "$NAME"
if [ "$3" = "none" ]; then
    shift 5
    command -v msrun > /dev/null || die_usage "msrun not found: put MindSpore's bin folder on PATH"
    echo "per-rank logs: $RUN_DIR/logs/worker_<rank>.log"
    launch "$RUN_DIR/logs/msrun.log" msrun --worker_num="$DEVICES" --local_worker_num="$DEVICES" \
        --master_port="${MASTER_PORT:-8118}" --log_dir="$RUN_DIR/logs" --join=True \
        "$REPO_DIR/train.py" --device_target Ascend --run_distribute "$DISTRIBUTE" \
        --train_data_dir "$(split_dir "$DATA" train)" $(dataset_flags "$NAME") $(train_output_flags) "$@"
    exit $?
fi
RANK_TABLE=$(abs_file "$3" RANK_TABLE_FILE) || exit 2; shift 5
export RANK_TABLE_FILE="$RANK_TABLE" RANK_SIZE="$DEVICES"
PIDS=()
for ((rank = 0; rank < DEVICES; rank++)); do
    RANK_ID=$rank DEVICE_ID=$rank P2P_FOREGROUND=0 launch "$RUN_DIR/logs/train_rank$rank.log" \
        env RANK_ID=$rank DEVICE_ID=$rank "$PYTHON" "$REPO_DIR/train.py" --device_target Ascend \
        --run_distribute "$DISTRIBUTE" --device_id $rank --train_data_dir "$(split_dir "$DATA" train)" \
        $(dataset_flags "$NAME") $(train_output_flags) "$@"
    PIDS+=($!)
done
if [ "${P2P_FOREGROUND:-0}" = "1" ]; then  # wait for every rank; fail if any failed
    status=0
    for pid in "${PIDS[@]}"; do wait "$pid" || status=$?; done
    exit $status
fi
