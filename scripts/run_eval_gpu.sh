#!/usr/bin/env bash
# Evaluate a generator checkpoint on the dataset's val (or test) split on GPU.
USAGE="bash scripts/run_eval_gpu.sh [DATASET_PATH] [DATASET_NAME] [CKPT_PATH] [RESULT_DIR] [eval.py flags...]"
source "$(dirname "$0")/common.sh"
eval_main GPU "$@"
