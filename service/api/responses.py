"""Building image responses: body, media type, Server-Timing and the informative headers."""
from __future__ import annotations

from fastapi import Response

from ..workers.pool import Outcome

STAGE_ORDER = ("queue", "decode", "resize", "segment", "trimap", "matting", "upscale", "compose",
               "encode")
EXTENSIONS = {"image/png": "png", "image/webp": "webp", "image/jpeg": "jpg",
              "application/zip": "zip"}


def server_timing(outcome: Outcome, total_s: float) -> str:
    stages = {"queue": outcome.queue_seconds, **outcome.result.timings}
    parts = [f"{name};dur={stages[name] * 1000:.1f}" for name in STAGE_ORDER if name in stages]
    parts.append(f"total;dur={total_s * 1000:.1f}")
    return ", ".join(parts)


def image_headers(outcome: Outcome, total_s: float) -> dict[str, str]:
    result = outcome.result
    headers = {
        "Server-Timing": server_timing(outcome, total_s),
        "X-Model-Version": result.model_version,
        "X-Width": str(result.width),
        "X-Height": str(result.height),
        "X-Input-Width": str(result.input_width),
        "X-Input-Height": str(result.input_height),
        "Content-Disposition":
            f'inline; filename="cutout.{EXTENSIONS.get(result.media_type, "bin")}"',
    }
    # Nothing to cut out is still a 200 on /v1/cutout (the empty cutout), flagged here;
    # remove.bg's route answers it as 400 unknown_foreground instead.
    headers["X-Foreground-Found"] = "false" if result.object_box is None else "true"
    if result.object_box is not None:
        left, top, right, bottom = result.object_box
        headers.update({"X-Foreground-Left": str(left), "X-Foreground-Top": str(top),
                        "X-Foreground-Width": str(right - left),
                        "X-Foreground-Height": str(bottom - top)})
    return headers


def image_response(outcome: Outcome, total_s: float,
                   extra: dict[str, str] | None = None) -> Response:
    headers = image_headers(outcome, total_s)
    headers.update(extra or {})
    return Response(outcome.result.body, media_type=outcome.result.media_type, headers=headers)
