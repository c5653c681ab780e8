"""What a deployment chooses about the pipeline: declared once, here.

`service.config.Settings` inherits these fields (so each is also a `CUTOUT_<NAME>` variable);
benchmarks, the evaluation and tests build a `PipelineConfig` directly. What belongs to the
models (normalisation, the segmenter's side, the ED rates, how the nets' answers are combined)
is in the model folder's spec.json instead (spec.py).
"""
from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ..bundled_models import bundled_model_dir
from .codec import EncodeConfig
from .sessions import RuntimeConfig


class PipelineConfig(BaseModel):
    model_config = ConfigDict(frozen=True)

    model_dir: Path = Field(  # None: _model_dir fills it in, wherever cutout runs
        None, validate_default=True, description="folder with spec.json and the graphs "
        "(default: the bundled models, found from the installed package)")
    segmenter_spec: Path | None = Field(
        None, description="spec file (JSON) of another ONNX segmenter to use instead of the "
        "folder's: `file` (relative to the spec file), optional `input`, `output`, "
        "`input_size`, `size_multiple`, `mean`, `std`, `resize`, `activation` (README)")
    threads: int | None = Field(None, ge=1, le=64, description="ONNX Runtime intra-op threads "
                                "per worker (default: CPU cores / workers)")
    ort_arena_shrinkage: bool = Field(
        True, description="after each matting inference its arena gives back the memory it "
        "no longer uses, so a worker's memory has a ceiling whatever image sizes come (off: it "
        "keeps buffers for every input shape it has seen; docs/reliability.md)")
    max_pixels: int = Field(50_000_000, gt=0, le=170_000_000,
                            description="decoded pixel limit, checked on the header (413)")
    max_inference_side: int = Field(1500, ge=64, le=8192, description="long side the models "
                                    "see; larger inputs are resized once, the matte rescaled")
    matting_side: int = Field(512, ge=0, le=8192, description="long side at which the band is "
                              "matted (0: the inference size); the matte is brought back up "
                              "(docs/performance.md)")
    foreground_estimation: bool = Field(
        True, description="outputs with colour (rgba, backgrounds, canvas, zip) get the "
        "object's estimated colour in the soft edge, where the photo's holds the old backdrop "
        "(false: the photo's colour; docs/performance.md)")
    png_compression: int = Field(1, ge=0, le=9, description="zlib level of PNG answers "
                                 "(docs/performance.md: 1 is the fastest for a size within "
                                 "3 % of level 2's)")
    jpeg_quality: int = Field(90, ge=1, le=100, description="quality of JPEG answers")
    webp_quality: int = Field(90, ge=1, le=100, description="quality of lossy WebP answers")
    webp_method: int = Field(2, ge=0, le=6, description="WebP effort (0 fast - 6 small)")
    webp_lossless: bool = Field(False, description="lossless WebP answers")

    @field_validator("model_dir", mode="before")
    @classmethod
    def _model_dir(cls, value: object) -> object:
        return bundled_model_dir() if value is None or value == "" else value

    @field_validator("model_dir", "segmenter_spec")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    def runtime(self) -> RuntimeConfig:
        """The ONNX Runtime options of this config's sessions (threads resolved: one when
        unset; `Settings.pipeline_config` resolves them from the cores and workers)."""
        return RuntimeConfig(threads=self.threads or 1, arena_shrinkage=self.ort_arena_shrinkage)

    def encoding(self) -> EncodeConfig:
        return EncodeConfig(self.png_compression, self.jpeg_quality, self.webp_quality,
                            self.webp_method, self.webp_lossless)
