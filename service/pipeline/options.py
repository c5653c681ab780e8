"""What a caller can ask for: one validated, immutable options object per request.

Both HTTP routes (our own and the remove.bg-compatible one) and the CLI build it; the pipeline
reads it. Validation errors surface as 422.
"""
from __future__ import annotations

import re
from typing import Literal

from PIL import ImageColor
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Output = Literal["rgba", "alpha", "mask", "trimap"]
Format = Literal["png", "webp", "jpeg", "zip"]
RGBA = tuple[int, int, int, int]

_HEX = re.compile(r"[0-9a-fA-F]{3}|[0-9a-fA-F]{4}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8}")
_MARGIN = re.compile(r"(\d+(?:\.\d+)?)(px|%)?")
MAX_MARGIN_PX = 2000
MAX_MARGIN_PERCENT = 100.0


def parse_color(value: str) -> RGBA:
    """'81d4fa', '#81d4fa', '#81d4fa80', 'rgb(...)' or a CSS name -> (r, g, b, a)."""
    text = value.strip()
    if _HEX.fullmatch(text):
        text = "#" + text
    try:
        return tuple(ImageColor.getcolor(text, "RGBA"))  # type: ignore[return-value]
    except ValueError as exc:
        raise ValueError(f"unknown colour {value!r}: use hex like 81d4fa or #81d4fa80") from exc


class Margin(BaseModel):
    """One side of a crop margin: pixels, or percent of the object's box on that axis."""

    model_config = ConfigDict(frozen=True)

    value: float = 0.0
    percent: bool = False

    def pixels(self, box_extent: int) -> int:
        return round(box_extent * self.value / 100.0) if self.percent else round(self.value)


def parse_margin(value: str | float) -> tuple[Margin, Margin, Margin, Margin]:
    """remove.bg's crop_margin: '30px', '10%', '10 20' (vertical horizontal) or four values
    (top right bottom left). A bare number is pixels."""
    parts = str(value).replace(",", " ").split()
    if len(parts) not in (1, 2, 4):
        raise ValueError("crop_margin takes 1, 2 or 4 values, e.g. '30px', '10%' or '10px 5%'")
    sides = []
    for part in parts:
        match = _MARGIN.fullmatch(part.strip())
        if not match:
            raise ValueError(f"bad crop_margin value {part!r}: use e.g. '30px' or '10%'")
        number, unit = float(match.group(1)), match.group(2)
        percent = unit == "%"
        if number > (MAX_MARGIN_PERCENT if percent else MAX_MARGIN_PX):
            limit = f"{MAX_MARGIN_PERCENT:g}%" if percent else f"{MAX_MARGIN_PX}px"
            raise ValueError(f"crop_margin {part!r} is over the limit of {limit}")
        sides.append(Margin(value=number, percent=percent))
    if len(sides) == 1:
        sides *= 4
    elif len(sides) == 2:
        sides = [sides[0], sides[1], sides[0], sides[1]]
    return sides[0], sides[1], sides[2], sides[3]


class CutoutOptions(BaseModel):
    """Options of one cutout."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    output: Output = Field("rgba", description=(
        "rgba: the cutout; alpha: the matte; mask: the segmenter's coarse probability; "
        "trimap: the ED layer's trimap (0 / 128 / 255)"))
    format: Format = Field("png", description=(
        "png, webp, jpeg (opaque: white unless bg_color), or zip (remove.bg: color.jpg + "
        "alpha.png)"))
    bg_color: RGBA | None = Field(None, description=(
        "background colour (hex like 81d4fa, 81d4fa80, or a CSS name); makes an opaque image "
        "unless the colour itself is translucent. rgba output only"))
    crop: bool = Field(False, description="crop to the object's box")
    crop_margin: tuple[Margin, Margin, Margin, Margin] = Field(
        (Margin(), Margin(), Margin(), Margin()),
        description="margin around the crop: '30px', '10%', 'v h' or 'top right bottom left'")
    max_megapixels: float | None = Field(None, gt=0, le=1000, description=(
        "scale the result down to at most this many megapixels (default: the input's size)"))

    @field_validator("bg_color", mode="before")
    @classmethod
    def _color(cls, value: object) -> object:
        if value is None or isinstance(value, tuple):
            return value
        if isinstance(value, str):
            return None if value.strip() == "" else parse_color(value)
        return value

    @field_validator("crop_margin", mode="before")
    @classmethod
    def _margin(cls, value: object) -> object:
        if isinstance(value, (str, int, float)):
            return parse_margin(value)
        return value

    @field_validator("format", "output", mode="before")
    @classmethod
    def _lower(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().lower()
            return "jpeg" if value == "jpg" else value
        return value

    @model_validator(mode="after")
    def _zip_needs_rgba(self) -> CutoutOptions:
        if self.format == "zip" and self.output != "rgba":
            raise ValueError("format=zip holds color.jpg + alpha.png: it needs output=rgba")
        return self

    def needs(self, stage: Literal["trimap", "matting"]) -> bool:
        """Which of the later stages this output needs (mask stops after segmentation)."""
        if stage == "trimap":
            return self.output != "mask"
        return self.output in ("rgba", "alpha")
