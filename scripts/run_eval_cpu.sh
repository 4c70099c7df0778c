#!/usr/bin/env bash
# Evaluate a generator checkpoint on the dataset's val (or test) split on CPU.
USAGE="bash scripts/run_eval_cpu.sh [DATASET_PATH] [DATASET_NAME] [CKPT_PATH] [RESULT_DIR] [eval.py flags...]"
source "$(dirname "$0")/common.sh"
eval_main CPU "$@"
