"""The cutout pipeline: one small module per stage; `runner.Pipeline` alone knows their order.

decode (codec) -> cap the long side (geometry) -> segment, with a second look at small objects
(sessions, zoom) -> ED trimap, with the backdrop's holes unknown (sessions, trimap, backdrop) ->
band matting at a reduced scale (band) -> mix with the segmenter's probability and rescale
(band, geometry) -> compose -> encode (codec). `Pipeline.infer` is the array-level part
(segment to rescale), `Pipeline.run` wraps it in decode, compose and encode.
"""
from . import band, codec, compose, geometry, trimap
from .config import PipelineConfig
from .options import CutoutOptions
from .runner import Inference, Pipeline, Result

__all__ = ["CutoutOptions", "Inference", "Pipeline", "PipelineConfig", "Result", "band", "codec",
           "compose", "geometry", "trimap"]
