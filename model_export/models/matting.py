"""AlphaNet's matting net: RGB + trimap -> alpha, MobileNetV2 encoder with attention pooling,
decoder with attention unpooling, and trimap fusion so known regions keep 0 / 1."""
from __future__ import annotations

import torch
from torch import nn

from ..encoders import MobileNetV2Encoder
from ..layers import AttentionUnpool, ConvNormAct, SeparableConvNormAct


def fuse_with_trimap(raw_alpha: torch.Tensor, trimap: torch.Tensor) -> torch.Tensor:
    """Unknown (0.5) takes the prediction; known background/foreground stays 0/1 exactly."""
    unknown = (trimap > 0.25) & (trimap < 0.75)
    return torch.where(unknown, raw_alpha, (trimap >= 0.75).to(raw_alpha.dtype))


class DecoderStage(nn.Module):
    """Project to the skip's channels, attention-unpool x2, concatenate the skip, fuse."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.project = ConvNormAct(in_channels, skip_channels, 1)
        self.unpool = AttentionUnpool()
        self.fuse = SeparableConvNormAct(2 * skip_channels, out_channels, 5)

    def forward(
        self, x: torch.Tensor, skip: torch.Tensor, decoder_logits: torch.Tensor
    ) -> torch.Tensor:
        x = self.unpool(self.project(x), decoder_logits)
        return self.fuse(torch.cat([x, skip], dim=1))


class MattingDecoder(nn.Module):
    def __init__(
        self, bottleneck_channels: int, skip_channels: list[int], channels: list[int]
    ) -> None:
        super().__init__()
        # Deepest stage first.
        stages = []
        in_channels = bottleneck_channels
        for skip, out in zip(reversed(skip_channels), channels, strict=True):
            stages.append(DecoderStage(in_channels, skip, out))
            in_channels = out
        self.stages = nn.ModuleList(stages)
        self.out_channels = in_channels

    def forward(self, bottleneck: torch.Tensor, skips: list[torch.Tensor],
                decoder_logits: list[torch.Tensor]) -> torch.Tensor:
        x = bottleneck
        for stage, skip, logits in zip(
            self.stages, reversed(skips), reversed(decoder_logits), strict=True
        ):
            x = stage(x, skip, logits)
        return x


class AlphaHead(nn.Sequential):
    def __init__(self, in_channels: int) -> None:
        super().__init__(nn.Conv2d(in_channels, 1, 3, padding=1), nn.Sigmoid())


class AttentionMattingNet(nn.Module):
    """Input [N,4,H,W]: ImageNet-normalised RGB and the trimap (0 / 0.5 / 1) as channel 4.
    Output [N,1,H,W]: alpha in [0,1], fused with the trimap. H, W: multiples of 32."""

    size_multiple = 32

    def __init__(
        self,
        width_mult: float = 1.0,
        decoder_channels: tuple[int, ...] = (96, 64, 32, 24, 16),
        bottleneck_channels: int = 160,
    ) -> None:
        super().__init__()
        self.encoder = MobileNetV2Encoder(in_channels=4, width_mult=width_mult)
        self.bottleneck = ConvNormAct(self.encoder.out_channels, bottleneck_channels, 1)
        self.decoder = MattingDecoder(bottleneck_channels, self.encoder.skip_channels,
                                      list(decoder_channels))
        self.head = AlphaHead(self.decoder.out_channels)

    def forward_raw(self, x: torch.Tensor) -> torch.Tensor:
        """Alpha before trimap fusion (what the losses see)."""
        features = self.encoder(x)
        decoded = self.decoder(self.bottleneck(features.bottleneck), features.skips,
                               features.decoder_logits)
        return self.head(decoded)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return fuse_with_trimap(self.forward_raw(x), x[:, 3:4])
