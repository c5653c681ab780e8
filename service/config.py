"""Settings: the only reader of the environment. Every knob is typed, has a default, and can be
set as CUTOUT_<NAME> (e.g. CUTOUT_WORKERS=2) or by `cutout serve` flags; bad values fail at
start-up."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .bundled_models import bundled_model_dir
from .pipeline import PipelineConfig
from .pipeline.spec import SegmenterSpec


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CUTOUT_", env_file=None, extra="ignore",
                                      frozen=True)

    # Server
    host: str = Field("127.0.0.1", description="address `cutout serve` binds")
    port: int = Field(8000, ge=0, le=65535, description="port `cutout serve` binds")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="`debug`, `info`, `warning` or `error`")

    # Models
    model_dir: Path = Field(  # None: _model_dir fills it in, wherever cutout runs
        None, validate_default=True, description="folder with spec.json and the graphs "
        "(default: the bundled models, found from the installed package)")
    segmenter_side: int | None = Field(
        None, ge=64, le=2048, description="long side the bundled segmenter works at (default: "
        "spec.json's; smaller is faster and coarser, docs/performance.md)")
    segmenter_path: Path | None = Field(
        None, description="another ONNX segmenter to use instead of the folder's")
    segmenter_input_size: int = Field(320, gt=0, description="external segmenter: input side")
    segmenter_input_name: str | None = Field(None, description="external segmenter: input name "
                                             "(default: its first input)")
    segmenter_output_name: str | None = Field(None, description="external segmenter: output "
                                              "name (default: its first output)")
    segmenter_mean: tuple[float, float, float] = Field(
        (0.485, 0.456, 0.406), description="external segmenter: mean of RGB / 255 (ImageNet's)")
    segmenter_std: tuple[float, float, float] = Field(
        (0.229, 0.224, 0.225), description="external segmenter: std of RGB / 255 (ImageNet's)")
    segmenter_size_multiple: int = Field(32, gt=0, description="external segmenter: its input "
                                         "is padded to a multiple of this")
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
    worker_start_method: Literal["forkserver", "spawn"] = Field(
        "forkserver", description="forkserver: workers fork from a process that has imported "
        "their modules (a replacement is ready 1-2 s sooner); spawn: a fresh interpreter each")
    ort_mem_arena: bool = Field(True, description="ONNX Runtime CPU memory arena")
    ort_arena_shrinkage: bool = Field(
        True, description="after each matting inference its arena gives back the memory it "
        "no longer uses, so a worker's memory has a ceiling whatever image sizes come (off: it "
        "keeps buffers for every input shape it has seen; docs/reliability.md)")
    ort_spinning: bool = Field(False, description="ONNX Runtime intra-op thread spinning (off: "
                               "measured faster on shared cores, docs/performance.md)")

    # Limits
    max_body_bytes: int = Field(25 * 1024 * 1024, gt=0, description="request body limit (413)")
    max_pixels: int = Field(50_000_000, gt=0, le=170_000_000,
                            description="decoded pixel limit, checked on the header (413)")
    worker_mmap_threshold_kib: int = Field(
        32768, ge=0, description="glibc mmap threshold fixed in each worker: buffers up to it "
        "are reused from the heap, larger ones (images over ~8 MP) are mapped and given back "
        "when freed, and the heap's free top is trimmed (docs/reliability.md); 0 keeps glibc's "
        "self-adjusting default")
    max_frames: int = Field(1000, ge=1, description="frames / pages an animated or multi-page "
                            "input may hold (413); only the first is used")

    # Security
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field((), description="accepted X-Api-Key values (JSON "
                                            "list or comma-separated); none: no key needed")
    api_keys_file: Path | None = Field(None, description="file with one accepted key per line "
                                       "(# comments and blank lines ignored); adds to api_keys")
    metrics_require_key: bool = Field(False, description="/metrics needs an API key too (when "
                                      "keys are configured)")
    image_url_enabled: bool = Field(False, description="let /v1.0/removebg fetch `image_url` "
                                    "(public http(s) addresses only)")
    image_url_timeout_s: float = Field(10.0, gt=0, description="time limit for fetching an "
                                       "image_url, redirects included")
    image_url_max_bytes: int | None = Field(None, gt=0, description="size limit of a fetched "
                                            "image (default: max_body_bytes)")
    image_url_max_redirects: int = Field(3, ge=0, le=10, description="redirects followed (each "
                                         "one checked again)")
    image_url_allow_loopback: bool = Field(False, description="TESTS ONLY: also allow loopback "
                                           "addresses (127.0.0.0/8, ::1) for image_url")

    # Pipeline
    max_inference_side: int = Field(1500, ge=64, le=8192, description="long side the models "
                                    "see; larger inputs are resized once, the matte rescaled")
    zoom_min_gain: float = Field(
        1.15, ge=0.0, le=16.0, description="segment a small object a second time, cut from the "
        "frame, when that enlarges it at least this much (0: never; docs/performance.md)")
    zoom_margin: float = Field(0.3, ge=0.0, le=4.0, description="context around the object's "
                               "box for that second pass (fraction of the box's long side)")
    zoom_blend: float = Field(0.5, ge=0.0, le=1.0, description="weight of the second pass "
                              "inside the box (the rest is the first pass)")
    segmenter_flip: bool = Field(False, description="also segment the mirror image and average "
                                 "the two (twice the segmenter's cost; docs/performance.md)")
    backdrop_distance: float = Field(
        6.0, ge=0.0, le=100.0, description="known-foreground pixels within this CIELAB distance "
        "of the backdrop's colour go to the matting net as unknown (0: off; opens see-through "
        "holes on plain backdrops; the shipped matting net is trained for 6, docs/training.md)")
    matting_flip: bool = Field(False, description="also matte the mirrored band and average the "
                               "two (twice the matting net's cost; docs/performance.md)")
    matting: Literal["band", "dense", "auto"] = Field(
        "auto", description="band: matte only the trimap's unknown band, in tiles; dense: one "
        "pass over the band's box; auto: whichever feeds the net fewer pixels")
    tile_size: int = Field(128, gt=0, description="matting tile side (multiple of 32)")
    tile_margin: int = Field(16, ge=0, description="context around each tile's written centre")
    tile_batch: int = Field(4, ge=1, le=64, description="tiles per matting inference")
    tile_placement: Literal["grid", "band"] = Field(
        "band", description="grid: a tile per grid cell touching the band; band: tiles centred "
        "on the band, fewer of them (docs/performance.md)")
    matting_side: int = Field(512, ge=0, le=8192, description="long side at which the band is "
                              "matted (0: the inference size); the matte is brought back up")
    matting_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="weight of the matting net's alpha in the unknown band; "
        "the rest is the segmenter's probability (1: the matting net alone; docs/performance.md)")
    matting_refine: Literal["none", "guided"] = Field(
        "guided", description="how a reduced-scale matte returns to the inference size: "
        "bilinear, or a guided filter with the full-size image as guide")
    guided_radius: int = Field(2, ge=1, le=64, description="guided filter radius (px at the "
                               "matting scale)")
    guided_eps: float = Field(1e-3, gt=0, description="guided filter regularisation")
    foreground_estimation: bool = Field(
        True, description="outputs with colour (rgba, backgrounds, canvas, zip) get the "
        "object's estimated colour in the soft edge, where the photo's holds the old backdrop "
        "(false: the photo's colour; docs/performance.md)")
    ort_graph_optimization: Literal["disable", "basic", "extended", "all"] = Field(
        "all", description="ONNX Runtime graph optimisation level")
    png_compression: int = Field(1, ge=0, le=9, description="zlib level of PNG answers "
                                 "(docs/performance.md: 1 with the 'up' filter is the fastest "
                                 "for a size within 3 % of level 2's)")
    png_filter: Literal["adaptive", "none", "sub", "up", "avg", "paeth"] = Field(
        "up", description="PNG row filter: 'adaptive' tries all five per row (libpng's default, "
        "about 2x the encode time for the same size on cutouts)")
    jpeg_quality: int = Field(90, ge=1, le=100, description="quality of JPEG answers")
    webp_quality: int = Field(90, ge=1, le=100, description="quality of lossy WebP answers")
    webp_method: int = Field(2, ge=0, le=6, description="WebP effort (0 fast - 6 small)")
    webp_lossless: bool = Field(False, description="lossless WebP answers")

    @field_validator("api_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        """CUTOUT_API_KEYS='["k1", "k2"]' or 'k1,k2'."""
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [key.strip() for key in text.split(",") if key.strip()]
        return value

    @field_validator("api_keys_file")
    @classmethod
    def _key_file(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"api_keys_file {str(value)!r} does not exist")
        return None if value is None else value.expanduser()

    @field_validator("model_dir", mode="before")
    @classmethod
    def _model_dir(cls, value: object) -> object:
        return bundled_model_dir() if value is None or value == "" else value

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
            segmenter_side=self.segmenter_side,
            threads=self.threads_per_worker, mem_arena=self.ort_mem_arena,
            arena_shrinkage=self.ort_arena_shrinkage,
            spinning=self.ort_spinning, max_pixels=self.max_pixels,
            max_inference_side=self.max_inference_side, zoom_min_gain=self.zoom_min_gain,
            zoom_margin=self.zoom_margin, zoom_blend=self.zoom_blend,
            segmenter_flip=self.segmenter_flip, matting_flip=self.matting_flip,
            backdrop_distance=self.backdrop_distance,
            matting=self.matting,
            tile_size=self.tile_size, tile_margin=self.tile_margin, tile_batch=self.tile_batch,
            tile_placement=self.tile_placement, matting_side=self.matting_side,
            matting_weight=self.matting_weight,
            matting_refine=self.matting_refine, guided_radius=self.guided_radius,
            guided_eps=self.guided_eps, foreground_estimation=self.foreground_estimation,
            graph_optimization=self.ort_graph_optimization,
            png_compression=self.png_compression, png_filter=self.png_filter,
            jpeg_quality=self.jpeg_quality,
            webp_quality=self.webp_quality, webp_method=self.webp_method,
            webp_lossless=self.webp_lossless)
