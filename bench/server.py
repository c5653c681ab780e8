"""Shared by the benchmarks: start `cutout serve` on a free loopback port, wait for /readyz,
and read the workers' resident memory (pids from /readyz, whatever process forked them)."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

REPO = Path(__file__).resolve().parents[1]


def server_env(items: list[str]) -> dict[str, str]:
    """`--env NAME=VALUE` arguments as CUTOUT_NAME=VALUE environment entries for the server."""
    env = {}
    for item in items:
        name, _, value = item.partition("=")
        name = name.upper()
        env[name if name.startswith("CUTOUT_") else f"CUTOUT_{name}"] = value
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(models: Path, workers: int, threads: int | None, *, queue: int = 64,
                 timeout_s: int = 120, extra: list[str] | None = None,
                 env: dict[str, str] | None = None, ready_within_s: float = 300
                 ) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port",
               str(port), "--model-dir", str(models), "--workers", str(workers),
               "--queue-size", str(queue), "--timeout", str(timeout_s), "--log-level", "warning",
               *(extra or [])]
    if threads:
        command += ["--threads", str(threads)]
    process = subprocess.Popen(command, cwd=REPO, env={**os.environ, **(env or {})})
    url = f"http://127.0.0.1:{port}"
    end = time.monotonic() + ready_within_s
    with httpx.Client(base_url=url, timeout=5) as client:
        while time.monotonic() < end:
            if process.poll() is not None:
                raise SystemExit(f"the server exited with code {process.returncode}")
            try:
                if client.get("/readyz").status_code == 200:
                    return process, url
            except httpx.TransportError:
                pass
            time.sleep(0.2)
    process.terminate()
    raise SystemExit(f"the server did not become ready in {ready_within_s:.0f} s")


def worker_pids(url: str) -> list[int]:
    return [w["pid"] for w in httpx.get(f"{url}/readyz", timeout=10).json()["workers"]]


def rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")
