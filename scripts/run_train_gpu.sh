#!/usr/bin/env bash
# Single-GPU training (the GPU is chosen by CUDA_VISIBLE_DEVICES or --device_id).
USAGE="bash scripts/run_train_gpu.sh [DATASET_PATH] [DATASET_NAME] [train.py flags...]"
source "$(dirname "$0")/common.sh"
train_main GPU "$@"
