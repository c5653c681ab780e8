"""Settings: the only reader of the environment. Every knob is typed, has a default, and can be
set as CUTOUT_<NAME> (e.g. CUTOUT_WORKERS=2) or by `cutout serve` flags; bad values fail at
start-up. The pipeline's settings are declared once, in `PipelineConfig`, and inherited here;
what belongs to the models is in their spec.json, not here."""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from .pipeline import PipelineConfig

_MODEL = "now the model's, in spec.json's `inference` block (README, models/spec.json)"
_SEGMENTER = "describe the segmenter in one spec file, CUTOUT_SEGMENTER_SPEC (README)"
_MEASURED = "fixed at its measured value (docs/performance.md, \"Retired settings\")"
# Settings that existed once: setting one fails at start-up with what replaced it, rather than
# being ignored silently.
RETIRED = {
    "segmenter_side": "the segmenter's working size is the model's, spec.json's `input_size`",
    **{f"segmenter_{name}": _SEGMENTER for name in (
        "path", "input_size", "input_name", "output_name", "mean", "std", "size_multiple",
        "resize", "activation")},
    "matting_weight": _MODEL, "backdrop_distance": _MODEL, "zoom_min_gain": _MODEL,
    **{name: _MEASURED for name in (
        "segmenter_flip", "matting_flip", "tile_placement", "zoom_margin", "zoom_blend",
        "matting", "tile_size", "tile_margin", "tile_batch", "matting_refine", "guided_radius",
        "guided_eps", "ort_graph_optimization", "ort_spinning", "ort_mem_arena", "png_filter")},
    "image_url_allow_loopback": "tests pass it to create_app; never a setting",
}


class Settings(BaseSettings, PipelineConfig):
    """The service's settings: the server, the worker pool, limits and security here, and the
    pipeline's (`PipelineConfig`: model folder, ONNX Runtime threads, sizes, output encoding)."""

    model_config = SettingsConfigDict(env_prefix="CUTOUT_", env_file=None, extra="ignore",
                                      frozen=True)

    # Server
    host: str = Field("127.0.0.1", description="address `cutout serve` binds")
    port: int = Field(8000, ge=0, le=65535, description="port `cutout serve` binds")
    log_level: Literal["debug", "info", "warning", "error"] = Field(
        "info", description="`debug`, `info`, `warning` or `error`")

    # Workers and queue
    workers: int = Field(1, ge=1, le=64, description="worker processes")
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

    # Limits
    max_body_bytes: int = Field(25 * 1024 * 1024, gt=0, description="request body limit (413)")
    worker_mmap_threshold_kib: int = Field(
        32768, ge=0, description="glibc mmap threshold fixed in each worker: buffers up to it "
        "are reused from the heap, larger ones (images over ~8 MP) are mapped and given back "
        "when freed, and the heap's free top is trimmed (docs/reliability.md); 0 keeps glibc's "
        "self-adjusting default")
    max_frames: int = Field(1000, ge=1, description="frames / pages an animated or multi-page "
                            "input may hold (413); only the first is used")

    # Security
    api_keys: Annotated[tuple[SecretStr, ...], NoDecode] = Field(
        (), description="accepted X-Api-Key values (JSON list or comma-separated); none: no key "
        "needed")
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

    @field_validator("segmenter_spec")
    @classmethod
    def _segmenter_spec(cls, value: Path | None) -> Path | None:
        if value is not None and not value.expanduser().is_file():
            raise ValueError(f"segmenter_spec {str(value)!r} does not exist")
        return value

    @model_validator(mode="before")
    @classmethod
    def _no_retired(cls, values: object) -> object:
        prefix = cls.model_config.get("env_prefix", "")
        given = [name for name in RETIRED if f"{prefix}{name}".upper() in os.environ
                 or (isinstance(values, dict) and name in values)]
        if given:
            raise ValueError("; ".join(f"{prefix}{name.upper()} was retired: {RETIRED[name]}"
                                       for name in given))
        return values

    @property
    def threads_per_worker(self) -> int:
        if self.threads is not None:
            return self.threads
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        return max(1, (cores or 1) // self.workers)

    def pipeline_config(self) -> PipelineConfig:
        """The pipeline's part of these settings, threads resolved and paths absolute."""
        fields = {name: getattr(self, name) for name in PipelineConfig.model_fields}
        fields.update(model_dir=self.model_dir.resolve(), threads=self.threads_per_worker,
                      segmenter_spec=self.segmenter_spec and self.segmenter_spec.resolve())
        return PipelineConfig(**fields)
