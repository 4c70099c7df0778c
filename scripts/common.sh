#!/usr/bin/env bash
# Shared by the launchers: argument checks, dataset presets, run folders, foreground/background.
# A launcher sets USAGE, then calls these; all training logic stays in train.py / eval.py.

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PYTHON="${PYTHON:-python3}"

die_usage() {  # one line saying what is wrong, then the usage; exit 2
    echo "error: $1" >&2
    echo "usage: $USAGE" >&2
    exit 2
}

# The multi-node settings every distributed launcher reads from the environment.
MULTI_NODE_HELP="Several machines (msrun): run the same command on every machine with
  NODE_NUM=<machines> NODE_RANK=<0..NODE_NUM-1, this machine> MASTER_ADDR=<node 0's address>
  the worker count is per machine (all machines alike; the job has NODE_NUM x that many ranks).
Environment (defaults in brackets):
  NODE_NUM [1]            machines in the job
  NODE_RANK [0]           this machine's rank; its workers get ranks NODE_RANK x workers + 0..workers-1
  MASTER_ADDR [127.0.0.1] node 0's address, reachable from every machine (node 0 runs the scheduler)
  MASTER_PORT [8118]      the scheduler's port, the same on every machine
  CLUSTER_TIMEOUT [300]   seconds a worker waits for the others to join, or for a lost one, before the
                          whole job fails (msrun --cluster_time_out)
  P2P_RUN_DIR             this machine's run folder (default runs/<kind>_<name>_<time>); logs in its logs/
  P2P_FOREGROUND [0]      1: wait for the job and return its exit code"

show_help() {  # show_help FIRST_ARG: print usage and the multi-node help for -h/--help, exit 0
    case "$1" in -h|--help) echo "usage: $USAGE"; echo "$MULTI_NODE_HELP"; exit 0 ;; esac
}

need_args() {  # need_args GOT WANTED
    [ "$1" -ge "$2" ] || die_usage "expected at least $2 arguments, got $1"
}

abs_dir() {  # absolute path of an existing folder, or exit 2
    [ -d "$1" ] || die_usage "$2 $1 is not a folder"
    (cd "$1" && pwd)
}

abs_file() {
    [ -f "$1" ] || die_usage "$2 $1 is not a file"
    echo "$(cd "$(dirname "$1")" && pwd)/$(basename "$1")"
}

non_negative_int() {
    [[ "$1" =~ ^[0-9]+$ ]] || die_usage "$2 must be an integer >= 0, got '$1'"
}

positive_int() {
    [[ "$1" =~ ^[1-9][0-9]*$ ]] || die_usage "$2 must be a positive integer, got '$1'"
}

# dataset_flags NAME: configs/NAME.yaml when the project ships one (facades: labels -> photo is
# B -> A; maps: aerial photo -> map is A -> B); anything else: the train.py defaults. Flags given
# after the launcher's arguments override the file.
dataset_flags() {
    if [ -f "$REPO_DIR/configs/$1.yaml" ]; then echo "--config_path $REPO_DIR/configs/$1.yaml"; fi
}

# split_dir ROOT SPLIT: ROOT/SPLIT if it exists (the facades/maps layout), else ROOT itself.
split_dir() {
    if [ -d "$1/$2" ]; then echo "$1/$2"; else echo "$1"; fi
}

# make_run_dir KIND NAME: a fresh folder for this run's outputs and logs.
make_run_dir() {
    RUN_DIR="${P2P_RUN_DIR:-$REPO_DIR/runs/$1_$2_$(date +%Y%m%d_%H%M%S)}"
    mkdir -p "$RUN_DIR/logs"
    echo "run folder: $RUN_DIR"
}

train_output_flags() {
    echo "--ckpt_dir $RUN_DIR/ckpt --train_fakeimg_dir $RUN_DIR/fake_img --loss_show_dir $RUN_DIR/loss_show"
}

# msrun_launch LOCAL_WORKERS TRAIN.PY_AND_FLAGS...: msrun with this machine's share of the job
# (NODE_NUM, NODE_RANK, MASTER_ADDR, MASTER_PORT, CLUSTER_TIMEOUT), logs in $RUN_DIR/logs.
msrun_launch() {
    local local_workers=$1; shift
    local nodes=${NODE_NUM:-1} node_rank=${NODE_RANK:-0} timeout=${CLUSTER_TIMEOUT:-300}
    positive_int "$nodes" NODE_NUM; non_negative_int "$node_rank" NODE_RANK; positive_int "$timeout" CLUSTER_TIMEOUT
    [ "$node_rank" -lt "$nodes" ] || die_usage "NODE_RANK $node_rank must be below NODE_NUM $nodes"
    command -v msrun > /dev/null || die_usage "msrun not found: put MindSpore's bin folder on PATH"
    local first=$((node_rank * local_workers))
    echo "node $node_rank of $nodes: ranks $first..$((first + local_workers - 1)) of $((nodes * local_workers)), master ${MASTER_ADDR:-127.0.0.1}:${MASTER_PORT:-8118}"
    echo "per-rank logs: $RUN_DIR/logs/worker_<rank>.log"
    FAIL_HINT="node $node_rank of $nodes: the distributed job failed: a rank on this machine failed, or one on \
another machine failed or did not join within CLUSTER_TIMEOUT=${timeout}s, and msrun ended the whole job; the first \
error is in the worker logs in $RUN_DIR/logs (and in the other machines' run folders)"
    launch "$RUN_DIR/logs/msrun.log" msrun --worker_num="$((nodes * local_workers))" \
        --local_worker_num="$local_workers" --node_rank="$node_rank" --master_addr="${MASTER_ADDR:-127.0.0.1}" \
        --master_port="${MASTER_PORT:-8118}" --cluster_time_out="$timeout" --log_dir="$RUN_DIR/logs" \
        --join=True "$@"
}

# launch LOG COMMAND...: in the foreground when P2P_FOREGROUND=1 (returns its exit code),
# otherwise in the background with nohup, like the model zoo's scripts.
launch() {
    local log="$1"; shift
    echo "log: $log"
    if [ "${P2P_FOREGROUND:-0}" = "1" ]; then
        "$@" > "$log" 2>&1
        local code=$?
        [ $code -eq 0 ] || { echo "failed with exit code $code; last lines of $log:" >&2; tail -n 20 "$log" >&2
                             [ -z "$FAIL_HINT" ] || echo "error: $FAIL_HINT" >&2; }
        return $code
    fi
    nohup "$@" > "$log" 2>&1 &
    echo "started in the background (pid $!); follow it with: tail -f $log"
}

# eval_main TARGET DATASET_PATH DATASET_NAME CKPT_PATH RESULT_DIR [eval.py flags...]:
# what every run_eval_<device>.sh does, on its device.
eval_main() {
    local target=$1; shift
    need_args $# 4
    local data name ckpt result val
    data=$(abs_dir "$1" DATASET_PATH) || exit 2; name=$2
    ckpt=$(abs_file "$3" CKPT_PATH) || exit 2
    mkdir -p "$4"; result=$(cd "$4" && pwd); shift 4
    val=$(split_dir "$data" val); [ "$val" != "$data" ] || val=$(split_dir "$data" test)
    launch "$result/eval.log" "$PYTHON" "$REPO_DIR/eval.py" --device_target "$target" \
        --val_data_dir "$val" --ckpt "$ckpt" $(dataset_flags "$name") \
        --predict_dir "$result/predict" --report_dir "$result/report" "$@"
}

# train_main TARGET DATASET_PATH DATASET_NAME [train.py flags...]: single-process training.
train_main() {
    local target=$1; shift
    need_args $# 2
    local data name
    data=$(abs_dir "$1" DATASET_PATH) || exit 2; name=$2; shift 2
    make_run_dir "train_$(echo "$target" | tr '[:upper:]' '[:lower:]')" "$name"
    launch "$RUN_DIR/logs/train.log" "$PYTHON" "$REPO_DIR/train.py" --device_target "$target" \
        --train_data_dir "$(split_dir "$data" train)" $(dataset_flags "$name") $(train_output_flags) "$@"
}
