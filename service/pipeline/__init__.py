"""The cutout pipeline: one small module per stage; `runner.Pipeline` alone knows their order.

decode (codec) -> cap the long side (geometry) -> segment (sessions) -> ED trimap (sessions,
trimap) -> band-only matting (band) -> rescale alpha (geometry) -> compose -> encode (codec).
"""
from . import band, codec, compose, geometry, trimap
from .options import CutoutOptions
from .runner import Pipeline, PipelineConfig, Result

__all__ = ["CutoutOptions", "Pipeline", "PipelineConfig", "Result", "band", "codec", "compose",
           "geometry", "trimap"]
