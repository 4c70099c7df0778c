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

# launch LOG COMMAND...: in the foreground when P2P_FOREGROUND=1 (returns its exit code),
# otherwise in the background with nohup, like the model zoo's scripts.
launch() {
    local log="$1"; shift
    echo "log: $log"
    if [ "${P2P_FOREGROUND:-0}" = "1" ]; then
        "$@" > "$log" 2>&1
        local code=$?
        [ $code -eq 0 ] || { echo "failed with exit code $code; last lines of $log:" >&2; tail -n 20 "$log" >&2; }
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
