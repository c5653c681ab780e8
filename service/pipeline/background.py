"""What goes behind the cutout: an uploaded background image (resized to cover the output), a
soft contact shadow made from the matte, and the layering of background, shadow and object.

(Not backdrop.py: that one judges the photo's own backdrop for the trimap.)
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import geometry

RGBA = tuple[int, int, int, int]

# The contact shadow: the object's silhouette squashed onto its bottom edge (its footprint),
# this share of the box's height, blurred by this share of the box's long side, this dark.
SHADOW_HEIGHT = 0.08
SHADOW_BLUR = 0.03
SHADOW_OPACITY = 0.5


@dataclass(frozen=True)
class Picture:
    """A background image at the output's size."""

    rgb: np.ndarray  # H x W x 3 uint8
    alpha: np.ndarray | None  # H x W uint8; None: opaque


def cover(rgb: np.ndarray, alpha: np.ndarray | None, width: int, height: int) -> Picture:
    """The image scaled (aspect kept) to cover width x height, centred, the overflow cut off."""
    src_h, src_w = rgb.shape[:2]
    scale = max(width / src_w, height / src_h)
    new_w, new_h = max(width, round(src_w * scale)), max(height, round(src_h * scale))
    box = ((new_w - width) // 2, (new_h - height) // 2)
    box4 = (box[0], box[1], box[0] + width, box[1] + height)
    rgb = geometry.cut_box(geometry.resize(rgb, new_w, new_h), box4)
    if alpha is not None:
        alpha = geometry.cut_box(geometry.resize(alpha, new_w, new_h), box4)
    return Picture(rgb, alpha)


def contact_shadow(matte: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """Shadow opacity (H x W float32, 0-1) where the object meets the ground: its silhouette,
    squashed to a thin footprint centred on the box's bottom edge, blurred."""
    height, width = matte.shape
    left, top, right, bottom = box
    box_w, box_h = right - left, bottom - top
    foot_h = max(2, round(box_h * SHADOW_HEIGHT))
    footprint = cv2.resize(matte[top:bottom, left:right], (box_w, foot_h),
                           interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    sigma = max(1.0, SHADOW_BLUR * max(box_w, box_h))
    pad = int(3 * sigma) + 1
    # Blur only around the footprint (the rest stays 0), then cut to the image.
    foot_top = bottom - foot_h // 2
    region = (left - pad, foot_top - pad, right + pad, foot_top + foot_h + pad)
    local = np.zeros((region[3] - region[1], region[2] - region[0]), np.float32)
    local[pad:pad + foot_h, pad:pad + box_w] = footprint
    local = cv2.GaussianBlur(local, (0, 0), sigma) * SHADOW_OPACITY
    shadow = np.zeros((height, width), np.float32)
    src_l, src_t = max(region[0], 0), max(region[1], 0)
    src_r, src_b = min(region[2], width), min(region[3], height)
    if src_r > src_l and src_b > src_t:
        shadow[src_t:src_b, src_l:src_r] = local[src_t - region[1]:src_b - region[1],
                                                 src_l - region[0]:src_r - region[0]]
    return shadow


def layer(rgb: np.ndarray, matte: np.ndarray, behind: RGBA | Picture | None,
          shadow: np.ndarray | None) -> np.ndarray:
    """Background, then the (black) shadow, then the object, each over the one below
    (premultiplied). RGB when the result is opaque everywhere, else straight RGBA."""
    height, width = matte.shape
    if isinstance(behind, Picture):
        colour = behind.rgb.astype(np.float32)
        cover_a = (np.ones((height, width, 1), np.float32) if behind.alpha is None
                   else behind.alpha.astype(np.float32)[..., None] / 255.0)
        opaque = behind.alpha is None or bool((behind.alpha == 255).all())
    elif behind is not None:
        colour = np.broadcast_to(np.asarray(behind[:3], np.float32), (height, width, 3))
        cover_a = np.full((height, width, 1), behind[3] / 255.0, np.float32)
        opaque = behind[3] == 255
    else:
        colour = np.zeros((height, width, 3), np.float32)
        cover_a = np.zeros((height, width, 1), np.float32)
        opaque = False
    premultiplied = colour * cover_a
    if shadow is not None:  # black: it only darkens what is below and adds coverage
        s = shadow[..., None]
        premultiplied = premultiplied * (1.0 - s)
        cover_a = s + cover_a * (1.0 - s)
    a = matte.astype(np.float32)[..., None] / 255.0
    premultiplied = rgb.astype(np.float32) * a + premultiplied * (1.0 - a)
    cover_a = a + cover_a * (1.0 - a)
    if opaque:
        return geometry.to_uint8(premultiplied / 255.0)
    straight = np.where(cover_a > 0, premultiplied / np.maximum(cover_a, 1e-6), 0.0)
    return np.concatenate([geometry.to_uint8(straight / 255.0), geometry.to_uint8(cover_a)],
                          axis=2)
