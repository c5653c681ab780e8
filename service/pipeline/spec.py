"""The model folder's spec.json (written by `python -m model_export.export`) as typed objects.

What belongs to the models rather than to a deployment lives here: the graphs and their
normalisation, the ED layer's rates (inside its graph, recorded), and the `inference` block
(how the pipeline combines the nets' answers, measured per model version). An external,
pluggable segmenter is described by a spec file of its own with the segmenter's fields
(`CUTOUT_SEGMENTER_SPEC`, `load_segmenter_spec`).
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
    may leave its input / output names out (its first ones are used), and the fields with
    defaults (ImageNet's normalisation, a 320 px long side padded to 32)."""

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
    """The ED layer graph. Its rates are inside the graph (the export's defaults,
    model_export/models/config.py); recorded here for reading."""

    erode_rate: float
    dilate_rate: float
    max_radius: int


class MattingSpec(_Stage):
    size_multiple: int = Field(32, gt=0)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


class InferenceSpec(BaseModel):
    """How the pipeline combines these nets, measured per model version (docs/performance.md).
    A spec.json without this block (exports before it existed) gets these defaults, which are
    the values those models were measured with."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    matting_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="weight of the matting net's alpha in the unknown band; "
        "the rest is the segmenter's probability (1: the matting net alone)")
    backdrop_distance: float = Field(
        6.0, ge=0.0, le=100.0, description="known-foreground pixels within this CIELAB distance "
        "of a plain backdrop's colour go to the matting net as unknown (0: off); the matting net "
        "must be trained for it (docs/training.md)")
    zoom_min_gain: float = Field(
        1.15, ge=0.0, le=16.0, description="segment a small object a second time, cut from the "
        "frame, when that enlarges it at least this much (0: never)")


class ModelSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    version: str
    segmenter: SegmenterSpec
    trimap: TrimapSpec
    matting: MattingSpec
    inference: InferenceSpec = InferenceSpec()

    def with_segmenter_side(self, side: int | None) -> ModelSpec:
        """This spec with the segmenter (and the ED layer) working at `side` (None: as is);
        for measuring other sides (`evaluate --input-size`)."""
        if side is None:
            return self
        return self.model_copy(update={
            "segmenter": self.segmenter.model_copy(update={"input_size": side})})

    def with_inference(self, **fields: object) -> ModelSpec:
        """This spec with other inference values (checked), for measuring them."""
        inference = InferenceSpec.model_validate({**self.inference.model_dump(), **fields})
        return self.model_copy(update={"inference": inference})


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


def load_segmenter_spec(path: Path) -> SegmenterSpec:
    """An external segmenter's spec file: a JSON object with `SegmenterSpec`'s fields, its
    `file` relative to the spec file's folder (or absolute). Returned with `file` absolute."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ModelFolderError(f"segmenter spec {str(path)!r} does not exist")
    try:
        spec = SegmenterSpec.model_validate(json.loads(path.read_text()))
    except (ValueError, ValidationError) as exc:
        raise ModelFolderError(f"{path} is not a valid segmenter spec: {exc}") from exc
    graph = (path.parent / spec.file).resolve()
    if not graph.is_file():
        raise ModelFolderError(f"{path} names {spec.file!r}, which does not exist ({graph})")
    return spec.model_copy(update={"file": str(graph)})
