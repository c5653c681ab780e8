"""Settings: the only reader of the environment. Every knob is typed, has a default, and can be
set as CUTOUT_<NAME> (e.g. CUTOUT_WORKERS=2) or by `cutout serve` flags; bad values fail at
start-up."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .pipeline import PipelineConfig
from .pipeline.spec import SegmenterSpec

DEFAULT_MODEL_DIR = Path("models")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUTOUT_", env_file=None, extra="ignore",
                                      frozen=True)

    # Server
    host: str = Field("127.0.0.1", description="address `cutout serve` binds")
    port: int = Field(8000, ge=0, le=65535, description="port `cutout serve` binds")
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Models
    model_dir: Path = Field(DEFAULT_MODEL_DIR, description="folder with spec.json and the graphs")
    segmenter_path: Path | None = Field(
        None, description="another ONNX segmenter to use instead of the folder's")
    segmenter_input_size: int = Field(320, gt=0, description="external segmenter: input side")
    segmenter_input_name: str | None = Field(None, description="external segmenter: input name "
                                             "(default: its first input)")
    segmenter_output_name: str | None = Field(None, description="external segmenter: output "
                                              "name (default: its first output)")
    segmenter_mean: tuple[float, float, float] = Field((0.485, 0.456, 0.406))
    segmenter_std: tuple[float, float, float] = Field((0.229, 0.224, 0.225))
    segmenter_size_multiple: int = Field(32, gt=0)
    segmenter_resize: Literal["long_side", "square"] = Field(
        "long_side", description="external segmenter: keep aspect (pad) or stretch to a square")
    segmenter_activation: Literal["none", "sigmoid", "minmax"] = Field(
        "none", description="external segmenter: turn its output into a probability")

    # Workers and queue
    workers: int = Field(1, ge=1, le=64, description="worker processes")
    threads: int | None = Field(None, ge=1, le=64, description="ONNX Runtime intra-op threads "
                                "per worker (default: CPU cores / workers)")
    queue_size: int = Field(8, ge=0, le=10_000, description="requests waiting for a worker; "
                            "beyond it 503 + Retry-After")
    request_timeout_s: float = Field(30.0, gt=0, description="deadline per request (504)")
    kill_grace_s: float = Field(2.0, ge=0, description="time a worker gets to abort after a "
                                "deadline before it is killed")
    retry_after_s: int = Field(1, ge=0, description="Retry-After of 503 answers")
    start_timeout_s: float = Field(300.0, gt=0, description="worker set-up + warm-up limit")
    warm_up: bool = Field(True, description="run a warm-up cutout before a worker is ready")
    ort_mem_arena: bool = Field(True, description="ONNX Runtime CPU memory arena")
    ort_spinning: bool = Field(True, description="ONNX Runtime intra-op thread spinning")

    # Limits
    max_body_bytes: int = Field(25 * 1024 * 1024, gt=0, description="request body limit (413)")
    max_pixels: int = Field(50_000_000, gt=0, le=170_000_000,
                            description="decoded pixel limit, checked on the header (413)")

    # Pipeline
    max_inference_side: int = Field(1500, ge=64, le=8192, description="long side the models "
                                    "see; larger inputs are resized once, the matte rescaled")
    matting: Literal["band", "dense"] = Field("band", description="band: matte only the "
                                              "trimap's unknown band, in tiles")
    tile_size: int = Field(320, gt=0, description="matting tile side (multiple of 32)")
    tile_margin: int = Field(32, ge=0, description="context around each tile's written centre")
    tile_batch: int = Field(1, ge=1, le=64, description="tiles per matting inference")
    png_compression: int = Field(2, ge=0, le=9, description="zlib level of PNG answers "
                                 "(measured: 1-2 cost the same, 4 is 10 % smaller and 40 % slower)")
    jpeg_quality: int = Field(90, ge=1, le=100)
    webp_quality: int = Field(90, ge=1, le=100)
    webp_method: int = Field(2, ge=0, le=6, description="WebP effort (0 fast - 6 small)")
    webp_lossless: bool = False

    @field_validator("model_dir", "segmenter_path")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return None if value is None else value.expanduser()

    @model_validator(mode="after")
    def _tiles(self) -> Settings:
        if self.tile_size % 32:
            raise ValueError(f"tile_size must be a multiple of 32 (got {self.tile_size})")
        if 2 * self.tile_margin >= self.tile_size:
            raise ValueError("tile_margin must be under half of tile_size")
        return self

    @property
    def threads_per_worker(self) -> int:
        if self.threads is not None:
            return self.threads
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, (cores or 1) // self.workers)

    def external_segmenter(self) -> SegmenterSpec | None:
        if self.segmenter_path is None:
            return None
        return SegmenterSpec(
            file=str(self.segmenter_path.resolve()), input=self.segmenter_input_name,
            output=self.segmenter_output_name, input_size=self.segmenter_input_size,
            size_multiple=self.segmenter_size_multiple, mean=self.segmenter_mean,
            std=self.segmenter_std, resize=self.segmenter_resize,
            activation=self.segmenter_activation)

    def pipeline_config(self) -> PipelineConfig:
        return PipelineConfig(
            model_dir=self.model_dir.resolve(), external_segmenter=self.external_segmenter(),
            threads=self.threads_per_worker, mem_arena=self.ort_mem_arena,
            spinning=self.ort_spinning, max_pixels=self.max_pixels,
            max_inference_side=self.max_inference_side, matting=self.matting,
            tile_size=self.tile_size, tile_margin=self.tile_margin, tile_batch=self.tile_batch,
            png_compression=self.png_compression, jpeg_quality=self.jpeg_quality,
            webp_quality=self.webp_quality, webp_method=self.webp_method,
            webp_lossless=self.webp_lossless)
