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
level is a smooth field, so it runs on a grid of whole cells (photo and matte averaged over a
few pixels, CELLS_PER_WINDOW across a window); the narrow one runs at full size on the soft
pixels' box, in integers (uint8 in, uint16 sums). The per-pixel maths runs on the soft pixels
only, gathered as 3 x N arrays. Pixels with a = 0 or 1 are never changed. About 2x cheaper
than the first version (full-size products, N x 3 arrays), same colour error
(docs/performance.md, section 9).
"""
from __future__ import annotations

import functools

import cv2
import numpy as np

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
# Weight of the wide mean in the narrow one: 2 % of a window of solid object.
PRIOR_SHARE = 0.02
REMAP_ROW = 4096
# Numbers as wide as a pixel of 4 channels of 1, 2 or 4 bytes.
PIXEL_TYPES = {4: np.uint32, 8: np.uint64, 16: np.complex128}
EPS = 1e-6  # in units of the wide level's mean weight (0-1)


def soft_pixels(matte: np.ndarray) -> np.ndarray:
    """Where the matte is neither 0 nor 255 (bool H x W)."""
    return (matte > 0) & (matte < 255)


def estimate(rgb: np.ndarray, matte: np.ndarray, wide_window: float = WIDE_WINDOW,
             narrow_window: float = NARROW_WINDOW, power: int = POWER) -> np.ndarray:
    """`rgb` (H x W x 3 uint8) with the colour of its soft pixels replaced by the estimated
    foreground; a new array (the input is returned as it is when the matte has no soft pixel).
    `matte` is H x W uint8; the windows are fractions of the long side."""
    soft = cv2.inRange(matte, 1, 254)  # 255 on the soft pixels: one pass, no bool temporaries
    points = cv2.findNonZero(soft)
    if points is None:
        return rgb
    rgb, matte = np.ascontiguousarray(rgb), np.ascontiguousarray(matte)
    points = points.reshape(-1, 2)  # (x, y) per soft pixel, row by row
    xs, ys = points[:, 0], points[:, 1]
    box = (int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)
    height, width = matte.shape
    # The wide window must reach across the band to the solid object: a blurred edge (out of
    # focus, motion) makes a band wider than the usual share of the image.
    wide = max(2 * MIN_NARROW, round(wide_window * max(height, width)),
               round(BAND_WIDTHS * _band_width(soft[box[1]:box[3], box[0]:box[2]])))
    narrow = max(MIN_NARROW, round(narrow_window * max(height, width)))
    flat = ys * width + xs
    levels = matte.reshape(-1)[flat]
    alpha = levels * np.float32(1.0 / 255.0)
    # The narrow level's region: the soft pixels' box and one narrow window around it, as RGBA
    # (a pixel is one uint32: gathers and scatters of whole pixels are several times faster).
    left, top, right, bottom = _grow(box, narrow, width, height)
    rgba = cv2.cvtColor(rgb[top:bottom, left:right], cv2.COLOR_RGB2RGBA)
    at = (ys - top) * (right - left) + (xs - left)
    # Colours of the soft pixels below are 3 x N (one channel a row): numpy's loops run along
    # the N pixels, not along 3 channels.
    image = _channels(_pixels(rgba)[at].view(np.uint8).reshape(-1, 4))[:3]
    image *= np.float32(1.0 / 255.0)

    fg_wide, bg_wide = _wide_means(rgb, matte, box, wide, power, xs, ys)
    first = _fuse(image, alpha, fg_wide, bg_wide)
    fg_narrow = _narrow_mean(rgba, matte[top:bottom, left:right], at, levels, first, narrow,
                             power, fg_wide)
    colour = _fuse(image, alpha, fg_narrow, bg_wide)
    colour *= 255.0
    colour += 0.5

    out = rgb.copy()
    flat_out, where = out.reshape(-1), flat * 3
    for channel in range(3):  # three 1-byte scatters beat one of 3-byte rows
        flat_out[where + channel] = colour[channel]
    return out


def _band_width(soft: np.ndarray) -> float:
    """Mean width of a band of soft pixels (uint8 mask): its area over half its rim (a band has
    two sides)."""
    inner = cv2.erode(soft, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)
    area = cv2.countNonZero(soft)
    return 2.0 * area / max(area - cv2.countNonZero(inner), 1)


def _wide_means(rgb: np.ndarray, matte: np.ndarray, box: tuple[int, int, int, int], window: int,
                power: int, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted mean colours (3 x N, 0-1) of the foreground and the background over a wide
    window around each soft pixel (xs, ys). The wide means are smooth, so they run on a grid
    of CELLS_PER_WINDOW cells per window, made by averaging whole cells of the photo and the
    matte (an integer reduction: OpenCV's fast path), and are read back bilinearly. (A cell
    across a hard edge mixes the two colours, with a small weight: a ** 4 of its mean.)"""
    height, width = matte.shape
    cell = max(1, min(round(window / CELLS_PER_WINDOW), height, width))
    left, top, right, bottom = _grow(box, window // 2 + 1, width, height)
    left, right = _whole_cells(left, right, width, cell)
    top, bottom = _whole_cells(top, bottom, height, cell)
    grid = ((right - left) // cell, (bottom - top) // cell)
    colour = cv2.resize(rgb[top:bottom, left:right], grid, interpolation=cv2.INTER_AREA)
    level = cv2.resize(matte[top:bottom, left:right], grid, interpolation=cv2.INTER_AREA)
    channels = cv2.split(colour.astype(np.float32) * np.float32(1.0 / 255.0))
    planes = []
    for table in _weights(power):  # [w R, w G, w B, w] for each side
        weight = cv2.LUT(level, table)
        planes += [*(cv2.multiply(channel, weight) for channel in channels), weight]
    side = max(1, round(window / cell))
    sums = np.asarray(cv2.blur(cv2.merge(planes), (side, side), borderType=cv2.BORDER_REFLECT),
                      dtype=np.float32)
    # The means on the grid (fewer cells than soft pixels), then one read for both.
    sums[..., 3] += EPS
    sums[..., 7] += EPS
    sums[..., 0:3] /= sums[..., 3:4]
    sums[..., 4:7] /= sums[..., 7:8]
    means = _channels(_sample(sums, xs, ys, left, top, 1.0 / cell))
    return means[0:3], means[4:7]


def _whole_cells(start: int, stop: int, size: int, cell: int) -> tuple[int, int]:
    """[start, stop) widened to a whole number of cells, within [0, size)."""
    count = min(-(-(stop - start) // cell), size // cell)
    start = min(start, size - count * cell)
    return start, start + count * cell


def _narrow_mean(rgba: np.ndarray, matte: np.ndarray, at: np.ndarray, levels: np.ndarray,
                 first: np.ndarray, window: int, power: int, prior: np.ndarray) -> np.ndarray:
    """Weighted mean colour (3 x N, 0-1) of the foreground over a window x window box around
    each soft pixel (flat indices `at` in the region `rgba` / `matte`), at full size: the solid
    object's pixels with weight 255, the soft ones with 255 a ** power and their first estimate
    in place of their own colour. Where the window holds almost no weight (the faint outer rim
    of a wide band), the wide level's mean `prior` takes over."""
    # [R, G, B, 255] on the solid object, 0 elsewhere: uint8, summed exactly in uint16.
    solid = cv2.compare(matte, 255, cv2.CMP_EQ)  # type: ignore[call-overload]  # scalar src2
    sums = cv2.bitwise_and(rgba, rgba, mask=solid)
    weight = cv2.LUT(levels, _weights_uint8(power)).reshape(-1)
    soft = np.asarray(first * weight, dtype=np.float32)
    soft += 0.5
    soft_planes = [plane.astype(np.uint8) for plane in soft]
    _pixels(sums)[at] = _pixels(cv2.merge([*soft_planes, weight]))
    depth = cv2.CV_16U if 255 * window * window < 65536 else cv2.CV_32F
    totals = cv2.boxFilter(sums, depth, (window, window), normalize=False,
                           borderType=cv2.BORDER_REFLECT)
    local = _channels(_pixels(totals)[at].view(totals.dtype).reshape(-1, 4))
    prior_weight = np.float32(PRIOR_SHARE * 255.0 * window * window)
    mean = prior * prior_weight
    mean += local[:3]
    mean /= local[3] + prior_weight
    return mean


def _channels(rows: np.ndarray) -> np.ndarray:
    """N x C values -> C x N float32, contiguous."""
    return np.ascontiguousarray(rows.T, dtype=np.float32)


def _pixels(image: np.ndarray) -> np.ndarray:
    """A 4-channel image (or N x 4 rows) as one number per pixel, a view."""
    return image.reshape(-1).view(PIXEL_TYPES[4 * image.itemsize])


@functools.cache
def _weights(power: int) -> tuple[np.ndarray, np.ndarray]:
    """Look-up tables matte -> weight (0-1, float32) in the foreground's means, a ** power, and
    in the background's, (1 - a) ** power."""
    a = np.arange(256) / 255.0
    return (a ** power).astype(np.float32), ((1.0 - a) ** power).astype(np.float32)


@functools.cache
def _weights_uint8(power: int) -> np.ndarray:
    """The foreground's weights in 0-255 (uint8)."""
    return (_weights(power)[0] * 255.0 + 0.5).astype(np.uint8)


def _sample(image: np.ndarray, xs: np.ndarray, ys: np.ndarray, left: int, top: int,
            scale: float) -> np.ndarray:
    """Bilinear reads (N x channels) of `image`, a grid `scale` times the size of the photo
    from (left, top) on, at the photo's pixels (xs, ys). OpenCV's remap wants maps under
    32767 per side, so the points are laid out in rows of REMAP_ROW."""
    count = xs.size
    rows = -(-count // REMAP_ROW)
    maps: list[np.ndarray] = []
    for points, start in ((xs, left), (ys, top)):
        grid = np.zeros((rows, REMAP_ROW), np.float32)
        flat = grid.reshape(-1)[:count]
        flat[:] = points
        flat += 0.5 - start  # pixel centres
        flat *= scale
        flat -= 0.5
        maps.append(grid)
    sampled = cv2.remap(image, maps[0], maps[1], cv2.INTER_LINEAR,
                        borderMode=cv2.BORDER_REPLICATE)
    return sampled.reshape(rows * REMAP_ROW, -1)[:count]


def _fuse(image: np.ndarray, alpha: np.ndarray, fg_mean: np.ndarray, bg_mean: np.ndarray
          ) -> np.ndarray:
    """F^ + a (I - a F^ - (1 - a) B^), clipped to [0, 1] (3 x N, alpha N); in place on one new
    array, as I - B^ - a (F^ - B^) is the residual."""
    out = fg_mean - bg_mean
    out *= alpha
    np.subtract(image, out, out=out)
    out -= bg_mean
    out *= alpha
    out += fg_mean
    return np.clip(out, 0.0, 1.0, out=out)


def _grow(box: tuple[int, int, int, int], pad: int, width: int, height: int
          ) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    return max(0, left - pad), max(0, top - pad), min(width, right + pad), min(height, bottom + pad)
