"""Losses. Segmentation: BCE + soft Dice (Dice counters the foreground/background imbalance).
Matting (AlphaNet / Deep Image Matting): alpha L1 and composition L1, both on the unknown band."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from ..layers import dilate, erode


def edge_band(target: torch.Tensor, radius: int) -> torch.Tensor:
    """1 within `radius` px of a GT edge (outlines, holes and gaps between thin parts alike)."""
    return (dilate(target, radius) - erode(target, radius) > 0.5).to(target.dtype)


def teacher_confidence(target: torch.Tensor, soft: torch.Tensor) -> torch.Tensor:
    """Per-pixel BCE weight: (2p - 1)^2 where the sample's target is a teacher's probability p
    (`soft` [B] is 1), 1 elsewhere. A pixel the teacher is sure of counts fully, one it is
    unsure of hardly at all, so its doubt neither teaches nor turns into grey smears."""
    sure = (2.0 * target - 1.0) ** 2
    return torch.where(soft.view(-1, 1, 1, 1) > 0.5, sure, torch.ones_like(target))


def bce_dice_loss(logits: torch.Tensor, target: torch.Tensor, smooth: float = 1.0,
                  edge_weight: float = 0.0, edge_radius: int = 5,
                  soft: torch.Tensor | None = None) -> torch.Tensor:
    """`edge_weight` > 0 weighs the BCE of pixels near GT edges (1 + edge_weight), normalised so
    the mean weight stays 1: the filled holes and merged thin parts the segmenter gets wrong
    are few pixels, all of them near an edge. `soft` [B]: which samples' targets are a
    teacher's probabilities, their BCE weighted by its confidence (`teacher_confidence`)."""
    weight = None
    if edge_weight > 0:
        weight = 1.0 + edge_weight * edge_band(target, edge_radius)
        weight = weight / weight.mean(dim=(1, 2, 3), keepdim=True)
    if soft is not None:
        confidence = teacher_confidence(target, soft)
        weight = confidence if weight is None else weight * confidence
    bce = F.binary_cross_entropy_with_logits(logits, target, weight=weight)
    prob = torch.sigmoid(logits)
    dims = (1, 2, 3)
    intersection = (prob * target).sum(dims)
    dice = 1.0 - (2.0 * intersection + smooth) / (prob.sum(dims) + target.sum(dims) + smooth)
    return bce + dice.mean()


def _masked_l1(pred: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    # sqrt(d^2 + eps^2): the smooth L1 of Deep Image Matting, differentiable at 0.
    diff = torch.sqrt((pred - target) ** 2 + 1e-6)
    channels = pred.shape[1]
    return (diff * weight).sum() / (weight.sum() * channels + 1.0)


def matting_loss(
    alpha: torch.Tensor,
    gt_alpha: torch.Tensor,
    fg: torch.Tensor,
    bg: torch.Tensor,
    unknown: torch.Tensor,
    composition_weight: float = 0.5,
) -> tuple[torch.Tensor, dict[str, float]]:
    alpha_l1 = _masked_l1(alpha, gt_alpha, unknown)
    composite = alpha * fg + (1.0 - alpha) * bg
    gt_composite = gt_alpha * fg + (1.0 - gt_alpha) * bg
    composition = _masked_l1(composite, gt_composite, unknown)
    total = alpha_l1 + composition_weight * composition
    return total, {"alpha_l1": alpha_l1.item(), "composition": composition.item()}
