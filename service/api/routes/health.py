"""GET /healthz (the process answers) and GET /readyz (every worker loaded and warmed up)."""
from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from ..deps import PoolDep, SettingsDep
from ..schemas import Health, Readiness, WorkerStatus

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, summary="Liveness: the process answers")
async def healthz() -> Health:
    return Health(status="ok")


@router.get("/readyz", response_model=Readiness, summary="Readiness: all workers are warm",
            responses={503: {"model": Readiness, "description": "not ready yet"}})
async def readyz(pool: PoolDep, settings: SettingsDep) -> JSONResponse:
    ready = pool.ready
    body = Readiness(status="ready" if ready else "starting", model_version=pool.model_version,
                     queue_depth=pool.queue_depth,
                     workers=[WorkerStatus.model_validate(s) for s in pool.status()])
    content = body.model_dump()
    if not ready:
        content["error"] = "workers are still loading models or being replaced"
        return JSONResponse(content, status_code=503,
                            headers={"Retry-After": str(max(settings.retry_after_s, 1))})
    return JSONResponse(content)
