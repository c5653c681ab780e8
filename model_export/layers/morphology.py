"""The ED layer: mask -> trimap by erosion and dilation whose radii scale with the object.

AlphaNet sets the erosion and dilation radii as a percentage of the object's bounding box,
r = rate * (h + w) / 2. ONNX MaxPool kernels are static while r depends on the image, so the
layer unrolls a cascade of `max_radius` separable 3x3 max-pools (1x3 then 3x1) and keeps the
result of step i only where i < r (an in-graph `Where` per step). Chained 3x3 dilations compose to
a (2r+1) square, identical to cv2.dilate / cv2.erode with that kernel (borders never erode or
dilate, matching MaxPool's -inf padding). Everything is standard ONNX: Greater, ReduceMax,
ReduceMin, MaxPool, Where.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

FOREGROUND = 1.0
UNKNOWN = 0.5
BACKGROUND = 0.0


def _maxpool3(x: torch.Tensor) -> torch.Tensor:
    # Separable: 6 comparisons a pixel instead of 9, same result for a square window.
    x = F.max_pool2d(x, kernel_size=(1, 3), stride=1, padding=(0, 1))
    return F.max_pool2d(x, kernel_size=(3, 1), stride=1, padding=(1, 0))


def dilate(x: torch.Tensor, radius: int) -> torch.Tensor:
    """Grey dilation with a (2r+1) square; radius a Python int (training-time helper)."""
    if radius <= 0:
        return x
    k = 2 * radius + 1
    x = F.max_pool2d(x, kernel_size=(1, k), stride=1, padding=(0, radius))
    return F.max_pool2d(x, kernel_size=(k, 1), stride=1, padding=(radius, 0))


def erode(x: torch.Tensor, radius: int) -> torch.Tensor:
    return -dilate(-x, radius)


def box_radius(binary: torch.Tensor, rate: torch.Tensor) -> torch.Tensor:
    """Radius round(rate * (h + w) / 2) of each sample's foreground bounding box, shape [N].

    An empty mask has h = w = 0, hence radius 0.
    """
    _, _, height, width = binary.shape
    rows = binary.amax(dim=(1, 3))  # [N, H]: 1 where the row holds foreground
    cols = binary.amax(dim=(1, 2))  # [N, W]
    box_h = _extent(rows, height)
    box_w = _extent(cols, width)
    size = (box_h + box_w) * 0.5
    return torch.floor(rate * size + 0.5)


def _extent(occupied: torch.Tensor, length: int) -> torch.Tensor:
    index = torch.arange(length, dtype=occupied.dtype, device=occupied.device)
    last = (index * occupied).amax(dim=1)
    first = (index + length * (1.0 - occupied)).amin(dim=1)
    return torch.clamp(last - first + 1.0, min=0.0)


class EDTrimap(nn.Module):
    """Mask probability [N,1,H,W] -> trimap [N,1,H,W] with values {0, 0.5, 1}.

    `erode_rate` / `dilate_rate` are fractions of (h + w) / 2 of the box; radii are capped at
    `max_radius` (the unrolled depth of the graph). Rates can be overridden per sample at
    training time by passing tensors of shape [N].
    """

    def __init__(
        self,
        erode_rate: float,
        dilate_rate: float,
        max_radius: int = 24,
        threshold: float = 0.5,
    ) -> None:
        super().__init__()
        self.erode_rate = erode_rate
        self.dilate_rate = dilate_rate
        self.max_radius = max_radius
        self.threshold = threshold

    def radii(
        self,
        binary: torch.Tensor,
        erode_rate: torch.Tensor | None = None,
        dilate_rate: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = binary.shape[0]
        if erode_rate is None:
            erode_rate = torch.full((n,), self.erode_rate, dtype=binary.dtype)
        if dilate_rate is None:
            dilate_rate = torch.full((n,), self.dilate_rate, dtype=binary.dtype)
        r_e = torch.clamp(box_radius(binary, erode_rate), max=float(self.max_radius))
        r_d = torch.clamp(box_radius(binary, dilate_rate), max=float(self.max_radius))
        return r_e, r_d

    def forward(
        self,
        mask: torch.Tensor,
        erode_rate: torch.Tensor | None = None,
        dilate_rate: torch.Tensor | None = None,
    ) -> torch.Tensor:
        binary = (mask > self.threshold).to(mask.dtype)
        r_e, r_d = self.radii(binary, erode_rate, dilate_rate)
        r_e = r_e.view(-1, 1, 1, 1)
        r_d = r_d.view(-1, 1, 1, 1)
        eroded = binary
        dilated = binary
        for step in range(self.max_radius):
            dilated = torch.where(r_d > step, _maxpool3(dilated), dilated)
            eroded = torch.where(r_e > step, -_maxpool3(-eroded), eroded)
        # eroded = 1 -> both 1 -> 1; dilated = 0 -> both 0 -> 0; in between -> 0.5.
        return (eroded + dilated) * 0.5
