"""The model folder's spec.json (written by `python -m model_export.export`) as typed objects.

Also the description of an external, pluggable segmenter: the same fields, given by settings.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from ..errors import ModelFolderError

SPEC_NAME = "spec.json"
EXPORT_HINT = (
    "export one with `python -m model_export.export --out {dir}` (trained checkpoints) or "
    "`python -m model_export.export --random --out {dir}` (untrained, for trials), "
    "or point CUTOUT_MODEL_DIR / `cutout serve --model-dir` at a folder that has one"
)


class _Stage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    file: str
    input: str
    output: str


class SegmenterSpec(_Stage):
    """A segmenter graph: RGB in, foreground probability (or logit) out. An external segmenter
    may leave its input / output names out (its first ones are used)."""

    input: str | None = None  # type: ignore[assignment]
    output: str | None = None  # type: ignore[assignment]

    input_size: int = Field(320, gt=0, description="long (or square) side the image is resized to")
    size_multiple: int = Field(32, gt=0)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)
    resize: Literal["long_side", "square"] = Field(
        "long_side", description="long_side keeps the aspect ratio and pads; square stretches")
    activation: Literal["none", "sigmoid", "minmax"] = Field(
        "none", description="applied to the output to get a probability in [0, 1]")


class TrimapSpec(_Stage):
    erode_rate: float = 0.02
    dilate_rate: float = 0.02
    max_radius: int = 24
    unsure_band: tuple[float, float] | None = None  # inside the graph; recorded for reading


class MattingSpec(_Stage):
    size_multiple: int = Field(32, gt=0)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str
    segmenter: SegmenterSpec
    trimap: TrimapSpec
    matting: MattingSpec


def load_spec(model_dir: Path) -> ModelSpec:
    """Read and check `model_dir/spec.json` and that the graphs it names exist."""
    model_dir = Path(model_dir)
    path = model_dir / SPEC_NAME
    if not path.is_file():
        raise ModelFolderError(
            f"model folder {str(model_dir)!r} has no {SPEC_NAME}: "
            + EXPORT_HINT.format(dir=model_dir))
    try:
        spec = ModelSpec.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as exc:
        raise ModelFolderError(f"{path} is not a valid model spec: {exc}") from exc
    for stage in (spec.segmenter, spec.trimap, spec.matting):
        if not (model_dir / stage.file).is_file():
            raise ModelFolderError(
                f"{path} names {stage.file!r}, which is missing from {str(model_dir)!r}: "
                + EXPORT_HINT.format(dir=model_dir))
    return spec
