"""Messages between the pool (parent) and a worker process, sent over a multiprocessing Pipe."""
from __future__ import annotations

from dataclasses import dataclass

from ..pipeline import CutoutOptions, Result


@dataclass(frozen=True)
class Job:
    id: int
    data: bytes
    options: CutoutOptions
    budget_s: float | None  # time left for this request when it was sent


@dataclass(frozen=True)
class Ready:
    pid: int
    model_version: str
    setup_s: float


@dataclass(frozen=True)
class SetupFailed:
    message: str


@dataclass(frozen=True)
class Done:
    job_id: int
    result: Result


@dataclass(frozen=True)
class Failed:
    job_id: int
    code: str
    message: str


STOP = None  # parent -> worker: finish and exit
