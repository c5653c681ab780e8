"""Every Prometheus metric of the service, one prefix (`cutout_`), one registry per app.

Workers are separate processes: they send their stage timings back with each result and the
parent records them here, so /metrics needs no multiprocess collector.
"""
from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

from .pipeline import Result

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0, 30.0)
MEGAPIXEL_BUCKETS = (0.1, 0.3, 0.5, 1.0, 2.0, 4.0, 8.0, 12.0, 24.0, 50.0)
TILE_BUCKETS = (0, 1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "cutout_requests", "HTTP requests by route template, method and status code",
            ["route", "method", "status"], registry=r)
        self.request_seconds = Histogram(
            "cutout_request_duration_seconds", "End-to-end request time by route",
            ["route"], buckets=LATENCY_BUCKETS, registry=r)
        self.stage_seconds = Histogram(
            "cutout_stage_duration_seconds",
            "Time per pipeline stage (queue: waiting for a worker)",
            ["stage"], buckets=LATENCY_BUCKETS, registry=r)
        self.input_megapixels = Histogram(
            "cutout_input_megapixels", "Size of decoded input images", buckets=MEGAPIXEL_BUCKETS,
            registry=r)
        self.matting_tiles = Histogram(
            "cutout_matting_tiles", "Matting tiles run per image (band-only matting)",
            buckets=TILE_BUCKETS, registry=r)
        self.queue_depth = Gauge(
            "cutout_queue_depth", "Requests waiting for a free worker", registry=r)
        self.workers = Gauge("cutout_workers", "Configured worker processes", registry=r)
        self.workers_ready = Gauge(
            "cutout_workers_ready", "Workers that loaded their models and warmed up", registry=r)
        self.workers_busy = Gauge(
            "cutout_workers_busy", "Workers processing a request", registry=r)
        self.worker_restarts = Counter(
            "cutout_worker_restarts", "Worker processes replaced, by reason", ["reason"],
            registry=r)
        self.build_info = Gauge(
            "cutout_build_info", "Service and model versions", ["version", "model_version"],
            registry=r)

    def observe_result(self, result: Result, queue_seconds: float) -> None:
        self.stage_seconds.labels("queue").observe(queue_seconds)
        for stage, seconds in result.timings.items():
            self.stage_seconds.labels(stage).observe(seconds)
        self.input_megapixels.observe(result.input_width * result.input_height / 1e6)
        if "matting" in result.timings:
            self.matting_tiles.observe(result.tiles)

    def render(self) -> bytes:
        return generate_latest(self.registry)
