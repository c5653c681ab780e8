"""From the full-size matte to the pixels to encode: crop, scale, background, channels."""
from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from . import canvas, foreground, geometry
from .background import Picture, contact_shadow, cover, layer
from .options import CutoutOptions

# Pixels whose matte is above this (of 255) count as the object for crops and headers.
OBJECT_THRESHOLD = 12
WHITE = (255, 255, 255, 255)


@dataclass(frozen=True)
class Composed:
    pixels: np.ndarray  # H x W grey, H x W x 3 RGB or H x W x 4 RGBA, uint8
    matte: np.ndarray  # the (cropped, scaled) matte, for zip archives
    object_box: tuple[int, int, int, int] | None  # (left, top, right, bottom) in the output


def multiply_mattes(matte: np.ndarray, other: np.ndarray) -> np.ndarray:
    """Product of two uint8 mattes (an input's own alpha and ours), rounded."""
    product = matte.astype(np.uint16) * other.astype(np.uint16) + 127
    return (product // 255).astype(np.uint8)


def crop_box(box: tuple[int, int, int, int], options: CutoutOptions) -> tuple[int, int, int, int]:
    left, top, right, bottom = box
    m_top, m_right, m_bottom, m_left = options.crop_margin
    box_w, box_h = right - left, bottom - top
    return (left - m_left.pixels(box_w), top - m_top.pixels(box_h),
            right + m_right.pixels(box_w), bottom + m_bottom.pixels(box_h))


def compose(rgb: np.ndarray, matte: np.ndarray, options: CutoutOptions,
            backdrop: Picture | None = None, *, estimate_foreground: bool = False) -> Composed:
    """`rgb` and `matte` at the original size; `matte` is what the output is about (alpha, mask
    or trimap, uint8). `backdrop`: the decoded bg_image, at any size. `estimate_foreground`: the
    soft edge takes the object's estimated colour instead of the photo's (foreground.py)."""
    threshold = 0 if options.output == "trimap" else OBJECT_THRESHOLD
    box = geometry.bounding_box(matte, threshold)
    place = canvas.placement(options, matte.shape[1], matte.shape[0], box)
    if place is not None:
        rgb, matte = canvas.apply(place, rgb, matte)
        box = geometry.bounding_box(matte, threshold)
    elif options.crop and box is not None:
        region = crop_box(box, options)
        rgb, matte = geometry.cut_box(rgb, region), geometry.cut_box(matte, region)
        box = (box[0] - region[0], box[1] - region[1], box[2] - region[0], box[3] - region[1])
    rgb, matte, box = _limit_size(rgb, matte, box, options.max_megapixels)

    if options.output != "rgba":
        return Composed(matte, matte, box)
    if estimate_foreground:  # before any colour output: rgba, zip, backgrounds, canvas
        rgb = foreground.estimate(rgb, matte)
    if options.format == "zip":
        return Composed(rgb, matte, box)
    background = options.bg_color
    if background is None and options.format == "jpeg":
        background = WHITE
    if backdrop is not None or options.shadow:
        height, width = matte.shape
        behind = background if backdrop is None else cover(backdrop.rgb, backdrop.alpha,
                                                             width, height)
        if isinstance(behind, Picture) and behind.alpha is not None and options.format == "jpeg":
            behind = Picture(layer(behind.rgb, behind.alpha, WHITE, None), None)  # no alpha
        shadow = contact_shadow(matte, box) if options.shadow and box is not None else None
        return Composed(layer(rgb, matte, behind, shadow), matte, box)
    if background is None:
        return Composed(_straight_rgba(rgb, matte), matte, box)
    return Composed(_over(rgb, matte, background), matte, box)


def _limit_size(rgb: np.ndarray, matte: np.ndarray, box, megapixels: float | None):
    height, width = matte.shape
    if megapixels is None or width * height <= megapixels * 1e6:
        return rgb, matte, box
    scale = math.sqrt(megapixels * 1e6 / (width * height))
    new_w, new_h = max(1, int(width * scale)), max(1, int(height * scale))
    if box is not None:
        box = tuple(round(v * scale) for v in box)
    return geometry.resize(rgb, new_w, new_h), geometry.resize(matte, new_w, new_h), box


def _straight_rgba(rgb: np.ndarray, matte: np.ndarray) -> np.ndarray:
    # Colour under fully transparent pixels is invisible: zero it and the PNG is ~3x smaller.
    # (threshold, not compare(matte, 0): OpenCV refuses compare() of a 1 x 1 array with a
    # scalar, so a 1 x 1 input failed here)
    visible = cv2.threshold(matte, 0, 255, cv2.THRESH_BINARY)[1]
    out = cv2.cvtColor(cv2.bitwise_and(rgb, rgb, mask=visible), cv2.COLOR_RGB2RGBA)
    out[..., 3] = matte
    return out


def _over(rgb: np.ndarray, matte: np.ndarray, background: tuple[int, int, int, int]) -> np.ndarray:
    """The cutout over a solid colour; opaque RGB unless the colour is translucent."""
    a = matte.astype(np.float32)[..., None] * (1.0 / 255.0)
    colour = np.asarray(background[:3], dtype=np.float32)
    bg_alpha = background[3] / 255.0
    if bg_alpha >= 1.0:
        return geometry.to_uint8((rgb * a + colour * (1.0 - a)) / 255.0)
    out_alpha = a + bg_alpha * (1.0 - a)
    premultiplied = rgb * a + colour * bg_alpha * (1.0 - a)
    out_rgb = np.where(out_alpha > 0, premultiplied / np.maximum(out_alpha, 1e-6), 0.0)
    return np.concatenate([geometry.to_uint8(out_rgb / 255.0), geometry.to_uint8(out_alpha)],
                          axis=2)
