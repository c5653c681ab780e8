"""GET /metrics: Prometheus text format."""
from __future__ import annotations

from fastapi import APIRouter, Response

from ..deps import MetricsDep, MetricsKey, PoolDep

router = APIRouter(tags=["operations"])


@router.get("/metrics", summary="Prometheus metrics", response_class=Response,
            dependencies=[MetricsKey], responses={200: {"content": {"text/plain": {}}}})
async def metrics(metrics: MetricsDep, pool: PoolDep) -> Response:
    metrics.queue_depth.set(pool.queue_depth)
    return Response(metrics.render(), media_type=metrics.content_type)
