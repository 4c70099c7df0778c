#!/usr/bin/env bash
# Data-parallel training on DEVICE_NUM Ascend cards (HCCL). With a RANK_TABLE_FILE, one process
# per card gets RANK_ID, DEVICE_ID, RANK_SIZE and RANK_TABLE_FILE as HCCL expects; with
# RANK_TABLE_FILE "none", msrun starts the processes and no rank table is needed.
# Several machines: with "none", NODE_NUM/NODE_RANK/MASTER_ADDR as --help says (msrun); with a
# rank table, one table listing every machine's cards (server_count = machines, rank_id global),
# and on each machine RANK_START=<rank of its first card> (see docs/distributed.md, "Several machines").
USAGE="bash scripts/run_distribute_train_ascend.sh [DEVICE_NUM] [DISTRIBUTE] [RANK_TABLE_FILE|none] [DATASET_PATH] [DATASET_NAME] [train.py flags...]"
source "$(dirname "$0")/common.sh"
MULTI_NODE_HELP="$MULTI_NODE_HELP
Several machines with a rank table (RANK_TABLE_FILE given): one table for all machines
(server_count = machines, every card with its global rank_id), the same file on each machine,
DEVICE_NUM = cards on this machine, and RANK_START [0] = the global rank of this machine's first card."
show_help "$1"
need_args $# 5
positive_int "$1" DEVICE_NUM; DEVICES=$1
case "$2" in true|True) DISTRIBUTE=True ;; false|False) DISTRIBUTE=False ;; *) die_usage "DISTRIBUTE must be True or False, got '$2'" ;; esac
DATA=$(abs_dir "$4" DATASET_PATH) || exit 2; NAME=$5
make_run_dir distribute_train_ascend "$NAME"
if [ "$3" = "none" ]; then
    shift 5
    msrun_launch "$DEVICES" "$REPO_DIR/train.py" --device_target Ascend --run_distribute "$DISTRIBUTE" \
        --train_data_dir "$(split_dir "$DATA" train)" $(dataset_flags "$NAME") $(train_output_flags) "$@"
    exit $?
fi
RANK_TABLE=$(abs_file "$3" RANK_TABLE_FILE) || exit 2; shift 5
non_negative_int "${RANK_START:-0}" RANK_START
export RANK_TABLE_FILE="$RANK_TABLE" RANK_SIZE="$((DEVICES * ${NODE_NUM:-1}))"
PIDS=()
for ((device = 0; device < DEVICES; device++)); do
    rank=$((${RANK_START:-0} + device))
    P2P_FOREGROUND=0 launch "$RUN_DIR/logs/train_rank$rank.log" \
        env RANK_ID=$rank DEVICE_ID=$device "$PYTHON" "$REPO_DIR/train.py" --device_target Ascend \
        --run_distribute "$DISTRIBUTE" --device_id $device --train_data_dir "$(split_dir "$DATA" train)" \
        $(dataset_flags "$NAME") $(train_output_flags) "$@"
    PIDS+=($!)
done
if [ "${P2P_FOREGROUND:-0}" = "1" ]; then  # wait for every rank; fail if any failed
    status=0
    for pid in "${PIDS[@]}"; do wait "$pid" || status=$?; done
    exit $status
fi
