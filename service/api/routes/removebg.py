"""POST /v1.0/removebg: remove.bg's API (as CarveKit also serves it), so existing clients work by
changing only the base URL.

Accepted: `image_file` (multipart), `image_file_b64`, `size`, `type`, `format`, `bg_color`,
`crop`, `crop_margin`, `channels`, as multipart / urlencoded form fields, a JSON body or query
parameters. `Accept: application/json` returns `{"data": {"result_b64": ...}}`. Errors use
remove.bg's `{"errors": [{"title": ...}]}` shape. `image_url` is refused (422) unless
`image_url_enabled`; then it is fetched from public http(s) addresses only (`api/fetch.py`).
"""
from __future__ import annotations

import base64
import time
from typing import Literal

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field

from ...config import Settings
from ...errors import InvalidOptions, MissingImage, ServiceError
from ...pipeline import CutoutOptions
from ...pipeline.options import parse_color
from ..deps import ApiKey, MetricsDep, PoolDep, SettingsDep
from ..errors import removebg_error_response
from ..fetch import FetchPolicy, fetch_image
from ..responses import image_headers, image_response
from ..schemas import RemoveBgErrorBody, RemoveBgJson
from ..uploads import decode_base64, read_upload, validate_options

router = APIRouter(tags=["remove.bg compatible"])

# remove.bg's output sizes as megapixel caps (None: the full resolution).
SIZES: dict[str, float | None] = {
    "auto": None, "preview": 0.25, "small": 0.25, "regular": 0.25, "medium": 1.5, "hd": 4.0,
    "full": None, "4k": None, "50mp": None,
}
TYPES = ("auto", "person", "product", "animal", "car", "car_interior", "car_part",
         "transportation", "graphic", "other")


class RemoveBgOptions(BaseModel):
    """remove.bg's request fields; unknown ones are ignored, as remove.bg clients send many."""

    model_config = ConfigDict(extra="ignore")

    size: str = Field("auto", description="auto, preview, small, regular, medium, hd, full, 4k")
    type: str = Field("auto", description="accepted for compatibility; one model serves all")
    format: Literal["auto", "png", "jpg", "jpeg", "webp", "zip"] = "auto"
    channels: Literal["rgba", "alpha"] = "rgba"
    bg_color: str | None = None
    crop: bool = False
    crop_margin: str = "0"

    def cutout_options(self) -> CutoutOptions:
        size = self.size.strip().lower()
        if size not in SIZES:
            raise InvalidOptions(f"size {self.size!r} is not one of {', '.join(SIZES)}")
        if self.type.strip().lower() not in TYPES:
            raise InvalidOptions(f"type {self.type!r} is not one of {', '.join(TYPES)}")
        output = "alpha" if self.channels == "alpha" else "rgba"
        fmt = self.format
        if fmt == "auto":  # remove.bg: PNG when the result has transparency, else JPEG
            opaque = output == "rgba" and bool(self.bg_color) and _opaque(self.bg_color)
            fmt = "jpeg" if opaque else "png"
        return validate_options(CutoutOptions, {
            "output": output, "format": fmt, "bg_color": self.bg_color or None,
            "crop": self.crop, "crop_margin": self.crop_margin, "max_megapixels": SIZES[size],
        })  # type: ignore[return-value]


def _opaque(color: str) -> bool:
    try:
        return parse_color(color)[3] == 255
    except ValueError:
        return False  # validation reports it


OPENAPI = {
    "requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": {
            "image_file": {"type": "string", "format": "binary"},
            "image_file_b64": {"type": "string"},
            "image_url": {"type": "string", "description": "only where the server enables it"},
            "size": {"type": "string", "default": "auto"},
            "type": {"type": "string", "default": "auto"},
            "format": {"type": "string", "enum": ["auto", "png", "jpg", "webp", "zip"]},
            "channels": {"type": "string", "enum": ["rgba", "alpha"]},
            "bg_color": {"type": "string"},
            "crop": {"type": "boolean"},
            "crop_margin": {"type": "string"},
        }}},
        "application/x-www-form-urlencoded": {"schema": {"type": "object"}},
        "application/json": {"schema": {"type": "object"}},
    }},
}
ERRORS = {status: {"model": RemoveBgErrorBody}
          for status in (400, 401, 403, 413, 415, 422, 500, 503, 504)}


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
        fields = {k: v for k, v in upload.fields.items()
                  if k not in ("image_file_b64", "image_url")}
        url = upload.fields.get("image_url") if settings.image_url_enabled else None
        if url:
            _only_source(upload.files, upload.fields, upload.body)
        else:
            data = _image(upload.files, upload.fields, upload.body)
        request_options = validate_options(RemoveBgOptions, fields)
        options = request_options.cutout_options()  # type: ignore[attr-defined]
        if url:  # only once the options are valid
            data = await fetch_image(url, _fetch_policy(settings))
        outcome = await pool.submit(data, options)
    except ServiceError as exc:
        return removebg_error_response(exc)
    metrics.observe_result(outcome.result, outcome.queue_seconds)
    total = time.perf_counter() - start
    extra = {"X-Type": "other", "X-Credits-Charged": "0"}
    if "application/json" in request.headers.get("accept", ""):
        result = outcome.result
        box = result.object_box
        payload = {"result_b64": base64.b64encode(result.body).decode("ascii")}
        if box is not None:
            payload.update(foreground_left=box[0], foreground_top=box[1],
                           foreground_width=box[2] - box[0], foreground_height=box[3] - box[1])
        headers = image_headers(outcome, total)
        headers.pop("Content-Disposition")
        return JSONResponse({"data": payload}, headers={**headers, **extra})
    return image_response(outcome, total, extra)


def _fetch_policy(settings: Settings) -> FetchPolicy:
    return FetchPolicy(max_bytes=settings.image_url_max_bytes or settings.max_body_bytes,
                       timeout_s=settings.image_url_timeout_s,
                       max_redirects=settings.image_url_max_redirects,
                       allow_loopback=settings.image_url_allow_loopback)


def _only_source(files: dict[str, bytes], fields: dict[str, str], body: bytes | None) -> None:
    sources = [n for n in ("image_file", "image_file_b64", "image_url")
               if n in files or fields.get(n)]
    if body:
        sources.append("body")
    if len(sources) > 1:
        raise InvalidOptions("send exactly one of image_file, image_file_b64 and image_url")


def _image(files: dict[str, bytes], fields: dict[str, str], body: bytes | None) -> bytes:
    if fields.get("image_url"):
        raise InvalidOptions("image_url is disabled on this server: send image_file or "
                             "image_file_b64")
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
