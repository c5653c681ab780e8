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
_CANVAS = re.compile(r"\s*(\d+)\s*[xX×]\s*(\d+)\s*")
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)%")
_COORDINATE = re.compile(r"(\d+(?:\.\d+)?)(px|%)")
# A canvas is allocated in full (RGBA, float maths while composing): 25 MP is remove.bg's
# largest regular output ('full').
MAX_CANVAS_PIXELS = 25_000_000
MAX_CANVAS_SIDE = 10_000


def parse_color(value: str) -> RGBA:
    """'81d4fa', '#81d4fa', '#81d4fa80', 'rgb(...)' or a CSS name -> (r, g, b, a)."""
    text = value.strip()
    if _HEX.fullmatch(text):
        text = "#" + text
    try:
        colour = ImageColor.getcolor(text, "RGBA")
    except ValueError as exc:
        raise ValueError(f"unknown colour {value!r}: use hex like 81d4fa or #81d4fa80") from exc
    assert isinstance(colour, tuple) and len(colour) == 4  # mode RGBA: always four channels
    return colour[0], colour[1], colour[2], colour[3]


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


def parse_canvas(value: str) -> tuple[int, int]:
    """'1600x1600' -> (1600, 1600)."""
    match = _CANVAS.fullmatch(value)
    if not match:
        raise ValueError(f"canvas {value!r} is not WIDTHxHEIGHT in pixels, e.g. 1600x1600")
    width, height = int(match.group(1)), int(match.group(2))
    if not (1 <= width <= MAX_CANVAS_SIDE and 1 <= height <= MAX_CANVAS_SIDE):
        raise ValueError(f"canvas sides must be 1-{MAX_CANVAS_SIDE} px, got {value!r}")
    if width * height > MAX_CANVAS_PIXELS:
        raise ValueError(f"canvas {value!r} is over {MAX_CANVAS_PIXELS / 1e6:g} megapixels")
    return width, height


def parse_position(value: str) -> tuple[float, float] | Literal["original"]:
    """remove.bg's position: 'center', 'original', 'x%' (both axes) or 'x% y%' -> the object's
    place along the free space of each axis, 0 (left / top) to 1 (right / bottom), as CSS's
    background-position."""
    text = value.strip().lower()
    if text == "center":
        return 0.5, 0.5
    if text == "original":
        return "original"
    parts = text.replace(",", " ").split()
    matches = [_PERCENT.fullmatch(part) for part in parts]
    if len(parts) not in (1, 2) or not all(matches):
        raise ValueError(f"position {value!r}: use center, original, 'x%' or 'x% y%' "
                         "(0% = left / top, 100% = right / bottom)")
    fractions = [float(m.group(1)) / 100.0 for m in matches if m]
    if any(f > 1.0 for f in fractions):
        raise ValueError(f"position {value!r}: percentages go from 0% to 100%")
    return (fractions[0], fractions[-1])


class Coordinate(BaseModel):
    """One roi coordinate: pixels, or percent of the image's side on that axis."""

    model_config = ConfigDict(frozen=True)

    value: float
    percent: bool

    def pixels(self, extent: int) -> int:
        return round(extent * self.value / 100.0) if self.percent else round(self.value)


Roi = tuple[Coordinate, Coordinate, Coordinate, Coordinate]


def parse_roi(value: str) -> Roi:
    """remove.bg's roi: 'x1 y1 x2 y2', each with px or %, e.g. '0% 0% 100% 100%'."""
    parts = value.replace(",", " ").split()
    matches = [_COORDINATE.fullmatch(part) for part in parts]
    if len(parts) != 4 or not all(matches):
        raise ValueError(f"roi {value!r}: use 'x1 y1 x2 y2', each in px or %, "
                         "e.g. '10% 0% 90% 100%' or '40px 20px 600px 480px'")
    coords = [Coordinate(value=float(m.group(1)), percent=m.group(2) == "%")
              for m in matches if m]
    if any(c.percent and c.value > 100.0 for c in coords):
        raise ValueError(f"roi {value!r}: percentages go from 0% to 100%")
    for low, high in ((coords[0], coords[2]), (coords[1], coords[3])):
        if low.percent == high.percent and low.value >= high.value:
            raise ValueError(f"roi {value!r}: x2 must be right of x1 and y2 below y1")
    return coords[0], coords[1], coords[2], coords[3]


def roi_box(roi: Roi, width: int, height: int) -> tuple[int, int, int, int] | None:
    """The roi as (left, top, right, bottom) pixels inside a width x height image; None when it
    covers the whole image. ValueError when nothing of it lies inside."""
    x1, y1, x2, y2 = roi
    left, right = max(x1.pixels(width), 0), min(x2.pixels(width), width)
    top, bottom = max(y1.pixels(height), 0), min(y2.pixels(height), height)
    if right <= left or bottom <= top:
        raise ValueError(f"roi lies outside the {width} x {height} image")
    if (left, top, right, bottom) == (0, 0, width, height):
        return None
    return left, top, right, bottom


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
    canvas: tuple[int, int] | None = Field(None, description=(
        "WIDTHxHEIGHT: place the object on a canvas of this size (e.g. 1600x1600), scaled so "
        "it fills `fill` of it"))
    fill: float | None = Field(None, gt=0, le=1, description=(
        "share of the canvas the object's box fills (its long side on a square canvas), 0-1; "
        "0.85 when a canvas is asked for. Without canvas: of the image's own frame "
        "(remove.bg's scale)"))
    position: tuple[float, float] | Literal["original"] | None = Field(None, description=(
        "where the object goes: center (the default with canvas or fill), original, or "
        "remove.bg-style 'x% y%' (0% = left / top, 100% = right / bottom)"))
    roi: Roi | None = Field(None, description=(
        "'x1 y1 x2 y2' in px or %: the object is searched only in this rectangle; everything "
        "outside it is background"))
    shadow: bool = Field(False, description=(
        "a soft contact shadow under the object, made from its matte. rgba output only"))
    bg_image: bytes | None = Field(None, description=(
        "a background image (multipart file): the cutout is composited onto it, resized to "
        "cover the output. rgba output only"), repr=False)

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

    @field_validator("canvas", mode="before")
    @classmethod
    def _canvas(cls, value: object) -> object:
        if isinstance(value, str):
            return None if value.strip() == "" else parse_canvas(value)
        return value

    @field_validator("position", mode="before")
    @classmethod
    def _position(cls, value: object) -> object:
        if isinstance(value, str):
            return None if value.strip() == "" else parse_position(value)
        return value

    @field_validator("roi", mode="before")
    @classmethod
    def _roi(cls, value: object) -> object:
        if isinstance(value, str):
            return None if value.strip() == "" else parse_roi(value)
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

    @model_validator(mode="after")
    def _placement_fits(self) -> CutoutOptions:
        if self.places and self.crop:
            raise ValueError("crop and canvas / fill / position each set the frame: use one")
        if self.places and self.output == "trimap":
            raise ValueError("the trimap stays in the model's frame: canvas / fill / position "
                             "need output rgba, alpha or mask")
        return self

    @model_validator(mode="after")
    def _backgrounds_need_rgba(self) -> CutoutOptions:
        asked = [name for name, on in (("shadow", self.shadow),
                                       ("bg_image", self.bg_image is not None)) if on]
        if asked and (self.output != "rgba" or self.format == "zip"):
            raise ValueError(f"{' and '.join(asked)}: drawn behind the cutout, so output=rgba "
                             "and a format other than zip only")
        if self.bg_image is not None and self.bg_color is not None:
            raise ValueError("send bg_color or bg_image, not both")
        return self

    @property
    def places(self) -> bool:
        """The object is scaled and / or moved (canvas.py); position=original alone leaves it
        where it is."""
        return (self.canvas is not None or self.fill is not None
                or self.position not in (None, "original"))

    def needs(self, stage: Literal["trimap", "matting"]) -> bool:
        """Which of the later stages this output needs (mask stops after segmentation)."""
        if stage == "trimap":
            return self.output != "mask"
        return self.output in ("rgba", "alpha")
