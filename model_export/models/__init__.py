from .config import (
    MattingConfig,
    SegmenterConfig,
    TrimapConfig,
    build_matting,
    build_segmenter,
    build_trimap,
)
from .deeplabv3plus import DeepLabV3Plus
from .matting import AttentionMattingNet, fuse_with_trimap

__all__ = [
    "AttentionMattingNet",
    "DeepLabV3Plus",
    "MattingConfig",
    "SegmenterConfig",
    "TrimapConfig",
    "build_matting",
    "build_segmenter",
    "build_trimap",
    "fuse_with_trimap",
]
