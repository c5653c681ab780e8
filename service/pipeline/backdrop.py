"""Holes that show the backdrop: known-foreground pixels of the backdrop's colour.

The segmenter fills see-through holes (outline drawings, frames, ladders) because it reads
objects as blobs. On a plain studio backdrop those holes show the backdrop's colour, which the
known background around the object gives away. Such pixels are handed to the matting net as
unknown, and it decides them from the image (docs/training.md, "Holes against a plain
background").
"""
from __future__ import annotations

import cv2
import numpy as np

from .trimap import BACKGROUND, FOREGROUND

# Too few known-background pixels near the object give no trustworthy colour.
MIN_REFERENCE_PIXELS = 100


def backdrop_coloured(rgb: np.ndarray, trimap: np.ndarray, distance: float,
                      box_grow: float = 0.2) -> np.ndarray | None:
    """Known-foreground pixels within `distance` (CIELAB, 8-bit scale) of the backdrop's colour:
    the median of the known background inside the object's box grown by `box_grow` of its long
    side. None when there is no such pixel, no object or too little background to judge."""
    if distance <= 0:
        return None
    ys, xs = np.nonzero(trimap > BACKGROUND)
    if len(ys) == 0:
        return None
    top, bottom, left, right = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    pad = int(box_grow * max(bottom - top, right - left))
    window = (slice(max(top - pad, 0), bottom + pad), slice(max(left - pad, 0), right + pad))
    lab = cv2.cvtColor(rgb[window], cv2.COLOR_RGB2LAB)
    known = trimap[window]
    reference = lab[known == BACKGROUND]
    if len(reference) < MIN_REFERENCE_PIXELS:
        return None
    foreground = known == FOREGROUND
    colour = np.median(reference, axis=0).astype(np.float32)
    keyed = np.zeros(known.shape, dtype=np.uint8)
    # Distances of the known foreground only: the pixels that may change.
    offsets = lab[foreground].astype(np.float32) - colour
    keyed[foreground] = np.linalg.norm(offsets, axis=1) < distance
    # An opening drops single pixels of the backdrop's colour inside the object (highlights).
    keyed = cv2.morphologyEx(keyed, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    if not keyed.any():
        return None
    out = np.zeros(trimap.shape, dtype=bool)
    out[window] = keyed
    return out
