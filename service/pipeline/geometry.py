"""Sizes, resizing, padding and boxes: small pure functions on numpy arrays."""
from __future__ import annotations

import cv2
import numpy as np


def fit_long_side(width: int, height: int, long_side: int, upscale: bool = True) -> tuple[int, int]:
    """(w, h) with the long side equal to `long_side` (aspect kept, each side >= 1 px).

    With upscale=False an image already within `long_side` keeps its size.
    """
    scale = long_side / max(width, height)
    if not upscale and scale >= 1.0:
        return width, height
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Area averaging to shrink, bilinear to enlarge; no copy when the size already fits."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrinking = width * height < image.shape[0] * image.shape[1]
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR
    return cv2.resize(image, (width, height), interpolation=interpolation)


def upscale_matte(matte: np.ndarray, width: int, height: int) -> np.ndarray:
    """A uint8 matte to the full size: bilinear (smooth edges, never nearest), values stay in
    [0, 255] by construction."""
    if matte.shape[1] == width and matte.shape[0] == height:
        return matte
    return cv2.resize(matte, (width, height), interpolation=cv2.INTER_LINEAR)


def upscale_nearest(labels: np.ndarray, width: int, height: int) -> np.ndarray:
    """Label maps (trimaps) keep their exact values when enlarged."""
    if labels.shape[1] == width and labels.shape[0] == height:
        return labels
    return cv2.resize(labels, (width, height), interpolation=cv2.INTER_NEAREST)


def round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def pad_to(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Replicate the bottom / right borders up to (height, width)."""
    bottom, right = height - image.shape[0], width - image.shape[1]
    if bottom <= 0 and right <= 0:
        return image
    return cv2.copyMakeBorder(image, 0, max(bottom, 0), 0, max(right, 0), cv2.BORDER_REPLICATE)


def pad_to_multiple(image: np.ndarray, multiple: int) -> np.ndarray:
    return pad_to(image, round_up(image.shape[0], multiple), round_up(image.shape[1], multiple))


def to_unit_float(matte: np.ndarray) -> np.ndarray:
    return matte.astype(np.float32) * (1.0 / 255.0)


def to_uint8(values: np.ndarray) -> np.ndarray:
    """[0, 1] floats to uint8, clipped and rounded."""
    return np.clip(values * 255.0 + 0.5, 0.0, 255.0).astype(np.uint8)


def bounding_box(matte: np.ndarray, threshold: float) -> tuple[int, int, int, int] | None:
    """(left, top, right, bottom), right/bottom exclusive, of pixels above threshold; None if
    none are."""
    rows = np.flatnonzero((matte > threshold).any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero((matte[rows[0]:rows[-1] + 1] > threshold).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def cut_box(image: np.ndarray, box: tuple[int, int, int, int], fill: int | tuple = 0) -> np.ndarray:
    """The region `box` of `image`; parts outside the image are filled with `fill`."""
    left, top, right, bottom = box
    height, width = image.shape[:2]
    if left >= 0 and top >= 0 and right <= width and bottom <= height:
        return image[top:bottom, left:right]
    out = np.empty((bottom - top, right - left) + image.shape[2:], dtype=image.dtype)
    out[...] = fill
    src_l, src_t = max(left, 0), max(top, 0)
    src_r, src_b = min(right, width), min(bottom, height)
    if src_r > src_l and src_b > src_t:
        out[src_t - top:src_b - top, src_l - left:src_r - left] = image[src_t:src_b, src_l:src_r]
    return out
