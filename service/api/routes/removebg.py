"""POST /v1.0/removebg and GET /v1.0/account: remove.bg's API (as CarveKit also serves it), so
existing clients work by changing only the base URL.

Every option remove.bg documents is honoured, accepted where it changes nothing here
(`type`, `type_level`, `semitransparency`: one model serves all kinds), or refused with 400; an
unknown option is refused too, never ignored. Fields come as multipart / urlencoded form fields,
a JSON body or query parameters. `Accept: application/json` returns `{"data": {"result_b64":
...}}`. Errors use remove.bg's `{"errors": [{"title": ..., "code": ...}]}` shape and statuses
(`api/errors.py`): 400 for invalid options, 400 `unknown_foreground` when there is nothing to cut
out, 429 with rate-limit headers when the queue is full. `image_url` and `bg_image_url` are
refused unless `image_url_enabled`; then they are fetched from public http(s) addresses only
(`api/fetch.py`).
"""
from __future__ import annotations

import base64
import re
import time
from typing import Any, Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ...config import Settings
from ...errors import InvalidOptions, MissingImage, ServiceError, UnknownForeground
from ...pipeline import CutoutOptions
from ...pipeline.options import parse_color
from ..deps import ApiKey, MetricsDep, PoolDep, SettingsDep
from ..errors import removebg_error_response
from ..fetch import FetchPolicy, fetch_image
from ..responses import image_headers, image_response
from ..schemas import (
    CROP_MARGIN_SCHEMA,
    RemoveBgAccount,
    RemoveBgAccountAttributes,
    RemoveBgAccountData,
    RemoveBgApiInfo,
    RemoveBgCredits,
    RemoveBgErrorBody,
    RemoveBgJson,
)
from ..uploads import decode_base64, read_upload, validate_options

router = APIRouter(tags=["remove.bg compatible"])

# remove.bg's output sizes as megapixel caps. Its 'auto' is "the highest available resolution":
# here the input's own (inputs over CUTOUT_MAX_PIXELS are refused with 413, not shrunk).
SIZES: dict[str, float | None] = {
    "preview": 0.25, "small": 0.25, "regular": 0.25, "medium": 1.5, "hd": 4.0,
    "full": 25.0, "4k": 25.0, "50mp": 50.0, "auto": None,
}
DEFAULT_SIZE = "preview"  # remove.bg's default
TYPES = ("auto", "person", "product", "animal", "car", "car_interior", "car_part",
         "transportation", "graphic", "other")
TYPE_LEVELS = ("none", "1", "2", "latest")
SCALE = re.compile(r"(\d+(?:\.\d+)?)%")
# GET /v1.0/account: no credits are counted here; remove.bg clients read these as numbers, so
# "unlimited" is the largest 32-bit integer.
UNLIMITED = 2**31 - 1
NO_FOREGROUND = "Could not identify foreground in image"


class RemoveBgOptions(BaseModel):
    """remove.bg's request fields (the image and background sources are taken apart first)."""

    model_config = ConfigDict(extra="forbid")

    size: str = Field(DEFAULT_SIZE, description="preview (default), small, regular, medium, "
                      "hd, full, 4k, 50mp, auto")
    type: str = Field("auto", description="accepted; one model serves all kinds")
    type_level: str = Field("1", description="none, 1, 2, latest: accepted (no classifier "
                            "here, so no X-Type header)")
    format: Literal["auto", "png", "jpg", "jpeg", "webp", "zip"] = "auto"
    roi: str = Field("0% 0% 100% 100%", description="'x1 y1 x2 y2' in px or %: the object is "
                     "searched only there")
    crop: bool = False
    crop_margin: str = "0"
    scale: str = Field("original", description="10%-100% of the image, or original; implies "
                       "position=center")
    position: str | None = Field(None, description="original (default without scale), center "
                                 "(default with scale), 'x%' or 'x% y%'")
    channels: Literal["rgba", "alpha"] = "rgba"
    add_shadow: bool = Field(False, description="a soft contact shadow made from the matte")
    semitransparency: bool = Field(True, description="accepted: the matte is always soft")
    bg_color: str | None = None

    def cutout_options(self, bg_image: bytes | None) -> CutoutOptions:
        size = self.size.strip().lower()
        if size not in SIZES:
            raise InvalidOptions(f"size {self.size!r} is not one of {', '.join(SIZES)}")
        if self.type.strip().lower() not in TYPES:
            raise InvalidOptions(f"type {self.type!r} is not one of {', '.join(TYPES)}")
        if self.type_level.strip().lower() not in TYPE_LEVELS:
            raise InvalidOptions(f"type_level {self.type_level!r} is not one of "
                                 f"{', '.join(TYPE_LEVELS)}")
        output = "alpha" if self.channels == "alpha" else "rgba"
        fmt = self.format
        if fmt == "auto":  # remove.bg: PNG when the result has transparency, else JPEG
            opaque = output == "rgba" and (bg_image is not None or bool(
                self.bg_color and _opaque(self.bg_color)))
            fmt = "jpeg" if opaque else "png"
        position = self.position
        if position is None and self.scale.strip().lower() == "original":
            position = "original"
        return validate_options(CutoutOptions, {
            "output": output, "format": fmt, "bg_color": self.bg_color or None,
            "bg_image": bg_image, "crop": self.crop, "crop_margin": self.crop_margin,
            "max_megapixels": SIZES[size], "roi": self.roi, "fill": _scale(self.scale),
            "position": position, "shadow": self.add_shadow,
        })


def _scale(value: str) -> float | None:
    """remove.bg's scale: 'original' or 10%-100% -> fill (None: the object's own size)."""
    text = value.strip().lower()
    if text == "original":
        return None
    match = SCALE.fullmatch(text)
    if not match or not 10.0 <= float(match.group(1)) <= 100.0:
        raise InvalidOptions(f"scale {value!r}: use original or 10% to 100%")
    return float(match.group(1)) / 100.0


def _opaque(color: str) -> bool:
    try:
        return parse_color(color)[3] == 255
    except ValueError:
        return False  # validation reports it


_FIELDS = {
    "size": {"type": "string", "default": DEFAULT_SIZE, "enum": list(SIZES)},
    "type": {"type": "string", "default": "auto", "enum": list(TYPES)},
    "type_level": {"type": "string", "default": "1", "enum": list(TYPE_LEVELS)},
    "format": {"type": "string", "default": "auto",
               "enum": ["auto", "png", "jpg", "webp", "zip"]},
    "roi": {"type": "string", "default": "0% 0% 100% 100%"},
    "crop": {"type": "boolean", "default": False},
    "crop_margin": CROP_MARGIN_SCHEMA,
    "scale": {"type": "string", "default": "original", "example": "85%"},
    "position": {"type": "string", "example": "center"},
    "channels": {"type": "string", "default": "rgba", "enum": ["rgba", "alpha"]},
    "add_shadow": {"type": "boolean", "default": False},
    "semitransparency": {"type": "boolean", "default": True},
    "bg_color": {"type": "string", "example": "ffffff"},
}
_SOURCES = {
    "image_file": {"type": "string", "format": "binary"},
    "image_file_b64": {"type": "string"},
    "image_url": {"type": "string", "description": "only where the server enables it"},
    "bg_image_file": {"type": "string", "format": "binary"},
    "bg_image_url": {"type": "string", "description": "only where the server enables it"},
}
_ONE_IMAGE_SOURCE = [{"required": [name]}
                     for name in ("image_file", "image_file_b64", "image_url")]
_TEXT_FIELDS = {  # a form or JSON body carries no file parts
    "type": "object", "anyOf": _ONE_IMAGE_SOURCE[1:],
    "properties": {**{k: v for k, v in _SOURCES.items() if v.get("format") != "binary"},
                   **_FIELDS}}
OPENAPI = {
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "anyOf": _ONE_IMAGE_SOURCE,
                                           "properties": {**_SOURCES, **_FIELDS}}},
        "application/x-www-form-urlencoded": {"schema": _TEXT_FIELDS},
        "application/json": {"schema": _TEXT_FIELDS},
    }},
}
ERRORS: dict[int | str, dict[str, Any]] = {status: {"model": RemoveBgErrorBody}
          for status in (400, 401, 403, 413, 415, 429, 500, 503, 504)}
IMAGE_SOURCES = ("image_file", "image_file_b64", "image_url")
BG_SOURCES = ("bg_image_file", "bg_image_url")


@router.post("/v1.0/removebg", summary="remove.bg-compatible background removal",
             openapi_extra=OPENAPI, response_class=Response, dependencies=[ApiKey],
             responses={200: {"content": {"image/png": {}, "image/jpeg": {}, "image/webp": {},
                                          "application/zip": {}, "application/json":
                                          {"schema": RemoveBgJson.model_json_schema()}}},
                        **ERRORS})
async def removebg(request: Request, pool: PoolDep, metrics: MetricsDep,
                   settings: SettingsDep) -> Response:
    start = time.perf_counter()
    try:
        upload = await read_upload(request, urlencoded=True, json=True)
        unknown_files = set(upload.files) - {"image_file", "bg_image_file"}
        if unknown_files:
            raise InvalidOptions(f"unknown file field(s) {', '.join(sorted(unknown_files))}: "
                                 "send image_file and, optionally, bg_image_file")
        fields = {k: v for k, v in upload.fields.items()
                  if k not in IMAGE_SOURCES + BG_SOURCES}
        image_url = _source_url(upload.fields, "image_url", settings)
        bg_url = _source_url(upload.fields, "bg_image_url", settings)
        data = None if image_url else _image(upload.files, upload.fields, upload.body)
        if image_url:
            _only_source(upload.files, upload.fields, upload.body)
        bg_data = _background(upload.files, upload.fields)
        request_options = validate_options(RemoveBgOptions, fields)
        # Validated with a stand-in background before anything is fetched; the fetched bytes
        # replace it (model_copy: the combination is already checked).
        options = request_options.cutout_options(b"" if bg_url else bg_data)
        if image_url:
            data = await fetch_image(image_url, _fetch_policy(settings, request))
        if bg_url:
            options = options.model_copy(
                update={"bg_image": await fetch_image(bg_url, _fetch_policy(settings, request))})
        assert data is not None
        outcome = await pool.submit(data, options)
        if outcome.result.object_box is None:
            raise UnknownForeground(f"{NO_FOREGROUND}: nothing in it stands out from the "
                                    "background (or the roi holds none of it)")
    except ServiceError as exc:
        return removebg_error_response(exc)
    metrics.observe_result(outcome.result, outcome.queue_seconds)
    total = time.perf_counter() - start
    extra = {"X-Credits-Charged": "0"}  # no X-Type: we have no classifier to report a kind
    if "application/json" in request.headers.get("accept", ""):
        result = outcome.result
        box = result.object_box
        payload: dict[str, str | int] = {
            "result_b64": base64.b64encode(result.body).decode("ascii")
        }
        if box is not None:
            payload.update(foreground_left=box[0], foreground_top=box[1],
                           foreground_width=box[2] - box[0], foreground_height=box[3] - box[1])
        headers = image_headers(outcome, total)
        headers.pop("Content-Disposition")
        return JSONResponse({"data": payload}, headers={**headers, **extra})
    return image_response(outcome, total, extra)


@router.get("/v1.0/account", summary="remove.bg-compatible account (credits are not counted)",
            response_model=RemoveBgAccount, dependencies=[ApiKey],
            responses={status: {"model": RemoveBgErrorBody} for status in (401, 403)})
async def account() -> RemoveBgAccount:
    credits = RemoveBgCredits(total=UNLIMITED, subscription=UNLIMITED, payg=0, enterprise=0)
    return RemoveBgAccount(data=RemoveBgAccountData(attributes=RemoveBgAccountAttributes(
        credits=credits, api=RemoveBgApiInfo(free_calls=UNLIMITED, sizes="all"))))


def _fetch_policy(settings: Settings, request: Request) -> FetchPolicy:
    return FetchPolicy(max_bytes=settings.image_url_max_bytes or settings.max_body_bytes,
                       timeout_s=settings.image_url_timeout_s,
                       max_redirects=settings.image_url_max_redirects,
                       allow_loopback=request.app.state.image_url_allow_loopback)


def _source_url(fields: dict[str, str], name: str, settings: Settings) -> str | None:
    url = fields.get(name)
    if url and not settings.image_url_enabled:
        upload = "image_file or image_file_b64" if name == "image_url" else "bg_image_file"
        raise InvalidOptions(f"{name} is disabled on this server: send {upload}")
    return url or None


def _only_source(files: dict[str, bytes], fields: dict[str, str], body: bytes | None) -> None:
    sources = [n for n in IMAGE_SOURCES if n in files or fields.get(n)]
    if body:
        sources.append("body")
    if len(sources) > 1:
        raise InvalidOptions("send exactly one of image_file, image_file_b64 and image_url")


def _image(files: dict[str, bytes], fields: dict[str, str], body: bytes | None) -> bytes:
    sources = [name for name in ("image_file", "image_file_b64")
               if name in files or fields.get(name)]
    if len(sources) > 1:
        raise InvalidOptions("send exactly one of image_file and image_file_b64")
    if "image_file" in files:
        return files["image_file"]
    if fields.get("image_file_b64"):
        return decode_base64(fields["image_file_b64"], "image_file_b64")
    if body:
        return body
    raise MissingImage("no image: send image_file (multipart) or image_file_b64")


def _background(files: dict[str, bytes], fields: dict[str, str]) -> bytes | None:
    """bg_image_file's bytes (bg_image_url is fetched later)."""
    if "bg_image_file" in fields:
        raise InvalidOptions("bg_image_file is a file: send it as a multipart file part")
    if "bg_image_file" in files and fields.get("bg_image_url"):
        raise InvalidOptions("send one of bg_image_file and bg_image_url")
    return files.get("bg_image_file")
