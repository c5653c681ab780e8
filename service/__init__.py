"""cutout: CPU-first background removal over HTTP (AlphaNet: segmentation, ED trimap, matting).

The serving code runs exported ONNX graphs with ONNX Runtime; it never imports torch.
"""
from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("cutout")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+source"
