"""Errors the pipeline and the pool raise, each with its HTTP status and a stable code.

Workers send errors back to the parent as (code, message); `from_code` rebuilds them.
"""
from __future__ import annotations


class ServiceError(Exception):
    """Base: an error answered to the client as JSON."""

    status: int = 500
    code: str = "internal_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def headers(self) -> dict[str, str]:
        return {}


class EmptyInput(ServiceError):
    status, code = 400, "empty_input"


class UndecodableImage(ServiceError):
    status, code = 400, "undecodable_image"


class MissingImage(ServiceError):
    status, code = 400, "missing_image"


class PayloadTooLarge(ServiceError):
    status, code = 413, "payload_too_large"


class UnsupportedMediaType(ServiceError):
    status, code = 415, "unsupported_media_type"


class InvalidOptions(ServiceError):
    status, code = 422, "invalid_options"

    def __init__(self, message: str, detail: list | None = None) -> None:
        super().__init__(message)
        self.detail = detail or []


class WorkerCrashed(ServiceError):
    status, code = 500, "worker_crashed"


class Unavailable(ServiceError):
    """Queue full, or shutting down: the client should retry later."""

    status, code = 503, "unavailable"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s

    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after_s)}


class QueueFull(Unavailable):
    """Every worker busy and the queue full (not a shutdown). 503 on our API; remove.bg's route
    answers it as 429, on which remove.bg clients retry."""

    def __init__(self, message: str, retry_after_s: int = 1, capacity: int = 0) -> None:
        super().__init__(message, retry_after_s)
        self.capacity = capacity  # requests the service holds at once: workers + queue


class UnknownForeground(ServiceError):
    """Nothing to cut out (remove.bg's route; /v1/cutout answers the empty cutout)."""

    status, code = 400, "unknown_foreground"


class DeadlineExceeded(ServiceError):
    status, code = 504, "deadline_exceeded"


class ApiKeyMissing(ServiceError):
    status, code = 401, "api_key_missing"

    def headers(self) -> dict[str, str]:
        return {"WWW-Authenticate": 'ApiKey header="X-Api-Key"'}


class ApiKeyInvalid(ServiceError):
    status, code = 403, "api_key_invalid"


class ImageUrlRefused(ServiceError):
    """`image_url` is not allowed: a scheme other than http(s) or a non-public address."""

    status, code = 400, "image_url_refused"


class ImageUrlFailed(ServiceError):
    """`image_url` could not be fetched: unreachable, an HTTP error, too many redirects, too
    slow."""

    status, code = 400, "image_url_failed"


class ModelFolderError(RuntimeError):
    """The model folder or an external segmenter cannot be used; raised at start-up."""


_BY_CODE = {
    cls.code: cls
    for cls in (EmptyInput, UndecodableImage, MissingImage, PayloadTooLarge, UnsupportedMediaType,
                InvalidOptions, WorkerCrashed, Unavailable, DeadlineExceeded, ApiKeyMissing,
                ApiKeyInvalid, ImageUrlRefused, ImageUrlFailed, ServiceError)
}


def from_code(code: str, message: str) -> ServiceError:
    """Rebuild an error a worker reported; unknown codes become a plain 500."""
    return _BY_CODE.get(code, ServiceError)(message)
