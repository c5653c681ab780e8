"""AlphaNet's attention module and the pooling / unpooling it guides.

For a feature map with C channels at H x W, the module predicts two attention maps at the same
H x W (one logit per channel and pixel):
  four parallel 4x4 stride-2 group convolutions (groups=2, C/2 channels each, 2C in total)
  -> GroupNorm -> ReLU -> two pointwise convolutions (encoder head, decoder head), each giving
  4C channels at H/2 x W/2 -> pixel shuffle x2 -> C channels at H x W.

Encoder: a = sigmoid(logit), weights = softmax of a over each 2x2 window; pooled value is the
weighted sum over the window. Uniform attention reduces this to 2x2 average pooling.
Decoder: d = sigmoid(logit) weights the x2 (nearest) upsampled decoder features.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class AttentionModule(nn.Module):
    def __init__(self, channels: int, groups: int = 2, norm_groups: int = 8) -> None:
        super().__init__()
        if channels % groups:
            raise ValueError(f"channels ({channels}) must be divisible by groups ({groups})")
        branch_channels = max(groups, channels // 2)
        self.branches = nn.ModuleList(
            nn.Conv2d(channels, branch_channels, 4, stride=2, padding=1, groups=groups, bias=False)
            for _ in range(4)
        )
        hidden = 4 * branch_channels
        self.norm = nn.GroupNorm(_fitting_groups(hidden, norm_groups), hidden)
        self.act = nn.ReLU(inplace=True)
        self.encoder_head = nn.Conv2d(hidden, 4 * channels, 1)
        self.decoder_head = nn.Conv2d(hidden, 4 * channels, 1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Returns (encoder logits, decoder logits), both [N, C, H, W]."""
        hidden = torch.cat([branch(x) for branch in self.branches], dim=1)
        hidden = self.act(self.norm(hidden))
        return self.shuffle(self.encoder_head(hidden)), self.shuffle(self.decoder_head(hidden))


def _fitting_groups(channels: int, wanted: int) -> int:
    groups = min(wanted, channels)
    while channels % groups:
        groups -= 1
    return groups


def window_softmax(attention: torch.Tensor) -> torch.Tensor:
    """Softmax over each non-overlapping 2x2 window, expanded back to full size."""
    weights = torch.exp(attention)
    window_sum = F.avg_pool2d(weights, 2) * 4.0
    return weights / F.interpolate(window_sum, scale_factor=2.0, mode="nearest")


class AttentionPool(nn.Module):
    """2x2 attention-weighted sum pooling; expects H and W even."""

    def forward(self, x: torch.Tensor, encoder_logits: torch.Tensor) -> torch.Tensor:
        # softmax weights w = e^a / sum_window e^a; sum(w x) = avg(e^a x) / avg(e^a).
        # a = sigmoid(.) lies in (0, 1), so e^a cannot overflow.
        weights = torch.exp(torch.sigmoid(encoder_logits))
        return F.avg_pool2d(weights * x, 2) / F.avg_pool2d(weights, 2)


class AttentionUnpool(nn.Module):
    """x2 nearest upsampling weighted by sigmoid(decoder logits)."""

    def forward(self, x: torch.Tensor, decoder_logits: torch.Tensor) -> torch.Tensor:
        upsampled = F.interpolate(x, scale_factor=2.0, mode="nearest")
        return upsampled * torch.sigmoid(decoder_logits)
