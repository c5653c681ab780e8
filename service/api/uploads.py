"""Getting the image bytes and the option fields out of a request (multipart, form, JSON or a
raw body), and turning option fields into a validated `CutoutOptions`."""
from __future__ import annotations

import base64
import binascii
import json as json_lib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect, Request

from ..errors import InvalidOptions, MissingImage, ServiceError, UndecodableImage
from .errors import invalid_options

MULTIPART = "multipart/form-data"
URLENCODED = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 64

OptionsT = TypeVar("OptionsT", bound=BaseModel)


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)  # query + form / JSON fields
    files: dict[str, bytes] = field(default_factory=dict)  # file parts of a multipart form
    body: bytes | None = None  # the raw body, when it was not a form or JSON


def content_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


async def read_upload(request: Request, urlencoded: bool = False, json: bool = False) -> Upload:
    """Multipart is always a form. A urlencoded or JSON body is read as fields only where the
    route takes them (remove.bg's); elsewhere it is the raw image, since `curl --data-binary`
    labels any body application/x-www-form-urlencoded. A field given twice (query and form,
    or repeated) with different values is refused: neither may silently win."""
    upload = Upload()
    for name, value in request.query_params.multi_items():
        _add_field(upload.fields, name, value)
    kind = content_type(request)
    try:
        if kind == MULTIPART or (urlencoded and kind == URLENCODED):
            form = await request.form(max_files=4, max_fields=MAX_FORM_FIELDS)
            try:
                for name, item in form.multi_items():
                    if isinstance(item, UploadFile):
                        upload.files[name] = await item.read()
                    else:
                        _add_field(upload.fields, name, item)
            finally:
                await form.close()
        elif json and kind == "application/json":
            for name, value in _json_fields(await request.body()).items():
                _add_field(upload.fields, name, value)
        else:
            upload.body = await request.body()
    except ClientDisconnect:
        raise
    except ServiceError:
        raise
    except Exception as exc:  # malformed multipart framing and the like
        raise UndecodableImage(f"cannot parse the request body: {exc}") from exc
    return upload


def _add_field(fields: dict[str, str], name: str, value: str) -> None:
    if name in fields and fields[name] != value:
        raise InvalidOptions(f"{name} is given twice with different values ({fields[name]!r} "
                             f"and {value!r}): send it once, as a query parameter or a field")
    fields[name] = value


def _json_fields(raw: bytes) -> dict[str, str]:
    try:
        payload = json_lib.loads(raw or b"{}")
    except ValueError as exc:
        raise InvalidOptions(f"the JSON body is not valid JSON: {exc}") from exc
    if not isinstance(payload, dict):
        raise InvalidOptions("the JSON body must be an object")
    return {key: _field_text(value) for key, value in payload.items() if value is not None}


def _field_text(value: object) -> str:
    """JSON values as the form-field text the option models parse."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json_lib.dumps(value)
    return str(value)


def decode_base64(value: str, name: str) -> bytes:
    text = value.strip()
    if text.startswith("data:") and "," in text:  # data URL
        text = text.split(",", 1)[1]
    try:
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise UndecodableImage(f"{name} is not valid base64") from exc


def image_from(upload: Upload, field_name: str) -> bytes:
    """The image: the named file part of a form, else the raw body."""
    if upload.body is not None:
        return upload.body
    if field_name in upload.files:
        return upload.files[field_name]
    raise MissingImage(f"no image: send it as the multipart file field '{field_name}' or as the "
                       "raw request body")


def validate_options(model: type[OptionsT], fields: Mapping[str, object]) -> OptionsT:
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise invalid_options(exc) from exc
