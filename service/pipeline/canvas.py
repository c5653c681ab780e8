"""Placing the object on a frame: our canvas / fill / position, remove.bg's scale / position.

The frame is `canvas` (W x H) or, without one, the image's own size. The object's box is scaled
so that it fits in `fill` of the frame (aspect kept: on a square canvas its long side is `fill`
of the side), then placed as CSS's background-position places an image: position (x, y) puts
the box's left edge at x of the free width (0 = left, 0.5 = centred, 1 = right), the same
vertically. 'original' keeps the box's own x / y share of its frame. The whole image moves with
the object, so faint matte around the box (hair, shadows) comes along.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from . import geometry
from .options import CutoutOptions

# Share of the canvas the object fills when a canvas is asked for without `fill`: marketplaces
# commonly ask for the product to fill about 85 % of the frame.
DEFAULT_FILL = 0.85


@dataclass(frozen=True)
class Placement:
    """Image pixel (x, y) lands on canvas pixel (scale * x + left, scale * y + top), in pixel
    corner coordinates (the image's top-left corner is (0, 0))."""

    scale: float
    left: float
    top: float
    width: int  # the canvas
    height: int


def placement(options: CutoutOptions, frame_w: int, frame_h: int,
              box: tuple[int, int, int, int] | None) -> Placement | None:
    """Where the image goes on the canvas; None when the options do not move the object. With no
    object (box None) the canvas stays empty."""
    if not options.places:
        return None
    width, height = options.canvas or (frame_w, frame_h)
    if box is None:
        return Placement(1.0, float(width), float(height), width, height)  # entirely off it
    box_w, box_h = box[2] - box[0], box[3] - box[1]
    fill = options.fill
    if fill is None and options.canvas is not None:
        fill = DEFAULT_FILL
    scale = 1.0 if fill is None else fill * min(width / box_w, height / box_h)
    if options.position is None:
        share_x = share_y = 0.5
    elif options.position == "original":
        share_x = box[0] / (frame_w - box_w) if frame_w > box_w else 0.5
        share_y = box[1] / (frame_h - box_h) if frame_h > box_h else 0.5
    else:
        share_x, share_y = options.position
    box_left = share_x * (width - box_w * scale)
    box_top = share_y * (height - box_h * scale)
    return Placement(scale, box_left - box[0] * scale, box_top - box[1] * scale, width, height)


def apply(place: Placement, rgb: np.ndarray, matte: np.ndarray
          ) -> tuple[np.ndarray, np.ndarray]:
    """`rgb` and `matte` moved onto the canvas; the canvas outside the image is transparent."""
    scale, left, top = place.scale, place.left, place.top
    if scale < 1.0:  # shrink by area averaging first (a warp would alias), then only move
        height, width = matte.shape
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        rgb, matte = geometry.resize(rgb, new_w, new_h), geometry.resize(matte, new_w, new_h)
        scale = 1.0
    size = (place.width, place.height)
    if scale == 1.0:
        return (_paste(rgb, round(left), round(top), size),
                _paste(matte, round(left), round(top), size))
    # Enlarging: a bilinear warp computes only the canvas's pixels. OpenCV's matrix is in pixel
    # centre coordinates, hence the half-pixel terms.
    matrix = np.array([[scale, 0.0, left + 0.5 * (scale - 1.0)],
                       [0.0, scale, top + 0.5 * (scale - 1.0)]], dtype=np.float32)
    moved_rgb = cv2.warpAffine(rgb, matrix, size, flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_REPLICATE)
    moved_matte = cv2.warpAffine(matte, matrix, size, flags=cv2.INTER_LINEAR,
                                 borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return moved_rgb, moved_matte


def _paste(image: np.ndarray, left: int, top: int, size: tuple[int, int]) -> np.ndarray:
    """`image` with its top-left corner at (left, top) of a zero canvas of `size` (w, h)."""
    width, height = size
    return geometry.cut_box(image, (-left, -top, width - left, height - top), 0)
