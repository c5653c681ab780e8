"""DeepLabV3+ (Chen et al., 2018): encoder -> ASPP decoder -> head. The encoder is ResNet-18 (the
AlphaNet paper's) or an EfficientNet-Lite (ImageNet-pretrained), by name
(`SEGMENTATION_ENCODERS`)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..encoders import SEGMENTATION_ENCODERS, EfficientNetLiteEncoder
from ..encoders.efficientnet_lite import deepen
from ..layers import ConvNormAct, SeparableConvNormAct


class ASPPPooling(nn.Module):
    """Image-level branch: global average, 1x1 conv, broadcast back to the map's size."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        # No BatchNorm on a 1x1 map: it breaks at batch size 1.
        self.project = ConvNormAct(in_channels, out_channels, 1, norm_layer=None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.project(x.mean(dim=(2, 3), keepdim=True))
        return pooled.expand(-1, -1, x.shape[2], x.shape[3])


class ASPP(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, rates: tuple[int, ...]) -> None:
        super().__init__()
        branches: list[nn.Module] = [ConvNormAct(in_channels, out_channels, 1)]
        branches += [SeparableConvNormAct(in_channels, out_channels, 3, dilation=r) for r in rates]
        branches.append(ASPPPooling(in_channels, out_channels))
        self.branches = nn.ModuleList(branches)
        self.project = ConvNormAct(out_channels * len(branches), out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(torch.cat([branch(x) for branch in self.branches], dim=1))


class DeepLabV3PlusDecoder(nn.Module):
    """ASPP on the deepest map, fused with the stride-4 map, output at stride 4. The ASPP output
    is resized to the stride-4 map's size, so any encoder output stride (8, 16, 32) fits
    without being told."""

    def __init__(
        self,
        encoder_channels: list[int],
        channels: int = 128,
        low_level_channels: int = 48,
        rates: tuple[int, ...] = (3, 6, 9),
    ) -> None:
        super().__init__()
        self.aspp = ASPP(encoder_channels[-1], channels, rates)
        self.low_level = ConvNormAct(encoder_channels[1], low_level_channels, 1)
        self.fuse = nn.Sequential(
            SeparableConvNormAct(channels + low_level_channels, channels, 3),
            SeparableConvNormAct(channels, channels, 3),
        )
        self.out_channels = channels

    def forward(self, features: list[torch.Tensor]) -> torch.Tensor:
        low = self.low_level(features[1])  # stride 4
        high = F.interpolate(self.aspp(features[-1]), size=low.shape[2:], mode="bilinear",
                             align_corners=False)
        return self.fuse(torch.cat([high, low], dim=1))


class SegmentationHead(nn.Sequential):
    def __init__(self, in_channels: int, out_channels: int = 1) -> None:
        super().__init__(nn.Conv2d(in_channels, out_channels, 3, padding=1))


class DeepLabV3Plus(nn.Module):
    """Foreground logit [N,1,H,W] for an ImageNet-normalised RGB input whose sides are multiples
    of 32 (`size_multiple`)."""

    size_multiple = 32

    def __init__(
        self,
        output_stride: int = 16,
        decoder_channels: int = 128,
        atrous_rates: tuple[int, ...] = (3, 6, 9),
        encoder: str = "resnet18",
    ) -> None:
        super().__init__()
        if encoder not in SEGMENTATION_ENCODERS:
            raise ValueError(f"unknown encoder {encoder!r}: one of {sorted(SEGMENTATION_ENCODERS)}")
        self.encoder = SEGMENTATION_ENCODERS[encoder](output_stride)
        self.decoder = DeepLabV3PlusDecoder(
            self.encoder.out_channels, decoder_channels, rates=atrous_rates
        )
        self.head = SegmentationHead(decoder_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.head(self.decoder(self.encoder(x)))
        return F.interpolate(logits, size=x.shape[2:], mode="bilinear", align_corners=False)


def grow_segmenter(source: DeepLabV3Plus, target: DeepLabV3Plus) -> None:
    """`target`, whose EfficientNet-Lite encoder is a deeper variant of `source`'s (Lite0 ->
    Lite1), computes exactly what the trained `source` computes: encoder deepened
    (`efficientnet_lite.deepen`), decoder and head copied."""
    if not (isinstance(source.encoder, EfficientNetLiteEncoder)
            and isinstance(target.encoder, EfficientNetLiteEncoder)):
        raise ValueError("only an EfficientNet-Lite segmenter grows into a deeper one")
    deepen(source.encoder, target.encoder)
    target.decoder.load_state_dict(source.decoder.state_dict())
    target.head.load_state_dict(source.head.state_dict())
