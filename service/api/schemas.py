"""Response schemas (for the OpenAPI docs and the JSON answers)."""
from __future__ import annotations

from pydantic import BaseModel, Field

# crop_margin's grammar (pipeline/options.py parse_margin): 1, 2 or 4 numbers, each in px
# (the default) or %, separated by spaces or commas; the px / % caps are checked by the server.
_MARGIN = r"\d+(\.\d+)?(px|%)?"
CROP_MARGIN_SCHEMA = {"type": "string", "default": "0", "example": "10px 5%",
                      "pattern": rf"^\s*{_MARGIN}(([\s,]+{_MARGIN})|([\s,]+{_MARGIN}){{3}})?\s*$"}


class ErrorBody(BaseModel):
    error: str = Field(description="what went wrong and, where possible, how to fix it")
    code: str = Field(description="stable machine-readable code, e.g. payload_too_large")
    detail: list | None = Field(None, description="per-field problems of invalid options")


class RemoveBgError(BaseModel):
    title: str
    code: str | None = None
    detail: str | None = None


class RemoveBgErrorBody(BaseModel):
    errors: list[RemoveBgError]


class RemoveBgResult(BaseModel):
    result_b64: str
    foreground_top: int | None = None
    foreground_left: int | None = None
    foreground_width: int | None = None
    foreground_height: int | None = None


class RemoveBgJson(BaseModel):
    data: RemoveBgResult


class RemoveBgCredits(BaseModel):
    total: int
    subscription: int
    payg: int
    enterprise: int


class RemoveBgApiInfo(BaseModel):
    free_calls: int
    sizes: str


class RemoveBgAccountAttributes(BaseModel):
    credits: RemoveBgCredits
    api: RemoveBgApiInfo


class RemoveBgAccountData(BaseModel):
    attributes: RemoveBgAccountAttributes


class RemoveBgAccount(BaseModel):
    """GET /v1.0/account in remove.bg's shape."""

    data: RemoveBgAccountData


class WorkerStatus(BaseModel):
    index: int
    state: str
    pid: int | None
    restarts: int
    last_error: str | None


class Health(BaseModel):
    status: str


class Readiness(BaseModel):
    status: str
    model_version: str | None
    queue_depth: int
    workers: list[WorkerStatus]
