"""Pix2Pix for MindSpore. Importing any part of `src` first chooses oneDNN's CPU ISA and MindSpore's
log level, which must happen before MindSpore loads (see src/utils/runtime_env.py)."""
from src.utils import runtime_env

runtime_env.configure()
