"""A second, closer look at small objects.

The segmenter works at a fixed long side (448 px), so an object that fills a third of the frame
gets a third of the pixels. When the first pass finds the object's box small enough, the box
(plus context) is cut from the inference-size image and segmented again at the full working
side. The mask is enlarged to that resolution, so the detail the closer look finds reaches the
ED layer and the matting band, and the two passes are averaged inside the box: the net was
trained on objects at many scales, and two scales are steadier than either (a tight crop alone
can read a detail of the object as the object).
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

from . import geometry

Box = tuple[float, float, float, float]  # left, top, right, bottom as fractions of the frame

# Context around the object's box (fraction of its long side) and the second pass's weight
# inside it. Flat around these values (docs/performance.md, "A second, closer look": margin 0.2,
# blend 0.35 or 0.65 within 0.001 of alpha IoU), so they are fixed; when a second pass runs is
# the model's `zoom_min_gain` (spec.json).
MARGIN = 0.3
BLEND = 0.5


def zoom_box(mask: np.ndarray, min_gain: float, margin: float = MARGIN) -> Box | None:
    """The region worth a second pass, or None when there is no object (mask > 0.5), it fills
    too much of the frame for the second pass to enlarge it `min_gain` times, or min_gain <= 0
    (second looks off)."""
    if min_gain <= 0:
        return None
    box = geometry.bounding_box(mask, 0.5)
    if box is None:
        return None
    height, width = mask.shape
    left, top, right, bottom = (float(side) for side in box)
    pad = margin * max(right - left, bottom - top)
    left, top = max(left - pad, 0.0), max(top - pad, 0.0)
    right, bottom = min(right + pad, float(width)), min(bottom + pad, float(height))
    if max(width, height) / max(right - left, bottom - top) < min_gain:
        return None
    return left / width, top / height, right / width, bottom / height


def look_closer(mask: np.ndarray, work_rgb: np.ndarray, box: Box, side: int,
                segment: Callable[[np.ndarray, tuple[int, int]], np.ndarray],
                blend: float = BLEND) -> np.ndarray:
    """`mask`, enlarged so that `box` spans about `side` pixels (never beyond the inference
    size of `work_rgb`), with `blend` of the second pass mixed in inside the box.
    `segment(rgb, (w, h))` is the segmenter returning probabilities at (w, h)."""
    mask_h, mask_w = mask.shape
    work_h, work_w = work_rgb.shape[:2]
    left, top, right, bottom = box
    box_long = max((right - left) * mask_w, (bottom - top) * mask_h)
    gain = min(side / box_long, work_w / mask_w, work_h / mask_h)
    if gain > 1.0:
        mask_w, mask_h = max(1, round(mask_w * gain)), max(1, round(mask_h * gain))
        mask = geometry.resize(mask, mask_w, mask_h)
    else:
        mask = mask.copy()
    # The box in mask pixels (what is replaced) and in inference pixels (what is looked at).
    ml, mt = int(np.floor(left * mask_w)), int(np.floor(top * mask_h))
    mr, mb = int(np.ceil(right * mask_w)), int(np.ceil(bottom * mask_h))
    crop = work_rgb[round(mt / mask_h * work_h):round(mb / mask_h * work_h),
                    round(ml / mask_w * work_w):round(mr / mask_w * work_w)]
    if crop.shape[0] < 2 or crop.shape[1] < 2:
        return mask
    closer = segment(crop, (mr - ml, mb - mt))
    mask[mt:mb, ml:mr] = blend * closer + (1.0 - blend) * mask[mt:mb, ml:mr]
    return mask
