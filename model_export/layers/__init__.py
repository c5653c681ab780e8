from .conv_norm_act import ConvNormAct, SeparableConvNormAct
from .morphology import EDTrimap, box_radius, dilate, erode
from .attention import AttentionModule, AttentionPool, AttentionUnpool

__all__ = [
    "ConvNormAct",
    "SeparableConvNormAct",
    "EDTrimap",
    "box_radius",
    "dilate",
    "erode",
    "AttentionModule",
    "AttentionPool",
    "AttentionUnpool",
]
