from .attention import AttentionModule, AttentionPool, AttentionUnpool
from .conv_norm_act import ConvNormAct, SeparableConvNormAct, set_shift_only
from .morphology import EDTrimap, box_radius, dilate, erode

__all__ = [
    "AttentionModule",
    "AttentionPool",
    "AttentionUnpool",
    "ConvNormAct",
    "EDTrimap",
    "SeparableConvNormAct",
    "box_radius",
    "dilate",
    "erode",
    "set_shift_only",
]
