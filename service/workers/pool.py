"""The worker pool: a bounded queue in front of worker processes (forked from a forkserver).

Route handlers call `submit`; it enqueues (503 at once when the queue is full) and awaits the
answer. One asyncio task per worker slot takes jobs from the queue, sends each to its process and
waits for the reply until the request's deadline (504), then a short grace for the worker to
abort by itself before it is killed. A worker that dies, busy or idle, is replaced; the request it
held is answered with an error, never left hanging.
"""
from __future__ import annotations

import asyncio
import enum
import itertools
import logging
import multiprocessing
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.context import ForkServerContext, SpawnContext
from multiprocessing.process import BaseProcess
from typing import Literal

from ..errors import (
    DeadlineExceeded,
    QueueFull,
    ServiceError,
    Unavailable,
    WorkerCrashed,
    from_code,
)
from ..metrics import Metrics
from ..pipeline import CutoutOptions, PipelineConfig, Result
from .protocol import STOP, Done, Failed, Job, Ready, SetupFailed
from .worker import worker_main

# How long a dead worker's pipe EOF may precede its exit being seen (to name its signal).
EXIT_WAIT_S = 1.0

log = logging.getLogger("cutout.pool")


class WorkerState(str, enum.Enum):
    STARTING = "starting"
    READY = "ready"
    BUSY = "busy"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass
class _Job:
    id: int
    data: bytes
    options: CutoutOptions
    deadline: float  # loop time
    future: asyncio.Future
    enqueued: float
    started: float | None = None
    abandoned: bool = False  # the client left or its deadline passed while queued

    def fail(self, error: ServiceError) -> None:
        if not self.future.done():
            self.future.set_exception(error)

    def resolve(self, result: Result) -> None:
        if not self.future.done():
            self.future.set_result(result)


@dataclass
class _Slot:
    index: int
    state: WorkerState = WorkerState.STOPPED
    process: BaseProcess | None = None
    conn: Connection | None = None
    exited: asyncio.Future | None = None
    pid: int | None = None
    restarts: int = 0
    last_error: str | None = None
    task: asyncio.Task | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Outcome:
    result: Result
    queue_seconds: float


class WorkerPool:
    def __init__(
        self,
        config: PipelineConfig,
        workers: int = 1,
        queue_size: int = 16,
        timeout_s: float = 30.0,
        kill_grace_s: float = 2.0,
        retry_after_s: int = 1,
        start_timeout_s: float = 300.0,
        log_level: str = "info",
        warm_up: bool = True,
        metrics: Metrics | None = None,
        max_frames: int | None = None,
        start_method: Literal["forkserver", "spawn"] = "forkserver",
        mmap_threshold_bytes: int = 0,
    ) -> None:
        if workers < 1 or queue_size < 0:
            raise ValueError("need at least one worker and a queue size >= 0")
        self.config = config
        self.size = workers
        self.timeout_s = timeout_s
        self.kill_grace_s = kill_grace_s
        self.retry_after_s = retry_after_s
        self.start_timeout_s = start_timeout_s
        self.log_level = log_level
        self.warm_up = warm_up
        self.max_frames = max_frames
        self.mmap_threshold_bytes = mmap_threshold_bytes
        self.metrics = metrics or Metrics()
        self.model_version: str | None = None
        self._queue_size = queue_size
        self._queue: asyncio.Queue[_Job] | None = None
        self._slots = [_Slot(i) for i in range(workers)]
        self._ids = itertools.count(1)
        self._closing = False
        # Workers are forked from a forkserver that has imported the worker's modules once
        # (NumPy, OpenCV, ONNX Runtime: 1-2 s of every start; see preload.py), so a replacement
        # is ready sooner; as with spawn, a worker shares no state with this process (no
        # threads, no event loop).
        self._context: ForkServerContext | SpawnContext
        if start_method == "forkserver":
            self._context = multiprocessing.get_context("forkserver")
            self._context.set_forkserver_preload(["service.workers.preload"])
        else:
            self._context = multiprocessing.get_context("spawn")
        # Blocking pipe reads and writes run here, off the event loop.
        self._io = ThreadPoolExecutor(max_workers=2 * workers + 2, thread_name_prefix="cutout-io")

    # ---- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        # Unbounded as an object: `submit` enforces the bound (waiting jobs <= queue_size plus
        # the idle workers about to take them, so a burst never finds a free worker "full").
        self._queue = asyncio.Queue()
        self.metrics.workers.set(self.size)
        for slot in self._slots:
            slot.task = asyncio.create_task(self._run_slot(slot), name=f"worker-slot-{slot.index}")

    async def stop(self, grace_s: float = 10.0) -> None:
        """Stop taking work, let in-flight jobs finish (up to grace_s), then stop the workers."""
        self._closing = True
        if self._queue is not None:
            while not self._queue.empty():
                self._queue.get_nowait().fail(Unavailable("the service is shutting down",
                                                          self.retry_after_s))
        end = time.monotonic() + grace_s
        while any(s.state is WorkerState.BUSY for s in self._slots) and time.monotonic() < end:
            await asyncio.sleep(0.05)
        for slot in self._slots:
            if slot.task is not None:
                slot.task.cancel()
        for slot in self._slots:
            if slot.task is not None:
                try:
                    await slot.task
                except asyncio.CancelledError:
                    pass
                except Exception:
                    log.exception("worker slot %d failed while stopping", slot.index)
            await self._stop_slot(slot)
        self._io.shutdown(wait=False, cancel_futures=True)

    # ---- public state ------------------------------------------------------------------------
    @property
    def ready(self) -> bool:
        return not self._closing and all(
            s.state in (WorkerState.READY, WorkerState.BUSY) for s in self._slots)

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize() if self._queue is not None else 0

    def status(self) -> list[dict]:
        return [{"index": s.index, "state": s.state.value, "pid": s.pid, "restarts": s.restarts,
                 "last_error": s.last_error} for s in self._slots]

    def worker_pids(self) -> list[int | None]:
        return [s.pid for s in self._slots]

    # ---- requests ----------------------------------------------------------------------------
    async def submit(self, data: bytes, options: CutoutOptions) -> Outcome:
        if self._closing or self._queue is None:
            raise Unavailable("the service is shutting down", self.retry_after_s)
        loop = asyncio.get_running_loop()
        now = loop.time()
        job = _Job(next(self._ids), data, options, now + self.timeout_s, loop.create_future(), now)
        idle = sum(s.state is WorkerState.READY for s in self._slots)
        if self._queue.qsize() >= self._queue_size + idle:
            raise QueueFull(
                f"all {self.size} workers are busy and {self._queue_size} requests are waiting; "
                "retry shortly", self.retry_after_s, self.size + self._queue_size)
        self._queue.put_nowait(job)
        self.metrics.queue_depth.set(self._queue.qsize())
        try:
            # The slot answers by the deadline once it has the job; this bound covers the queue.
            result = await asyncio.wait_for(asyncio.shield(job.future),
                                            self.timeout_s + self.kill_grace_s)
        except TimeoutError:
            job.abandoned = True
            raise DeadlineExceeded(
                f"no answer within the {self.timeout_s:g} s request deadline") from None
        except asyncio.CancelledError:
            job.abandoned = True
            raise
        started = job.started if job.started is not None else job.enqueued
        return Outcome(result, started - job.enqueued)

    # ---- slots -------------------------------------------------------------------------------
    async def _run_slot(self, slot: _Slot) -> None:
        backoff = 0.5
        held: _Job | None = None
        while not self._closing:
            if not await self._spawn(slot):
                self.metrics.worker_restarts.labels("setup_failed").inc()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2.0, 30.0)
                continue
            backoff = 0.5
            reason, held = await self._serve(slot, held)
            await self._retire(slot)
            if self._closing:
                break
            slot.restarts += 1
            self.metrics.worker_restarts.labels(reason).inc()
            log.warning("worker %d (%s) replaced", slot.index, reason)

    async def _spawn(self, slot: _Slot) -> bool:
        loop = asyncio.get_running_loop()
        slot.state = WorkerState.STARTING
        self._update_gauges()
        parent_conn, child_conn = self._context.Pipe(duplex=True)
        process = self._context.Process(
            target=worker_main, name=f"cutout-worker-{slot.index}", daemon=True,
            args=(child_conn, self.config, slot.index, self.log_level, self.warm_up,
                  self.max_frames, self.mmap_threshold_bytes))
        await loop.run_in_executor(self._io, process.start)
        child_conn.close()  # so the parent sees EOF when the worker dies
        slot.process, slot.conn, slot.pid = process, parent_conn, process.pid
        slot.exited = loop.create_future()
        loop.add_reader(process.sentinel, self._on_exit, slot.exited)
        reader = _observed(loop.run_in_executor(self._io, parent_conn.recv))
        done, _ = await asyncio.wait({reader}, timeout=self.start_timeout_s)
        message: object = None
        if done:
            try:
                message = reader.result()
            except (EOFError, OSError) as exc:
                await asyncio.wait({slot.exited}, timeout=EXIT_WAIT_S)
                message = SetupFailed(f"worker {exit_status(process)} during start-up "
                                      f"({exc.__class__.__name__})")
        if isinstance(message, Ready):
            slot.state, slot.last_error = WorkerState.READY, None
            self.model_version = message.model_version
            log.info("worker %d ready (pid %d, %.1f s)", slot.index, message.pid, message.setup_s)
            self._update_gauges()
            return True
        error = message.message if isinstance(message, SetupFailed) else "start-up timed out"
        slot.state, slot.last_error = WorkerState.FAILED, error
        log.error("worker %d failed to start: %s", slot.index, error)
        if not done:
            self._kill(slot)
            await asyncio.wait({reader})
        await self._retire(slot)
        self._update_gauges()
        return False

    @staticmethod
    def _on_exit(exited: asyncio.Future) -> None:
        if not exited.done():
            exited.set_result(True)

    async def _take(self, slot: _Slot) -> _Job:
        assert self._queue is not None
        job = await self._queue.get()
        # In the same step as the dequeue: the job leaves the queue and the slot stops counting
        # as idle together. Marked later (after this task's result reached the slot), `submit`
        # saw a shorter queue beside the same idle count mid-burst and admitted too many.
        slot.state = WorkerState.BUSY
        return job

    async def _next_job(self, slot: _Slot) -> _Job | None:
        """The next live job, or None when the worker died while idle."""
        assert self._queue is not None and slot.exited is not None
        while True:
            slot.state = WorkerState.READY
            getter = asyncio.ensure_future(self._take(slot))
            done, _ = await asyncio.wait({getter, slot.exited},
                                         return_when=asyncio.FIRST_COMPLETED)
            if getter not in done:
                getter.cancel()
                return None
            job = getter.result()
            self.metrics.queue_depth.set(self._queue.qsize())
            if job.abandoned or job.future.done():
                continue
            return job

    async def _serve(self, slot: _Slot, held: _Job | None) -> tuple[str, _Job | None]:
        """Feed the worker until it dies or must be killed; returns (reason, job to retry)."""
        loop = asyncio.get_running_loop()
        assert slot.conn is not None and slot.exited is not None
        while not self._closing:
            job = held or await self._next_job(slot)
            held = None
            if job is None or slot.exited.done():
                # Died while idle (or between taking a job and sending it: the job is retried).
                slot.state = WorkerState.STARTING
                self._update_gauges()
                return "died_idle", job
            remaining = job.deadline - loop.time()
            if remaining <= 0:
                job.fail(DeadlineExceeded("the request waited in the queue past its deadline"))
                continue
            job.started = loop.time()
            slot.state = WorkerState.BUSY
            self._update_gauges()
            try:
                reason = await self._exchange(slot, job, remaining)
            finally:
                slot.state = WorkerState.READY
                self._update_gauges()
            if reason is not None:
                slot.state = WorkerState.STARTING  # being replaced: neither idle nor ready
                self._update_gauges()
                return reason, None
        return "stopped", None

    async def _exchange(self, slot: _Slot, job: _Job, remaining: float) -> str | None:
        """Send one job and answer it; returns a reason when the worker must be replaced."""
        loop = asyncio.get_running_loop()
        assert slot.conn is not None
        try:
            await loop.run_in_executor(
                self._io, slot.conn.send, Job(job.id, job.data, job.options, remaining))
        except (OSError, ValueError):
            job.fail(WorkerCrashed("the worker died before taking this request; retry"))
            return "crashed"
        log.debug("job %d -> worker %d (pid %s), %.2f s left", job.id, slot.index, slot.pid,
                  remaining)
        reader = _observed(loop.run_in_executor(self._io, slot.conn.recv))
        try:
            done, _ = await asyncio.wait({reader}, timeout=remaining)
        except asyncio.CancelledError:  # the pool is stopping
            job.fail(Unavailable("the service is shutting down", self.retry_after_s))
            raise
        if not done:
            job.fail(DeadlineExceeded(
                f"processing took longer than the {self.timeout_s:g} s request deadline"))
            # The worker aborts its own inference at the deadline; give it a moment to say so.
            done, _ = await asyncio.wait({reader}, timeout=self.kill_grace_s)
            if not done:
                log.warning("worker %d still busy %.1f s past a deadline: killing it",
                            slot.index, self.kill_grace_s)
                self._kill(slot)
                await asyncio.wait({reader})
                return "deadline_kill"
        log.debug("job %d <- worker %d: %s", job.id, slot.index,
                  type(reader.exception() or reader.result()).__name__)
        try:
            reply = reader.result()
        except (EOFError, OSError):
            if slot.exited is not None:  # reaped, so that its exit status can be told
                await asyncio.wait({slot.exited}, timeout=EXIT_WAIT_S)
            job.fail(WorkerCrashed(
                f"worker {exit_status(slot.process)} while processing this image; it is being "
                "replaced, other requests are unaffected"))
            return "crashed"
        if isinstance(reply, Done) and reply.job_id == job.id:
            job.resolve(reply.result)
        elif isinstance(reply, Failed) and reply.job_id == job.id:
            job.fail(from_code(reply.code, reply.message))
        else:  # a worker that answers out of turn cannot be trusted with the next request
            job.fail(WorkerCrashed("the worker answered out of turn; it is being replaced"))
            self._kill(slot)
            return "protocol_error"
        return None

    # ---- processes ---------------------------------------------------------------------------
    @staticmethod
    def _kill(slot: _Slot) -> None:
        if slot.process is not None and slot.process.pid is not None:
            try:
                os.kill(slot.process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    async def _retire(self, slot: _Slot, join_s: float = 0.5) -> None:
        """Make sure the slot's process is gone (killing it if it lingers); close its handles."""
        loop = asyncio.get_running_loop()
        process, conn = slot.process, slot.conn
        slot.process, slot.conn = None, None
        if process is not None:
            loop.remove_reader(process.sentinel)
            await loop.run_in_executor(self._io, _join_or_kill, process, join_s)
        if conn is not None:
            conn.close()

    async def _stop_slot(self, slot: _Slot) -> None:
        if slot.conn is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(self._io, slot.conn.send, STOP)
            except (OSError, ValueError):
                pass
        await self._retire(slot, join_s=2.0)
        slot.state = WorkerState.STOPPED

    def _update_gauges(self) -> None:
        states = [s.state for s in self._slots]
        self.metrics.workers_busy.set(states.count(WorkerState.BUSY))
        self.metrics.workers_ready.set(states.count(WorkerState.READY) +
                                       states.count(WorkerState.BUSY))


def _observed(future: asyncio.Future) -> asyncio.Future:
    """A pipe read may end in an error after nobody waits for it (pool stopping): retrieve it
    so asyncio does not log it as lost."""
    future.add_done_callback(lambda f: f.cancelled() or f.exception())
    return future


def _join_or_kill(process: BaseProcess, join_s: float) -> None:
    process.join(timeout=join_s)
    if process.is_alive():
        try:
            os.kill(process.pid, signal.SIGKILL)  # type: ignore[arg-type]
        except ProcessLookupError:
            pass
        process.join(timeout=5.0)


def exit_status(process: BaseProcess | None) -> str:
    """How a worker ended, in words: "killed by SIGKILL" (the OOM killer's signal, or an
    operator's), "exited with code 1", or "ended (status unknown)" when it is not reaped yet."""
    code = None if process is None else process.exitcode
    if code is None:
        return "ended (status unknown)"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exited with code {code}"
