"""Faults through real HTTP, beyond tests/service/test_api_ops.py (which covers 504 with the worker
aborting by itself, 503 under a burst, and a killed worker replaced):

- a worker SIGKILLed mid-request while other requests keep flowing: only its request fails, a
  new worker is ready soon after, nobody else notices;
- a worker that cannot stop at the deadline is killed (504, no computing left behind);
- a full queue answers 503 + Retry-After at once (no pile-up of waiting requests) and recovers;
- SIGTERM to `cutout serve`'s process group finishes the work in flight before it exits.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from PIL import Image

from service.config import Settings
from support.service import (
    RED,
    REPO_ROOT,
    WHITE,
    colour_segmenter,
    colour_segmenter_settings,
    encoded,
    post,
    restarts,
    serving,
)

TIMEOUT_S = 6.0
# The issue asks for a replacement worker within 5 s: measured 2-3 s here (forkserver; 5-6 s with
# spawn), on 2 cores shared with two training jobs (docs/reliability.md); the bound is generous so
# that a slow CI machine does not make the test flaky (the test prints the time it measured).
RESTART_BOUND_S = 15.0


@pytest.fixture(scope="module")
def server(random_model_dir, tmp_path_factory):
    segmenter = colour_segmenter(tmp_path_factory.mktemp("seg") / "colour.onnx")
    settings = Settings(model_dir=random_model_dir, workers=2, threads=1, queue_size=1,
                        request_timeout_s=TIMEOUT_S, kill_grace_s=3.0, retry_after_s=3,
                        matting_side=0, **colour_segmenter_settings(segmenter))
    with serving(settings) as live:
        yield live


def wait_for(predicate, timeout: float, what: str) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_sigkill_mid_request_fails_only_that_request(server, slow_image, quick_image):
    server.wait_ready()
    server.wait_idle()
    crashed_before = restarts(server, "crashed")
    with ThreadPoolExecutor(3) as threads:
        doomed = threads.submit(post, server.url, slow_image)
        busy: list[int] = []

        def one_busy() -> bool:
            busy[:] = [w["pid"] for w in server.pool.status() if w["state"] == "busy"]
            return bool(busy)

        wait_for(one_busy, 20, "a worker to take the slow request")
        victim = busy[0]

        def steady_traffic() -> list[int]:  # keeps the other worker busy meanwhile
            return [post(server.url, quick_image).status_code for _ in range(12)]

        others = threads.submit(steady_traffic)
        killed_at = time.monotonic()
        os.kill(victim, signal.SIGKILL)
        response = doomed.result()
        # The replacement: a new pid, loaded, warmed up and ready.
        wait_for(lambda: server.pool.ready and victim not in server.pool.worker_pids(),
                 RESTART_BOUND_S, "the replacement worker")
        replaced_in = time.monotonic() - killed_at
        statuses = others.result()
    assert response.status_code == 500, response.text
    assert response.json()["code"] == "worker_crashed"
    assert "worker killed by SIGKILL" in response.json()["error"]
    assert statuses == [200] * 12, statuses  # no other request failed
    assert restarts(server, "crashed") == crashed_before + 1
    assert not pid_alive(victim)
    print(f"replacement worker ready {replaced_in:.2f} s after SIGKILL")
    assert post(server.url, quick_image).status_code == 200


def test_worker_not_stopping_at_the_deadline_is_killed(server, slow_image, quick_image):
    """A worker that cannot give up at the deadline (here: SIGSTOPped mid-request, as if stuck
    in native code) is killed KILL_GRACE_S later and replaced: the client gets its 504 and no
    process is left computing an answer nobody waits for."""
    server.wait_ready()
    server.wait_idle()
    pool = server.pool
    kills_before = restarts(server, "deadline_kill")
    with ThreadPoolExecutor(1) as threads:
        start = time.monotonic()
        answer = threads.submit(post, server.url, slow_image)
        busy: list[int] = []

        def one_busy() -> bool:
            busy[:] = [w["pid"] for w in pool.status() if w["state"] == "busy"]
            return bool(busy)

        wait_for(one_busy, 20, "a worker to take the slow request")
        os.kill(busy[0], signal.SIGSTOP)
        response = answer.result()
        elapsed = time.monotonic() - start
    assert response.status_code == 504, response.text
    assert response.json()["code"] == "deadline_exceeded"
    assert elapsed < TIMEOUT_S + 5.0
    wait_for(lambda: restarts(server, "deadline_kill") == kills_before + 1, 30, "the kill")
    wait_for(lambda: not pid_alive(busy[0]), 10, "the stuck worker to be gone")
    server.wait_ready(timeout=RESTART_BOUND_S * 2)
    assert busy[0] not in pool.worker_pids()
    assert post(server.url, quick_image).status_code == 200


def test_full_queue_answers_503_at_once_and_recovers(server, slow_image, quick_image):
    server.wait_ready()
    server.wait_idle()
    with ThreadPoolExecutor(16) as threads:
        held = [threads.submit(post, server.url, slow_image) for _ in range(3)]
        # 2 workers busy + 1 waiting = the bound.
        wait_for(lambda: server.pool.queue_depth == 1 and all(
            w["state"] == "busy" for w in server.pool.status()), 20, "a full queue")

        def timed_post(_: int) -> tuple[httpx.Response, float]:
            start = time.monotonic()
            response = post(server.url, quick_image)
            return response, time.monotonic() - start

        burst = list(threads.map(timed_post, range(10)))
        held_statuses = sorted(f.result().status_code for f in held)
    for response, seconds in burst:
        assert response.status_code == 503, response.text
        assert response.headers["retry-after"] == "3"
        assert response.json()["code"] == "unavailable"
        assert seconds < 2.0  # at once: the slow requests ahead of them take seconds each
    assert set(held_statuses) <= {200, 504}  # the held ones are served (or run out of time)
    # The queue drains and the service recovers.
    server.wait_idle()
    assert server.pool.queue_depth == 0
    assert post(server.url, quick_image).status_code == 200


def test_full_queue_answers_429_with_rate_limit_headers_on_removebg(server, slow_image,
                                                                   quick_image):
    """remove.bg clients retry on 429 (not on 503): its route answers a full queue so."""
    server.wait_ready()
    server.wait_idle()
    with ThreadPoolExecutor(8) as threads:
        held = [threads.submit(post, server.url, slow_image) for _ in range(3)]
        wait_for(lambda: server.pool.queue_depth == 1 and all(
            w["state"] == "busy" for w in server.pool.status()), 20, "a full queue")
        with httpx.Client(base_url=server.url, timeout=60) as client:
            before = time.time()
            response = client.post("/v1.0/removebg",
                                   files={"image_file": ("p.png", quick_image, "image/png")})
            cutout = client.post("/v1/cutout", content=quick_image)
        [f.result() for f in held]
    assert response.status_code == 429, response.text
    assert response.json()["errors"][0]["code"] == "rate_limit_exceeded"
    assert response.headers["retry-after"] == "3"
    assert response.headers["x-ratelimit-limit"] == "3"  # 2 workers + 1 waiting
    assert response.headers["x-ratelimit-remaining"] == "0"
    reset = int(response.headers["x-ratelimit-reset"])  # a Unix time, as remove.bg's
    assert before + 3 - 1 <= reset <= time.time() + 3 + 1
    assert cutout.status_code == 503  # our own API keeps 503 + Retry-After
    server.wait_idle()
    ok = httpx.post(f"{server.url}/v1.0/removebg", timeout=60,
                    files={"image_file": ("p.png", quick_image, "image/png")})
    # Served again: the cutout, or (random weights) remove.bg's answer to "no object found".
    assert ok.status_code == 200 or ok.json()["errors"][0]["code"] == "unknown_foreground"


# ---- graceful shutdown -------------------------------------------------------------------------
def squares(side: int) -> bytes:
    """Red and white squares (as conftest's slow_image): for the colour segmenter, an unknown
    band over the whole image."""
    yy, xx = np.mgrid[0:side, 0:side]
    red = ((yy // 24) + (xx // 24)) % 2 == 0
    pixels = np.where(red[..., None], np.array(RED, np.uint8), np.array(WHITE, np.uint8))
    return encoded(Image.fromarray(pixels.astype(np.uint8)), "JPEG", quality=85)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_sigterm_finishes_in_flight_work(random_model_dir, tmp_path):
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    segmenter = colour_segmenter_settings(colour_segmenter(tmp_path / "colour.onnx"))
    env = {**os.environ, "CUTOUT_MATTING_SIDE": "0", "CUTOUT_QUEUE_SIZE": "4",
           "CUTOUT_SEGMENTER_SPEC": str(segmenter["segmenter_spec"])}
    process = subprocess.Popen(
        [sys.executable, "-m", "service.cli", "serve", "--host", "127.0.0.1", "--port",
         str(port), "--model-dir", str(random_model_dir), "--workers", "1", "--threads", "1",
         "--timeout", "60", "--log-level", "warning"], cwd=REPO_ROOT, env=env,
        start_new_session=True)  # its own process group: the SIGTERM goes to all of it
    try:
        with httpx.Client(base_url=url, timeout=5) as client:
            def ready() -> bool:
                assert process.poll() is None, "the server exited"
                try:
                    return client.get("/readyz").status_code == 200
                except httpx.TransportError:
                    return False

            wait_for(ready, 120, "the server")
            worker_pid = client.get("/readyz").json()["workers"][0]["pid"]
        image = squares(700)  # band everywhere: a dense pass over 700 x 700, seconds
        with ThreadPoolExecutor(2) as threads:
            first = threads.submit(post, url, image)
            second = threads.submit(post, url, image)  # waits in the queue
            with httpx.Client(base_url=url, timeout=5) as client:
                wait_for(lambda: client.get("/readyz").json()["queue_depth"] == 1, 30,
                         "one request in flight and one queued")
            # To the whole group (server, forkserver, workers), as systemd or `kill -- -PGID`
            # would: the workers and the forkserver ignore it, the server finishes the work.
            os.killpg(process.pid, signal.SIGTERM)
            answers = [first.result(), second.result()]
        assert [a.status_code for a in answers] == [200, 200], [a.text[:200] for a in answers]
        # uvicorn shuts down gracefully, then re-raises the signal it caught (exit "by SIGTERM").
        assert process.wait(timeout=60) in (0, -signal.SIGTERM)
        wait_for(lambda: not pid_alive(worker_pid), 10, "the worker to exit")
        with pytest.raises(httpx.TransportError):
            httpx.get(f"{url}/healthz", timeout=2)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
