"""POST /v1/cutout: the image as multipart field `image` or as the raw body; options as query
parameters or form fields; a background image as the multipart file field `bg_image`."""
from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request, Response

from ...errors import InvalidOptions
from ...pipeline import CutoutOptions
from ..deps import ApiKey, MetricsDep, PoolDep
from ..responses import image_response
from ..schemas import CROP_MARGIN_SCHEMA, ErrorBody
from ..uploads import image_from, read_upload, validate_options

router = APIRouter(tags=["cutout"])

_OPTION_SCHEMAS = {
    "output": {"type": "string", "enum": ["rgba", "alpha", "mask", "trimap"], "default": "rgba"},
    "format": {"type": "string", "enum": ["png", "webp", "jpeg", "zip"], "default": "png"},
    "bg_color": {"type": "string", "example": "81d4fa"},
    "crop": {"type": "boolean", "default": False},
    "crop_margin": CROP_MARGIN_SCHEMA,
    "max_megapixels": {"type": "number", "example": 4, "exclusiveMinimum": 0, "maximum": 1000},
    "canvas": {"type": "string", "example": "1600x1600"},
    "fill": {"type": "number", "example": 0.85},
    "position": {"type": "string", "example": "center"},
    "roi": {"type": "string", "example": "10% 0% 90% 100%"},
    "shadow": {"type": "boolean", "default": False},
}
_PARAMETERS = [
    {"name": name, "in": "query", "required": False, "schema": schema,
     "description": CutoutOptions.model_fields[name].description or ""}
    for name, schema in _OPTION_SCHEMAS.items()
]
_IMAGE_BODY = {"type": "string", "format": "binary"}
OPENAPI = {
    "parameters": _PARAMETERS,
    "requestBody": {
        "required": True,
        "description": "the image (JPEG, PNG, WebP, GIF, BMP, TIFF, AVIF) as the raw body or as "
                       "the multipart file field `image`; options may also be form fields",
        "content": {
            "multipart/form-data": {"schema": {
                "type": "object", "required": ["image"], "additionalProperties": False,
                "properties": {"image": _IMAGE_BODY, "bg_image": _IMAGE_BODY,
                               **_OPTION_SCHEMAS}}},
            "image/*": {"schema": _IMAGE_BODY},
            "application/octet-stream": {"schema": _IMAGE_BODY},
        },
    },
}
# typed as FastAPI's `responses` parameter, into which they are unpacked
ERRORS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorBody, "description": text}
    for status, text in {
        400: "undecodable image, empty body or no image field",
        401: "no X-Api-Key (when the server requires keys)",
        403: "X-Api-Key not valid",
        413: "body or pixel count over the limits",
        415: "not an image in a supported format",
        422: "invalid options",
        500: "the worker died while processing the image",
        503: "queue full (see Retry-After) or shutting down",
        504: "past the request deadline",
    }.items()
}
IMAGE_CONTENT: dict[str, dict[str, Any]] = {
    "image/png": {}, "image/webp": {}, "image/jpeg": {}, "application/zip": {}
}


@router.post("/v1/cutout", summary="Cut out the foreground of an image", openapi_extra=OPENAPI,
             response_class=Response, dependencies=[ApiKey],
             responses={200: {"content": IMAGE_CONTENT, "description": "the cutout"}, **ERRORS})
async def cutout(request: Request, pool: PoolDep, metrics: MetricsDep) -> Response:
    start = time.perf_counter()
    upload = await read_upload(request)
    data = image_from(upload, "image")
    fields: dict[str, object] = dict(upload.fields)
    if "bg_image" in fields:
        raise InvalidOptions("bg_image is a file: send it as a multipart file part")
    if "bg_image" in upload.files:
        fields["bg_image"] = upload.files["bg_image"]
    options = validate_options(CutoutOptions, fields)
    outcome = await pool.submit(data, options)
    metrics.observe_result(outcome.result, outcome.queue_seconds)
    return image_response(outcome, time.perf_counter() - start)
