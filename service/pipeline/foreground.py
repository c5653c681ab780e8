"""The object's own colour in the soft edge (foreground colour estimation).

A soft edge pixel of a photo is a mix, I = a F + (1 - a) B. Served as it is, the pixel keeps the
old backdrop's share (1 - a) B, and on a new background that share shows: a red object shot on
green comes back with a green fringe. Here F is estimated where 0 < a < 1 only (the matte's
soft pixels: the matting band, widened by the rescale), by blur fusion (Forte & Pitie 2021,
"Approximate fast foreground colour estimation"):

    F^ = box(w I) / box(w),  B^ = box(v I) / box(v)   (local means, weights w = a^4, v = (1-a)^4)
    F  = F^ + a (I - a F^ - (1 - a) B^)               (the pixel's own residual, given to F)

twice: a wide window finds colours of the solid object across the band, then a narrow one, fed
the first F, brings back local detail. (The paper weighs by a and 1 - a; the fourth powers
lean on the solid parts of object and backdrop, which also keeps wide bands clean.) The wide
level is a smooth field, so it runs on a grid reduced to a few pixels per window; the narrow one
runs at full size on the soft pixels' box.
Pixels with a = 0 or 1 are never changed.
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

from . import geometry

# Window sides as a fraction of the image's long side: 45 px and 6 px at 1500 px (the paper's
# are 90 and 6; `python -m bench.edge_colour --sweep` compares them on the studio set).
WIDE_WINDOW = 0.03
NARROW_WINDOW = 0.004
MIN_NARROW = 3
# ... and at least this many times the soft band's mean width.
BAND_WIDTHS = 3.0
# A pixel's weight in the foreground's means is a ** POWER, in the background's (1 - a) ** POWER:
# the paper's 1 lets the soft pixels' own mix into the means; 4 leans on the solid parts (with
# the true alpha, studio edge error 3.9 -> 3.6; the --sweep above).
POWER = 4
# The wide level's grid: about this many cells across one wide window.
CELLS_PER_WINDOW = 8
# Weight of the wide mean in the narrow one, in the sums' units (a mean weight of 2 %).
PRIOR_WEIGHT = 0.02 * 255 * 255
REMAP_ROW = 4096
EPS = 1e-3  # in units of the weight sums (0-65025 per pixel)


def soft_pixels(matte: np.ndarray) -> np.ndarray:
    """Where the matte is neither 0 nor 255 (bool H x W)."""
    return (matte > 0) & (matte < 255)


def estimate(rgb: np.ndarray, matte: np.ndarray, wide_window: float = WIDE_WINDOW,
             narrow_window: float = NARROW_WINDOW, power: int = POWER) -> np.ndarray:
    """`rgb` (H x W x 3 uint8) with the colour of its soft pixels replaced by the estimated
    foreground; a new array (the input is returned as it is when the matte has no soft pixel).
    `matte` is H x W uint8; the windows are fractions of the long side."""
    soft = soft_pixels(matte)
    box = geometry.bounding_box(soft.view(np.uint8), 0)
    if box is None:
        return rgb
    height, width = matte.shape
    # The wide window must reach across the band to the solid object: a blurred edge (out of
    # focus, motion) makes a band wider than the usual share of the image.
    wide = max(2 * MIN_NARROW, round(wide_window * max(height, width)),
               round(BAND_WIDTHS * _band_width(soft[box[1]:box[3], box[0]:box[2]])))
    narrow = max(MIN_NARROW, round(narrow_window * max(height, width)))
    # Everything below is within half a wide window of a soft pixel.
    left, top, right, bottom = _grow(box, wide // 2 + 1, width, height)
    out = rgb.copy()
    rgb, matte = rgb[top:bottom, left:right], matte[top:bottom, left:right]
    ys, xs = np.nonzero(soft[top:bottom, left:right])
    flat = ys * (right - left) + xs  # flat indices: faster to gather and scatter with
    image = rgb.reshape(-1, 3)[flat].astype(np.float32) * (1.0 / 255.0)  # N x 3: soft pixels
    alpha = matte.reshape(-1)[flat].astype(np.float32)[:, None] * (1.0 / 255.0)

    # Per pixel [w R, w G, w B, w 255] (weights and colours 0-255): integer maths, exact in
    # uint16; box means of it are weighted means of the colour.
    rgb1 = cv2.cvtColor(rgb, cv2.COLOR_RGB2RGBA)  # the 4th channel is 255
    fg_weight, bg_weight = _weights(power)
    fg_sums = _weighted(rgb1, cv2.LUT(matte, fg_weight))
    bg_sums = _weighted(rgb1, cv2.LUT(matte, bg_weight))
    fg_wide = _wide_mean(fg_sums, wide, ys, xs)
    bg_wide = _wide_mean(bg_sums, wide, ys, xs)
    first = _fuse(image, alpha, fg_wide, bg_wide)

    # The narrow level sees the first estimate in place of the soft pixels' own colour.
    sums = fg_sums.reshape(-1, 4)
    sums[flat, :3] = (first * sums[flat, 3:4] + 0.5).astype(np.uint16)
    fg_narrow = _narrow_mean(fg_sums, narrow, ys, xs, fg_wide)
    colour = _fuse(image, alpha, fg_narrow, bg_wide)

    where = (ys + top) * width + (xs + left)
    out.reshape(-1, 3)[where] = (colour * 255.0 + 0.5).astype(np.uint8)
    return out


def _band_width(soft: np.ndarray) -> float:
    """Mean width of a band of soft pixels: its area over half its rim (a band has two sides)."""
    mask = soft.view(np.uint8)
    inner = cv2.erode(mask, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    rim = cv2.countNonZero(mask) - cv2.countNonZero(inner)
    return 2.0 * cv2.countNonZero(mask) / max(rim, 1)


def _means(sums: np.ndarray) -> np.ndarray:
    """[sum w R, sum w G, sum w B, sum w 255] (N x 4, or any ... x 4) -> the weighted mean
    colour in [0, 1]."""
    return sums[..., :3] / (sums[..., 3:4] + EPS)


def _narrow_mean(sums: np.ndarray, window: int, ys: np.ndarray, xs: np.ndarray,
                 prior: np.ndarray) -> np.ndarray:
    """Weighted mean colour over a window x window box around each (ys, xs), at full size;
    where the window holds almost no weight (the faint outer rim of a wide band), the wide
    level's mean `prior` takes over."""
    top, left = max(0, int(ys.min()) - window), max(0, int(xs.min()) - window)
    bottom, right = int(ys.max()) + window + 1, int(xs.max()) + window + 1
    blurred = cv2.blur(sums[top:bottom, left:right], (window, window),
                       borderType=cv2.BORDER_REFLECT)
    flat = (ys - top) * blurred.shape[1] + (xs - left)
    local = blurred.reshape(-1, 4)[flat].astype(np.float32)
    return (local[:, :3] + PRIOR_WEIGHT * prior) / (local[:, 3:4] + PRIOR_WEIGHT)


def _wide_mean(sums: np.ndarray, window: int, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """The same over a wide window, on a grid reduced to CELLS_PER_WINDOW cells per window
    (the products are formed before reducing, so a cell that straddles the edge does not mix
    the two colours) and read back bilinearly at (ys, xs): the wide means are smooth."""
    height, width = sums.shape[:2]
    scale = min(1.0, CELLS_PER_WINDOW / window)
    small = (max(1, round(width * scale)), max(1, round(height * scale)))
    side = max(1, round(window * scale))
    reduced = cv2.resize(sums, small, interpolation=cv2.INTER_AREA).astype(np.float32)
    blurred = cv2.blur(reduced, (side, side), borderType=cv2.BORDER_REFLECT)
    map_x = (xs + 0.5) * (small[0] / width) - 0.5
    map_y = (ys + 0.5) * (small[1] / height) - 0.5
    return _means(_sample(blurred, map_x, map_y))


@functools.cache
def _weights(power: int) -> tuple[np.ndarray, np.ndarray]:
    """Look-up tables matte -> weight (0-255) in the foreground's means, a ** power, and in the
    background's, (1 - a) ** power."""
    a = np.arange(256) / 255.0
    return ((a ** power * 255.0 + 0.5).astype(np.uint8),
            ((1.0 - a) ** power * 255.0 + 0.5).astype(np.uint8))


def _weighted(rgb1: np.ndarray, weight: np.ndarray) -> np.ndarray:
    return cv2.multiply(rgb1, cv2.merge([weight, weight, weight, weight]), dtype=cv2.CV_16U)


def _sample(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    """Bilinear reads of `image` at N points (N x channels). OpenCV's remap wants maps under
    32767 per side, so the points are laid out in rows of REMAP_ROW."""
    count = map_x.size
    rows = -(-count // REMAP_ROW)
    grid_x = np.zeros(rows * REMAP_ROW, np.float32)
    grid_y = np.zeros(rows * REMAP_ROW, np.float32)
    grid_x[:count], grid_y[:count] = map_x, map_y
    sampled = cv2.remap(image, grid_x.reshape(rows, REMAP_ROW), grid_y.reshape(rows, REMAP_ROW),
                        cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(rows * REMAP_ROW, -1)[:count]


def _fuse(image: np.ndarray, alpha: np.ndarray, fg_mean: np.ndarray, bg_mean: np.ndarray
          ) -> np.ndarray:
    """F^ + a (I - a F^ - (1 - a) B^), clipped to [0, 1] (N x 3)."""
    residual = image - alpha * fg_mean - (1.0 - alpha) * bg_mean
    return np.clip(fg_mean + alpha * residual, 0.0, 1.0)


def _grow(box: tuple[int, int, int, int], pad: int, width: int, height: int
          ) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    return max(0, left - pad), max(0, top - pad), min(width, right + pad), min(height, bottom + pad)
