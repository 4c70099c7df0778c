#!/usr/bin/env bash
# Single-process training on CPU.
USAGE="bash scripts/run_train_cpu.sh [DATASET_PATH] [DATASET_NAME] [train.py flags...]"
source "$(dirname "$0")/common.sh"
train_main CPU "$@"
