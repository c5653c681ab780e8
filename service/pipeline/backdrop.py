"""Holes that show the backdrop: known-foreground pixels of the backdrop's colour.

The segmenter fills see-through holes (outline drawings, frames, ladders) because it reads
objects as blobs. On a plain studio backdrop those holes show the backdrop's colour, which the
known background around the object gives away. Such pixels are handed to the matting net as
unknown, and it decides them from the image (docs/training.md, "Holes against a plain
background").
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .trimap import BACKGROUND, FOREGROUND

# Too few known-background pixels near the object give no trustworthy colour.
MIN_REFERENCE_PIXELS = 100
REFERENCE_SAMPLE = 4096
# Studio composites: half their background lies within about 2 of its median colour (CIELAB;
# 7 at the 90th percentile); street photos and cluttered scenes 23-31
# (`python -m bench.backdrop_spread`).
PLAIN_SPREAD = 2.0


@dataclass(frozen=True)
class Backdrop:
    """The known background near the object: its window on the trimap's grid (top, bottom,
    left, right), its median colour (CIELAB) and its spread (median distance to that colour)."""

    window: tuple[int, int, int, int]
    colour: np.ndarray
    spread: float


def sample_backdrop(rgb: np.ndarray, trimap: np.ndarray, box_grow: float = 0.2
                    ) -> Backdrop | None:
    """The known background inside the object's box grown by `box_grow` of its long side.
    `rgb` may be larger than `trimap` (same aspect): it is read at the trimap's grid. None when
    there is no object or too little background to judge."""
    left, top, box_w, box_h = cv2.boundingRect((trimap > BACKGROUND).view(np.uint8))
    if box_w == 0:
        return None
    height, width = trimap.shape
    pad = int(box_grow * max(box_h, box_w))
    bottom, right = min(top + box_h + pad, height), min(left + box_w + pad, width)
    top, left = max(top - pad, 0), max(left - pad, 0)
    ys, xs = np.nonzero(trimap[top:bottom, left:right] == BACKGROUND)
    if len(ys) < MIN_REFERENCE_PIXELS:
        return None
    scale_y, scale_x = rgb.shape[0] / height, rgb.shape[1] / width
    # A strided sample of a few thousand pixels gives the same median for a fraction of the sort.
    step = max(1, len(ys) // REFERENCE_SAMPLE)
    sample = rgb[((ys[::step] + top + 0.5) * scale_y).astype(np.intp),
                 ((xs[::step] + left + 0.5) * scale_x).astype(np.intp)]
    reference = cv2.cvtColor(sample[None], cv2.COLOR_RGB2LAB)[0].astype(np.float32)
    colour = np.median(reference, axis=0)
    spread = float(np.median(np.linalg.norm(reference - colour, axis=1)))
    return Backdrop((top, bottom, left, right), colour, spread)


def backdrop_coloured(rgb: np.ndarray, trimap: np.ndarray, distance: float,
                      box_grow: float = 0.2) -> np.ndarray | None:
    """Known-foreground pixels of `trimap` within `distance` (CIELAB, 8-bit scale) of the
    backdrop's colour (`sample_backdrop`). None when there is no such pixel, no object, too
    little background to judge or a background too varied to be a backdrop."""
    if distance <= 0:
        return None
    backdrop = sample_backdrop(rgb, trimap, box_grow)
    # Only a plain backdrop has a colour: on a street or in a room (half the background further
    # than PLAIN_SPREAD x distance from its median) the step stays out, and costs no more.
    if backdrop is None or backdrop.spread >= PLAIN_SPREAD * distance:
        return None
    top, bottom, left, right = backdrop.window
    known = trimap[top:bottom, left:right]
    scale_y, scale_x = rgb.shape[0] / trimap.shape[0], rgb.shape[1] / trimap.shape[1]
    window = rgb[round(top * scale_y):round(bottom * scale_y),
                 round(left * scale_x):round(right * scale_x)]
    if window.shape[:2] != known.shape:
        window = cv2.resize(window, (known.shape[1], known.shape[0]), interpolation=cv2.INTER_AREA)
    lab = cv2.cvtColor(window, cv2.COLOR_RGB2LAB)
    foreground = known == FOREGROUND
    keyed = np.zeros(known.shape, dtype=np.uint8)
    # Distances of the known foreground only: the pixels that may change.
    offsets = lab[foreground].astype(np.float32) - backdrop.colour
    keyed[foreground] = np.einsum("ij,ij->i", offsets, offsets) < distance * distance
    # An opening drops single pixels of the backdrop's colour inside the object (highlights).
    keyed = cv2.morphologyEx(keyed, cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)).astype(bool)
    if not keyed.any():
        return None
    out = np.zeros(trimap.shape, dtype=bool)
    out[top:bottom, left:right] = keyed
    return out


def backdrop_holes(rgb: np.ndarray, coarse: np.ndarray, fine: np.ndarray, distance: float
                   ) -> np.ndarray | None:
    """`backdrop_coloured` judged on the ED graph's grid (`coarse`, the segmenter's working
    size) and brought to `fine`'s size: the same holes for a tenth of the pixels at 1500 px.
    Only pixels that are known foreground in `fine` are returned."""
    keyed = backdrop_coloured(rgb, coarse, distance)
    if keyed is None:
        return None
    if keyed.shape != fine.shape:
        keyed = cv2.resize(keyed.view(np.uint8), (fine.shape[1], fine.shape[0]),
                           interpolation=cv2.INTER_NEAREST).astype(bool)
    keyed &= fine == FOREGROUND
    return keyed if keyed.any() else None
