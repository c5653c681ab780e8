"""Dependencies as `Annotated` aliases: what route handlers receive."""
from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader

from ..config import Settings
from ..metrics import Metrics
from ..security import ApiKeys
from ..workers import WorkerPool

# Declared for the OpenAPI docs ("Authorize" in /docs); `auto_error=False`: we answer 401/403
# ourselves, as JSON in each API's error shape.
API_KEY_HEADER = APIKeyHeader(name="X-Api-Key", auto_error=False,
                              description="required when the server is configured with API keys")


def get_pool(request: Request) -> WorkerPool:
    return request.app.state.pool


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_settings(request: Request) -> Settings:
    return request.app.state.settings


PoolDep = Annotated[WorkerPool, Depends(get_pool)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def require_api_key(request: Request,
                    key: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> None:
    """401 without a key, 403 with a wrong one; nothing when keys are off (the default)."""
    keys: ApiKeys = request.app.state.api_keys
    keys.check(key)


def require_metrics_key(request: Request,
                        key: Annotated[str | None, Security(API_KEY_HEADER)] = None) -> None:
    if request.app.state.settings.metrics_require_key:
        require_api_key(request, key)


ApiKey = Depends(require_api_key)
MetricsKey = Depends(require_metrics_key)
