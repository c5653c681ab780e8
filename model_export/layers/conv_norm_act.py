"""The conv -> norm -> activation unit every model here is built from (as timm's ConvNormAct)."""
from __future__ import annotations

from torch import nn


class ConvNormAct(nn.Sequential):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        dilation: int = 1,
        groups: int = 1,
        norm_layer: type[nn.Module] | None = nn.BatchNorm2d,
        act_layer: type[nn.Module] | None = nn.ReLU,
    ) -> None:
        padding = dilation * (kernel_size - 1) // 2
        layers: list[nn.Module] = [
            nn.Conv2d(
                in_channels,
                out_channels,
                kernel_size,
                stride=stride,
                padding=padding,
                dilation=dilation,
                groups=groups,
                bias=norm_layer is None,
            )
        ]
        if norm_layer is not None:
            layers.append(norm_layer(out_channels))
        if act_layer is not None:
            layers.append(
                act_layer(inplace=True) if act_layer in (nn.ReLU, nn.ReLU6) else act_layer()
            )
        super().__init__(*layers)


class SeparableConvNormAct(nn.Sequential):
    """Depthwise k x k then pointwise 1 x 1, one norm+act after each."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        dilation: int = 1,
        act_layer: type[nn.Module] = nn.ReLU,
    ) -> None:
        super().__init__(
            ConvNormAct(in_channels, in_channels, kernel_size, dilation=dilation,
                        groups=in_channels, act_layer=act_layer),
            ConvNormAct(in_channels, out_channels, 1, act_layer=act_layer),
        )


def set_shift_only(norm: nn.BatchNorm2d, shift) -> None:
    """Make `norm` add `shift` and nothing else in eval mode: the state a BatchNorm is left in
    once folded into its conv, kept as a module so state-dict keys stay those of the net."""
    norm.running_mean.zero_()
    norm.running_var.fill_(1.0 - norm.eps)
    norm.weight.data.fill_(1.0)
    norm.bias.data.copy_(shift)
