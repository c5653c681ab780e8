"""Mask and matting metrics as defined in ../shared/notes/metrics.md (numpy + OpenCV, no torch).

MAD / MSE are per-pixel means over the whole image (as AlphaNet's tables); gradient error is the
sum over the image divided by 1000 (the matting papers' scale); IoU at threshold 0.5; boundary
F-score with a tolerance of 0.5 % of the image diagonal.
"""
from __future__ import annotations

import cv2
import numpy as np


def iou(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> float:
    p = pred >= threshold
    g = gt >= threshold
    union = np.logical_or(p, g).sum()
    if union == 0:
        return 1.0
    return float(np.logical_and(p, g).sum() / union)


def mask_errors(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """The mask's two kinds of error, each as a share of the object's area: `kept_background`
    (predicted foreground on the ground truth's background: a rug, the flowers) and
    `lost_object` (the object's pixels left out: a pale sole, a hole). IoU alone does not say
    which a model makes; the cures differ (scenes that must stay background, or the object's
    look). An empty ground truth counts every predicted pixel against one pixel."""
    p = pred >= threshold
    g = gt >= threshold
    area = max(int(g.sum()), 1)
    return {"kept_background": float((p & ~g).sum() / area),
            "lost_object": float((g & ~p).sum() / area)}


def _boundary(mask: np.ndarray) -> np.ndarray:
    m = mask.astype(np.uint8)
    return (m - cv2.erode(m, np.ones((3, 3), np.uint8), borderType=cv2.BORDER_REPLICATE)) > 0


def boundary_f_score(pred: np.ndarray, gt: np.ndarray, threshold: float = 0.5,
                     tolerance_frac: float = 0.005) -> float:
    h, w = gt.shape
    tolerance = max(1.0, tolerance_frac * float(np.hypot(h, w)))
    pb = _boundary(pred >= threshold)
    gb = _boundary(gt >= threshold)
    if not pb.any() and not gb.any():
        return 1.0
    if not pb.any() or not gb.any():
        return 0.0
    # Distance from every pixel to the nearest boundary pixel of the other mask.
    dist_to_g = cv2.distanceTransform((~gb).astype(np.uint8), cv2.DIST_L2, 3)
    dist_to_p = cv2.distanceTransform((~pb).astype(np.uint8), cv2.DIST_L2, 3)
    precision = float((dist_to_g[pb] <= tolerance).mean())
    recall = float((dist_to_p[gb] <= tolerance).mean())
    if precision + recall == 0:
        return 0.0
    return 2 * precision * recall / (precision + recall)


def mad(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(np.abs(pred.astype(np.float64) - gt).mean())


def mse(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(((pred.astype(np.float64) - gt) ** 2).mean())


def _gaussian_derivative_kernels(sigma: float) -> tuple[np.ndarray, np.ndarray]:
    radius = int(np.ceil(3 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    gauss = np.exp(-(x**2) / (2 * sigma**2))
    gauss /= gauss.sum()
    deriv = -x * gauss / sigma**2
    deriv /= np.abs(deriv).sum() / 2  # unit response to a unit step
    return gauss, deriv


def gradient_error(pred: np.ndarray, gt: np.ndarray, sigma: float = 1.4) -> float:
    gauss, deriv = _gaussian_derivative_kernels(sigma)

    def magnitude(a: np.ndarray) -> np.ndarray:
        a = a.astype(np.float64)
        gx = cv2.sepFilter2D(a, cv2.CV_64F, deriv, gauss, borderType=cv2.BORDER_REPLICATE)
        gy = cv2.sepFilter2D(a, cv2.CV_64F, gauss, deriv, borderType=cv2.BORDER_REPLICATE)
        return np.sqrt(gx**2 + gy**2)

    return float(((magnitude(pred) - magnitude(gt)) ** 2).sum() / 1000.0)


def iou_loss_by_region(pred: np.ndarray, gt: np.ndarray, trimap: np.ndarray,
                       threshold: float = 0.5) -> dict[str, float]:
    """1 - IoU split by the trimap's regions: the pixels where prediction and GT disagree,
    counted where the trimap says known foreground (`fg`), unknown (`band`) or known background
    (`bg`), each over the union. The three add up to 1 - iou(pred, gt). Known-region errors are
    the segmenter's alone (the matting net never changes them); band errors are shared."""
    p = pred >= threshold
    g = gt >= threshold
    union = np.logical_or(p, g).sum()
    wrong = p != g
    regions = {"fg": trimap > 0.75, "band": (trimap >= 0.25) & (trimap <= 0.75),
               "bg": trimap < 0.25}
    if union == 0:
        return {name: 0.0 for name in regions}
    return {name: float((wrong & region).sum() / union) for name, region in regions.items()}


def background_smear(pred: np.ndarray, gt: np.ndarray, band_rate: float = 0.02) -> float:
    """Mean predicted alpha over the ground truth's background away from its edge: the grey
    half-transparent smears a cutout leaves on curtains, shelves and floors. Background pixels
    within `band_rate` x the object's box ((h + w) / 2, at least 2 px; the ED layer's measure) of
    the foreground are left out, so an edge a little wide is not counted as a smear. 0 is clean."""
    fg = gt >= 0.5
    if not fg.any():
        far = np.ones_like(fg)
    else:
        ys, xs = np.nonzero(fg)
        radius = max(2, round(band_rate * ((np.ptp(ys) + 1) + (np.ptp(xs) + 1)) / 2))
        near = cv2.dilate(fg.astype(np.uint8), cv2.getStructuringElement(
            cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))) > 0
        far = ~near
    return float(pred[far].mean()) if far.any() else 0.0
