"""The evaluation metrics on cases whose answer is known by hand."""
from __future__ import annotations

import numpy as np
import pytest

from model_export.metrics import (
    boundary_f_score,
    gradient_error,
    iou,
    iou_loss_by_region,
    mad,
    mask_errors,
    mse,
)


def _square(size: int = 100, lo: int = 20, hi: int = 80) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    mask[lo:hi, lo:hi] = 1.0
    return mask


def test_perfect_prediction_scores_perfectly():
    gt = _square()
    assert iou(gt, gt) == 1.0
    assert boundary_f_score(gt, gt) == 1.0
    assert mad(gt, gt) == 0.0 and mse(gt, gt) == 0.0
    assert gradient_error(gt, gt) == 0.0


def test_iou_of_half_overlapping_rectangles():
    gt = np.zeros((10, 20), np.float32)
    gt[:, :10] = 1
    pred = np.zeros_like(gt)
    pred[:, 5:15] = 1
    assert iou(pred, gt) == pytest.approx(50 / 150)


def test_iou_thresholds_soft_masks_at_half():
    gt = _square()
    assert iou(gt * 0.51, gt) == 1.0
    assert iou(gt * 0.49, gt) == 0.0


def test_empty_masks_agree():
    empty = np.zeros((8, 8), np.float32)
    assert iou(empty, empty) == 1.0
    assert boundary_f_score(empty, empty) == 1.0
    assert boundary_f_score(_square(8, 2, 6), empty) == 0.0


def test_boundary_f_tolerates_shifts_within_tolerance_only():
    gt = _square(200, 40, 160)
    # Tolerance is 0.5 % of the diagonal: 1.41 px on 200 x 200.
    assert boundary_f_score(np.roll(gt, 1, axis=1), gt) == 1.0
    shifted = boundary_f_score(np.roll(gt, 6, axis=1), gt)
    # Vertical edges (half the boundary) move 6 px: those pixels no longer match.
    assert 0.4 < shifted < 0.7


def test_mad_and_mse_are_per_pixel_means():
    gt = np.zeros((4, 5), np.float32)
    pred = np.full_like(gt, 0.5)
    assert mad(pred, gt) == pytest.approx(0.5)
    assert mse(pred, gt) == pytest.approx(0.25)


def test_gradient_error_grows_with_blur_of_a_sharp_edge():
    import cv2

    gt = _square()
    slight = cv2.GaussianBlur(gt, (0, 0), 0.8)
    heavy = cv2.GaussianBlur(gt, (0, 0), 3.0)
    assert 0 < gradient_error(slight, gt) < gradient_error(heavy, gt)
    # A constant offset has no gradient: no gradient error.
    assert gradient_error(np.clip(gt + 0.1, 0, 1.1), gt + 0.1) == pytest.approx(0.0, abs=1e-9)


def test_iou_loss_by_region_splits_the_loss_where_the_trimap_puts_it():
    """A square with a filled-in hole (known foreground) and a ring of edge errors (band)."""
    gt = _square()
    gt[40:60, 40:60] = 0.0  # the hole: 400 px
    pred = _square(lo=22, hi=78)  # the outline 2 px short on every side: 464 px missed
    trimap = np.zeros_like(gt)
    trimap[18:82, 18:82] = 0.5
    trimap[25:75, 25:75] = 1.0  # the hole lies in known foreground
    split = iou_loss_by_region(pred, gt, trimap)
    union = 3600 - 400 + 400  # GT's 3200 + the filled hole
    assert split["fg"] == pytest.approx(400 / union)
    assert split["band"] == pytest.approx((3600 - 56 * 56) / union)
    assert split["bg"] == 0.0
    assert sum(split.values()) == pytest.approx(1.0 - iou(pred, gt))
    assert iou_loss_by_region(gt, gt, trimap) == {"fg": 0.0, "band": 0.0, "bg": 0.0}


def test_mask_errors_tell_background_kept_from_object_lost():
    gt = np.zeros((10, 20), np.float32)
    gt[:, :10] = 1  # 100 object pixels
    pred = np.zeros_like(gt)
    pred[:, 5:15] = 1  # half the object found, 50 background pixels kept
    assert mask_errors(pred, gt) == {"kept_background": 0.5, "lost_object": 0.5}
    widened = gt.copy()
    widened[:, 10:12] = 1  # the whole object and 20 pixels of its background
    assert mask_errors(widened, gt) == {"kept_background": 0.2, "lost_object": 0.0}
    assert mask_errors(gt * 0.4, gt) == {"kept_background": 0.0, "lost_object": 1.0}
