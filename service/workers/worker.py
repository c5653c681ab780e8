"""The worker process: set up the pipeline once, warm up, report READY, then serve jobs."""
from __future__ import annotations

import logging
import os
import signal
import time
from multiprocessing.connection import Connection

from ..errors import ServiceError
from ..pipeline import Pipeline, PipelineConfig, codec
from ..pipeline.runner import Deadline
from .memory import fix_mmap_threshold
from .protocol import STOP, Done, Failed, Job, Ready, SetupFailed

log = logging.getLogger("cutout.worker")


def worker_main(conn: Connection, config: PipelineConfig, index: int, log_level: str,
                warm_up: bool = True, max_frames: int | None = None,
                mmap_threshold_bytes: int = 0) -> None:
    logging.basicConfig(level=log_level.upper(),
                        format=f"%(asctime)s worker-{index} %(levelname)s %(name)s: %(message)s")
    # Ctrl-C and a SIGTERM sent to the whole process group reach workers too; the parent
    # decides when they stop (after in-flight work), and they exit when its pipe closes.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fix_mmap_threshold(mmap_threshold_bytes)
    start = time.perf_counter()
    try:
        pipeline = Pipeline(config)
        if warm_up:
            pipeline.warm_up()
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which logs and retries
        conn.send(SetupFailed(f"{type(exc).__name__}: {exc}"))
        return
    conn.send(Ready(os.getpid(), pipeline.version, time.perf_counter() - start))
    log.info("ready in %.1f s (pid %d)", time.perf_counter() - start, os.getpid())
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            return
        if message is STOP:
            return
        conn.send(_serve(pipeline, message, max_frames))


def _serve(pipeline: Pipeline, job: Job, max_frames: int | None = None) -> Done | Failed:
    deadline = Deadline(job.budget_s)
    try:
        if max_frames is not None:
            codec.check_frames(job.data, max_frames)
        return Done(job.id, pipeline.run(job.data, job.options, deadline))
    except ServiceError as exc:
        return Failed(job.id, exc.code, exc.message)
    except Exception:
        log.exception("job %d failed", job.id)
        return Failed(job.id, "internal_error", "internal error while processing the image")
    finally:
        deadline.close()
