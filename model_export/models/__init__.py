from .deeplabv3plus import DeepLabV3Plus
from .matting import AttentionMattingNet, fuse_with_trimap
from .config import SegmenterConfig, MattingConfig, TrimapConfig, build_segmenter, build_matting, build_trimap

__all__ = [
    "DeepLabV3Plus",
    "AttentionMattingNet",
    "fuse_with_trimap",
    "SegmenterConfig",
    "MattingConfig",
    "TrimapConfig",
    "build_segmenter",
    "build_matting",
    "build_trimap",
]
