"""Typed configs of the three stages; one object carries each model's architecture and its
preprocessing facts, and is written beside the exported graph (models/spec.json)."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from ..layers import EDTrimap
from .deeplabv3plus import DeepLabV3Plus
from .matting import AttentionMattingNet

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class SegmenterConfig(BaseModel):
    encoder: Literal["resnet18", "efficientnet_lite0", "efficientnet_lite1",
                     "efficientnet_lite2"] = "resnet18"
    output_stride: int = 16
    decoder_channels: int = 128
    atrous_rates: tuple[int, ...] = (3, 6, 9)
    input_size: int = Field(320, description="long side the service resizes to")
    flip_average: bool = Field(
        False, description="the exported graph also segments the mirrored image and averages "
        "the two probabilities (test-time flip): steadier edges for a second pass of the net")
    size_multiple: int = 32
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


class TrimapConfig(BaseModel):
    # A narrow band: our matting net beats the segmenter's mask near the edge, not deep inside
    # the object (docs/training.md, "The unknown band's width").
    erode_rate: float = 0.01
    dilate_rate: float = 0.015
    max_radius: int = 24
    threshold: float = 0.5


class MattingConfig(BaseModel):
    width_mult: float = 1.0
    decoder_channels: tuple[int, ...] = (96, 64, 32, 24, 16)
    bottleneck_channels: int = 160
    size_multiple: int = 32
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD


def build_segmenter(config: SegmenterConfig) -> DeepLabV3Plus:
    return DeepLabV3Plus(config.output_stride, config.decoder_channels, config.atrous_rates,
                        config.encoder)


def build_trimap(config: TrimapConfig) -> EDTrimap:
    return EDTrimap(config.erode_rate, config.dilate_rate, config.max_radius, config.threshold)


def build_matting(config: MattingConfig) -> AttentionMattingNet:
    return AttentionMattingNet(
        config.width_mult, config.decoder_channels, config.bottleneck_channels
    )
