"""The app factory: settings -> checked model folder -> metrics, worker pool, routes.

`uvicorn --factory service.main:create_app` or `cutout serve` run it. The lifespan starts the
worker pool (workers load their models and warm up in the background; /readyz says when they
are done) and stops it gracefully.
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from . import __version__
from .api import errors, openapi
from .api.middleware import (
    BodyLimitMiddleware,
    RequestMetricsMiddleware,
    SecurityHeadersMiddleware,
)
from .api.routes import cutout, health, metrics, pages, removebg
from .config import Settings
from .metrics import Metrics
from .pipeline.spec import load_segmenter_spec, load_spec
from .security import ApiKeys
from .workers import WorkerPool

log = logging.getLogger("cutout")

DESCRIPTION = """CPU-first background removal (AlphaNet: segmentation, ED trimap, attention
matting on the trimap's unknown band). `POST /v1/cutout` for our API, `POST /v1.0/removebg` for
remove.bg-compatible clients."""


def create_app(settings: Settings | None = None, *, image_url_allow_loopback: bool = False
               ) -> FastAPI:
    """`image_url_allow_loopback` lets `image_url` reach 127.0.0.0/8 and ::1: for tests, which
    serve the images they fetch locally; never a setting."""
    settings = settings or Settings()
    spec = load_spec(settings.model_dir)  # fails here, with the fix, when the folder is unusable
    if settings.segmenter_spec is not None:
        load_segmenter_spec(settings.segmenter_spec)  # the same, for an external segmenter
    app_metrics = Metrics()
    app_metrics.build_info.labels(__version__, spec.version).set(1)
    pool = WorkerPool(
        settings.pipeline_config(), workers=settings.workers, queue_size=settings.queue_size,
        timeout_s=settings.request_timeout_s, kill_grace_s=settings.kill_grace_s,
        retry_after_s=settings.retry_after_s, start_timeout_s=settings.start_timeout_s,
        log_level=settings.log_level, warm_up=settings.warm_up, metrics=app_metrics,
        max_frames=settings.max_frames, start_method=settings.worker_start_method,
        mmap_threshold_bytes=settings.worker_mmap_threshold_kib * 1024)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        log.info("starting %d worker(s), %d thread(s) each, models %s (%s)", settings.workers,
                 settings.threads_per_worker, settings.model_dir, spec.version)
        if app.state.api_keys.enabled:
            log.info("API keys required (X-Api-Key); /metrics %s", "too" if
                     settings.metrics_require_key else "open")
        if settings.image_url_enabled:
            log.info("image_url enabled (public http(s) addresses only)")
        await pool.start()
        try:
            yield
        finally:
            await pool.stop(grace_s=settings.request_timeout_s)

    app = FastAPI(title="cutout", version=__version__, description=DESCRIPTION,
                  lifespan=lifespan, docs_url=None, redoc_url=None)  # pages.py serves them
    app.state.settings = settings
    app.state.image_url_allow_loopback = image_url_allow_loopback
    app.state.metrics = app_metrics
    app.state.pool = pool
    app.state.spec = spec
    app.state.api_keys = ApiKeys.from_settings(
        (key.get_secret_value() for key in settings.api_keys), settings.api_keys_file)
    errors.install(app)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetricsMiddleware, metrics=app_metrics)
    app.add_middleware(SecurityHeadersMiddleware)
    routers = [module.router for module in (cutout, removebg, health, metrics, pages)]
    for router in routers:
        app.include_router(router)
    pages.mount_assets(app)
    openapi.install(app, routers)
    return app
