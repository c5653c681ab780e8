"""MobileNetV2 encoder (Sandler et al., 2018) whose downsampling is AlphaNet attention pooling.

As in IndexNet/AlphaNet matting, every stride-2 step of MobileNetV2 becomes a stride-1 block
preceded by a 2x2 pooling guided by an attention module; the module's decoder map is kept for
the matching unpooling. The architecture is the classic stage table (expansion, channels,
repeats, downsample) decoded by one loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..layers import AttentionModule, AttentionPool, ConvNormAct

# (expansion t, channels c, repeats n, downsample before the stage) - MobileNetV2 Table 2.
MOBILENETV2_STAGES: tuple[tuple[int, int, int, bool], ...] = (
    (1, 16, 1, False),
    (6, 24, 2, True),
    (6, 32, 3, True),
    (6, 64, 4, True),
    (6, 96, 3, False),
    (6, 160, 3, True),
    (6, 320, 1, False),
)


def _make_divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


class InvertedResidual(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, expansion: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        layers: list[nn.Module] = []
        if expansion != 1:
            layers.append(ConvNormAct(in_channels, hidden, 1, act_layer=nn.ReLU6))
        layers += [
            ConvNormAct(hidden, hidden, 3, groups=hidden, act_layer=nn.ReLU6),
            ConvNormAct(hidden, out_channels, 1, act_layer=None),
        ]
        self.block = nn.Sequential(*layers)
        self.residual = in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.residual else self.block(x)


@dataclass
class EncoderOutput:
    skips: list[torch.Tensor]  # features before each pooling, finest first
    decoder_logits: list[torch.Tensor]  # attention logits for the matching unpooling
    bottleneck: torch.Tensor


class MobileNetV2Encoder(nn.Module):
    """4-channel (RGB + trimap) MobileNetV2 with attention pooling at each of its 5 downsamplings.

    Input H and W must be multiples of 32 (`size_multiple`).
    """

    size_multiple = 32

    def __init__(
        self,
        in_channels: int = 4,
        width_mult: float = 1.0,
        stages: tuple[tuple[int, int, int, bool], ...] = MOBILENETV2_STAGES,
    ) -> None:
        super().__init__()
        stem_channels = _make_divisible(32 * width_mult)
        self.stem = ConvNormAct(in_channels, stem_channels, 3, act_layer=nn.ReLU6)
        # Downsampling 1 follows the stem (the original stem conv has stride 2).
        self.attention = nn.ModuleList([AttentionModule(stem_channels)])
        self.pool = AttentionPool()
        self.stages = nn.ModuleList()
        self.downsample_before: list[bool] = []
        channels = stem_channels
        self.skip_channels = [stem_channels]
        for expansion, base_channels, repeats, downsample in stages:
            out_channels = _make_divisible(base_channels * width_mult)
            if downsample:
                self.attention.append(AttentionModule(channels))
                self.skip_channels.append(channels)
            blocks = [InvertedResidual(channels, out_channels, expansion)]
            blocks += [
                InvertedResidual(out_channels, out_channels, expansion) for _ in range(repeats - 1)
            ]
            self.stages.append(nn.Sequential(*blocks))
            self.downsample_before.append(downsample)
            channels = out_channels
        self.out_channels = channels

    def forward(self, x: torch.Tensor) -> EncoderOutput:
        x = self.stem(x)
        skips: list[torch.Tensor] = []
        decoder_logits: list[torch.Tensor] = []
        attention_modules = iter(self.attention)
        x = self._down(x, next(attention_modules), skips, decoder_logits)
        for stage, downsample in zip(self.stages, self.downsample_before, strict=True):
            if downsample:
                x = self._down(x, next(attention_modules), skips, decoder_logits)
            x = stage(x)
        return EncoderOutput(skips, decoder_logits, x)

    def _down(
        self,
        x: torch.Tensor,
        attention: nn.Module,
        skips: list[torch.Tensor],
        decoder_logits: list[torch.Tensor],
    ) -> torch.Tensor:
        encoder_logit, decoder_logit = attention(x)
        skips.append(x)
        decoder_logits.append(decoder_logit)
        return self.pool(x, encoder_logit)
