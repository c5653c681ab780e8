"""Trimaps between resolutions: the ED graph runs at the segmenter's working size; its trimap is
resized to the inference size and re-quantised so the unknown band only ever widens."""
from __future__ import annotations

import cv2
import numpy as np

BACKGROUND, UNKNOWN, FOREGROUND = 0.0, 0.5, 1.0
KNOWN_TOLERANCE = 0.001


def resize_trimap(trimap: np.ndarray, width: int, height: int) -> np.ndarray:
    """Bilinear resize, then >= 0.999 -> 1, <= 0.001 -> 0, anything in between -> 0.5."""
    if trimap.shape[1] != width or trimap.shape[0] != height:
        trimap = cv2.resize(trimap.astype(np.float32), (width, height),
                            interpolation=cv2.INTER_LINEAR)
    out = np.full(trimap.shape, UNKNOWN, dtype=np.float32)
    out[trimap >= FOREGROUND - KNOWN_TOLERANCE] = FOREGROUND
    out[trimap <= BACKGROUND + KNOWN_TOLERANCE] = BACKGROUND
    return out


def unknown_region(trimap: np.ndarray) -> np.ndarray:
    return trimap == UNKNOWN


def to_grey(trimap: np.ndarray) -> np.ndarray:
    """0 / 0.5 / 1 -> 0 / 128 / 255."""
    return np.clip(trimap * 255.0 + 0.5, 0, 255).astype(np.uint8)
