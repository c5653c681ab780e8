"""Helpers for tests that run the installed `cutout` command (no tests here): `cutout serve` as
a user starts it, in a folder of the test's choosing, on a free loopback port."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


def cutout_command() -> list[str]:
    """The installed `cutout` script beside this interpreter (what a user runs)."""
    script = Path(sys.executable).with_name("cutout")
    return [str(script)] if script.is_file() else [sys.executable, "-m", "service.cli"]


def clean_env(**extra: str) -> dict[str, str]:
    """This environment without any CUTOUT_ setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CUTOUT_")}
    return {**env, **extra}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def cutout_serve(cwd: Path, *flags: str, ready_within_s: float = 240.0) -> Iterator[str]:
    """`cutout serve` started in `cwd` with the default (bundled) models; its URL once /readyz
    answers 200. Stopped (SIGTERM) on leaving."""
    port = free_port()
    server = subprocess.Popen([*cutout_command(), "serve", "--port", str(port), *flags],
                              cwd=cwd, env=clean_env(), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        end, status = time.monotonic() + ready_within_s, None
        while time.monotonic() < end and server.poll() is None:
            try:
                status = httpx.get(f"{url}/readyz", timeout=5).status_code
                if status == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.25)
        if status != 200:
            server.terminate()
            output = server.communicate(timeout=60)[0]
            raise RuntimeError(f"cutout serve not ready (last /readyz: {status}):\n{output}")
        yield url
    finally:
        if server.poll() is None:
            server.terminate()
            server.wait(timeout=60)
