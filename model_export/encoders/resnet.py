"""ResNet-18 encoder (He et al., 2016) with the segmentation_models_pytorch feature contract.

`forward` returns one feature map per stride [2, 4, 8, 16, 32] (the last ones dilated instead of
strided when output_stride < 32); `out_channels` lists their channels. No pretrained weights:
cutout trains its own.
"""
from __future__ import annotations

import torch
from torch import nn

from ..layers import ConvNormAct
from .stride import check_output_stride, stride_or_dilation

# (channels, blocks, stride) per stage: ResNet-18.
RESNET18_STAGES: tuple[tuple[int, int, int], ...] = (
    (64, 2, 1),
    (128, 2, 2),
    (256, 2, 2),
    (512, 2, 2),
)


class BasicBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, stride: int, dilation: int) -> None:
        super().__init__()
        self.conv1 = ConvNormAct(in_channels, out_channels, 3, stride=stride, dilation=dilation)
        self.conv2 = ConvNormAct(out_channels, out_channels, 3, dilation=dilation, act_layer=None)
        self.shortcut = (
            ConvNormAct(in_channels, out_channels, 1, stride=stride, act_layer=None)
            if stride != 1 or in_channels != out_channels
            else nn.Identity()
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.conv2(self.conv1(x)) + self.shortcut(x))


class ResNetEncoder(nn.Module):
    def __init__(
        self,
        stages: tuple[tuple[int, int, int], ...] = RESNET18_STAGES,
        in_channels: int = 3,
        output_stride: int = 16,
    ) -> None:
        super().__init__()
        check_output_stride(output_stride)
        self.stem = ConvNormAct(in_channels, 64, 7, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.stages = nn.ModuleList()
        stride_so_far, dilation, channels = 4, 1, 64
        for out_channels, blocks, stride in stages:
            stride, dilation, stride_so_far = stride_or_dilation(stride, stride_so_far,
                                                                 output_stride, dilation)
            layers = [BasicBlock(channels, out_channels, stride, dilation)]
            layers += [
                BasicBlock(out_channels, out_channels, 1, dilation) for _ in range(blocks - 1)
            ]
            self.stages.append(nn.Sequential(*layers))
            channels = out_channels
        self.out_channels = [64] + [s[0] for s in stages]
        self.output_stride = output_stride

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        features = [self.stem(x)]
        x = self.pool(features[0])
        for stage in self.stages:
            x = stage(x)
            features.append(x)
        return features


def resnet18_encoder(output_stride: int = 16) -> ResNetEncoder:
    return ResNetEncoder(RESNET18_STAGES, output_stride=output_stride)
