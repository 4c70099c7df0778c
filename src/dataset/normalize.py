"""The one place where data values are mapped to the network's range [-1, 1] and back.

8-bit images: [0, 255] <-> [-1, 1]. Train, eval, export's preprocess and postprocess all call
these functions, so a value is normalised one way everywhere.
"""
import numpy as np


def image_to_model(hwc):
    """float32 HWC in [0, 255] -> float32 CHW in [-1, 1]."""
    return (np.transpose(hwc, (2, 0, 1)) / 127.5 - 1.0).astype(np.float32)


def model_to_image(chw):
    """float CHW in [-1, 1] (values outside are clipped) -> uint8 HWC in [0, 255]."""
    scaled = (np.clip(np.asarray(chw, dtype=np.float32), -1.0, 1.0) + 1.0) * 127.5
    return np.transpose(np.rint(scaled), (1, 2, 0)).astype(np.uint8)
