"""Soak: many requests of mixed sizes and outputs against a real server; nothing lost, nothing
mixed up, worker memory flat.

    python -m bench.soak [--models models] [--requests 2000] [--concurrency 16]
                         [--min-mp 0.3] [--max-mp 12] [--workers 1] [--env ORT_MEM_ARENA=false]

It starts `cutout serve` on 127.0.0.1 (a free port, queue deep enough for the concurrency),
then sends `--warmup` requests, reads each worker's RSS (/proc), sends `--requests` more from
`--concurrency` clients and reads the RSS again. Each request is a photo (CCP, or a synthetic
scene when the folder is missing) resized to a size no other request has (0.3-12 MP, log-uniform)
and sent as JPEG, PNG or WebP, asking for one of several outputs (RGBA PNG, WebP, alpha, mask,
JPEG on a colour, zip, or through the remove.bg route). Every answer is checked against its own
request: status 200, the `X-Input-Width/Height` headers and the decoded result's size equal that
request's unique size, and the media type / mode match the output asked for. A benchmark, not a
test: it prints status counts, lost and mismatched answers, p50/p95/p99 latency, RSS at start and
end and the verdict (exit code 1 if anything was lost or mixed up, or RSS grew by 10 % or more).
"""
from __future__ import annotations

import argparse
import io
import json
import math
import os
import random
import statistics
import sys
import threading
import time
import zipfile
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import cv2
import httpx
import numpy as np
from PIL import Image

from bench.server import REPO, percentile, rss_mib, server_env, start_server, worker_pids

DEFAULT_MODELS = Path("models")  # relative: printed and stored as given
DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "ccp_fashion" / "image"
RSS_GROWTH_LIMIT = 0.10

# (route, query / form fields, expected media type, expected PIL mode)
OUTPUTS = [
    ("/v1/cutout", {}, "image/png", "RGBA"),
    ("/v1/cutout", {"format": "webp"}, "image/webp", "RGBA"),
    ("/v1/cutout", {"output": "alpha"}, "image/png", "L"),
    ("/v1/cutout", {"output": "mask"}, "image/png", "L"),
    ("/v1/cutout", {"format": "jpeg", "bg_color": "81d4fa"}, "image/jpeg", "RGB"),
    ("/v1/cutout", {"format": "zip"}, "application/zip", None),
    ("/v1.0/removebg", {"size": "full", "format": "png"}, "image/png", "RGBA"),
]
INPUT_FORMATS = [
    ("JPEG", {"quality": 90}),
    ("JPEG", {"quality": 90}),
    ("PNG", {"compress_level": 1}),
    ("WEBP", {"quality": 85, "method": 0}),
]


@dataclass(frozen=True)
class Plan:
    index: int
    photo: int
    width: int
    height: int
    output: int
    input_format: int


def plan_requests(count: int, photos: list[np.ndarray], min_mp: float, max_mp: float,
                  seed: int, taken: set[tuple[int, int]]) -> list[Plan]:
    """Sizes log-uniform in [min_mp, max_mp], each (width, height) used once in the whole run:
    the size is the request's marker."""
    rng = random.Random(seed)
    plans = []
    for index in range(count):
        photo = rng.randrange(len(photos))
        h0, w0 = photos[photo].shape[:2]
        mp = math.exp(rng.uniform(math.log(min_mp), math.log(max_mp)))
        width = max(16, round(math.sqrt(mp * 1e6 * w0 / h0)))
        height = max(16, round(width * h0 / w0))
        while (width, height) in taken:
            width += 1
        taken.add((width, height))
        plans.append(Plan(index, photo, width, height, rng.randrange(len(OUTPUTS)),
                          rng.randrange(len(INPUT_FORMATS))))
    return plans


def make_image(plan: Plan, photos: list[np.ndarray]) -> bytes:
    rgb = cv2.resize(photos[plan.photo], (plan.width, plan.height),
                     interpolation=cv2.INTER_LINEAR)
    fmt, params = INPUT_FORMATS[plan.input_format]
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, fmt, **params)
    return buffer.getvalue()


def load_photos(folder: Path, count: int) -> list[np.ndarray]:
    """Photos at up to 4000 px (upscaled per request when a size needs more)."""
    files = sorted(p for p in folder.iterdir()
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png")) if folder.is_dir() else []
    if not files:
        print(f"no photos in {folder}: using synthetic scenes")
        return [synthetic_scene(i) for i in range(count)]
    picked = files[:: max(1, len(files) // count)][:count]
    return [np.asarray(Image.open(p).convert("RGB")) for p in picked]


def synthetic_scene(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    h, w = 900, 600
    yy, xx = np.mgrid[0:h, 0:w]
    image = np.empty((h, w, 3), np.uint8)
    image[...] = rng.integers(150, 255, 3)
    inside = ((xx - w / 2) / (w / 4)) ** 2 + ((yy - h / 2) / (h / 3)) ** 2 <= 1
    image[inside] = rng.integers(0, 120, 3)
    return image


# ---- the server ----------------------------------------------------------------------------------
class RssSampler(threading.Thread):
    """Peak RSS of the workers while the soak runs."""

    def __init__(self, pids: list[int]) -> None:
        super().__init__(daemon=True)
        self.pids = pids
        self.peak = {pid: 0.0 for pid in pids}
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.wait(0.5):
            for pid in self.pids:
                try:
                    self.peak[pid] = max(self.peak[pid], rss_mib(pid))
                except OSError:
                    pass


# ---- requests ------------------------------------------------------------------------------------
@dataclass
class Answer:
    status: int | str  # HTTP status, or the exception's name when lost
    seconds: float
    problem: str | None  # what did not match the request


def send(client: httpx.Client, plan: Plan, photos: list[np.ndarray]) -> Answer:
    data = make_image(plan, photos)
    route, fields, media_type, mode = OUTPUTS[plan.output]
    start = time.perf_counter()
    try:
        if route == "/v1/cutout":
            response = client.post(route, content=data, params=fields)
        else:
            response = client.post(route, files={"image_file": ("photo", data)}, data=fields)
    except httpx.HTTPError as exc:
        return Answer(type(exc).__name__, time.perf_counter() - start, None)
    seconds = time.perf_counter() - start
    if response.status_code != 200:
        return Answer(response.status_code, seconds, None)
    return Answer(200, seconds, check(response, plan, media_type, mode))


def check(response: httpx.Response, plan: Plan, media_type: str, mode: str | None) -> str | None:
    size = (plan.width, plan.height)
    headers = (int(response.headers.get("x-input-width", -1)),
               int(response.headers.get("x-input-height", -1)))
    if headers != size:
        return f"request {plan.index}: sent {size}, headers say {headers}"
    if response.headers.get("content-type") != media_type:
        return f"request {plan.index}: {response.headers.get('content-type')} for {media_type}"
    body = response.content
    if media_type == "application/zip":
        with zipfile.ZipFile(io.BytesIO(body)) as archive:
            body = archive.read("alpha.png")
        mode = "L"
    with Image.open(io.BytesIO(body)) as image:  # the header only: size and mode
        if image.size != size or (mode and image.mode != mode):
            return f"request {plan.index}: sent {size}, got {image.size} {image.mode}"
    return None


def run(url: str, plans: list[Plan], photos: list[np.ndarray], concurrency: int) -> list[Answer]:
    local = threading.local()

    def one(plan: Plan) -> Answer:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=url, timeout=900)
        return send(local.client, plan, photos)

    with ThreadPoolExecutor(concurrency) as pool:
        return list(pool.map(one, plans))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=DEFAULT_MODELS)
    parser.add_argument("--images-dir", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--photos", type=int, default=8, help="distinct photos resized")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=None,
                        help="requests before the first RSS reading (default: 5 %%, >= 16)")
    parser.add_argument("--min-mp", type=float, default=0.3)
    parser.add_argument("--max-mp", type=float, default=12.0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="server setting, e.g. --env ORT_MEM_ARENA=false")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    args = parser.parse_args(argv)
    env = server_env(args.env)
    if not (args.models / "spec.json").is_file():
        raise SystemExit(f"{args.models} has no spec.json: pass --models")

    photos = load_photos(args.images_dir, args.photos)
    warmup = args.warmup if args.warmup is not None else max(16, args.requests // 20)
    taken: set[tuple[int, int]] = set()
    warm_plans = plan_requests(warmup, photos, args.min_mp, args.max_mp, args.seed + 1, taken)
    plans = plan_requests(args.requests, photos, args.min_mp, args.max_mp, args.seed, taken)
    print(f"soak: {args.requests} requests (+{warmup} warm-up) at concurrency "
          f"{args.concurrency}, {args.min_mp}-{args.max_mp} MP, {len(OUTPUTS)} output kinds; "
          f"{args.workers} worker(s); models {args.models}; {os.cpu_count()} CPUs"
          + (f"; env {env}" if env else ""))
    process, url = start_server(args.models, args.workers, args.threads,
                                queue=2 * args.concurrency, timeout_s=600, env=env,
                                ready_within_s=600)
    try:
        pids = worker_pids(url)
        rss_ready = {pid: rss_mib(pid) for pid in pids}
        warm = run(url, warm_plans, photos, args.concurrency)
        rss_start = {pid: rss_mib(pid) for pid in pids}
        sampler = RssSampler(pids)
        sampler.start()
        start = time.perf_counter()
        answers = run(url, plans, photos, args.concurrency)
        wall = time.perf_counter() - start
        sampler.stop.set()
        sampler.join()
        rss_end = {pid: rss_mib(pid) for pid in pids}
        pids_after = worker_pids(url)
    finally:
        process.terminate()
        process.wait(timeout=120)

    statuses = Counter(str(a.status) for a in answers)
    lost = [a for a in answers if not isinstance(a.status, int)]
    mismatched = [a.problem for a in answers if a.problem]
    ok = [a.seconds for a in answers if a.status == 200]
    warm_failed = sum(a.status != 200 for a in warm)
    growth = {pid: rss_end[pid] / rss_start[pid] - 1.0 for pid in pids}
    print(f"status counts: {dict(sorted(statuses.items()))}; lost {len(lost)}; mismatched "
          f"{len(mismatched)}; warm-up failures {warm_failed}")
    for problem in mismatched[:5]:
        print("  mismatch:", problem)
    print(f"latency (200s): p50 {percentile(ok, 50):.2f} s, p95 {percentile(ok, 95):.2f} s, "
          f"p99 {percentile(ok, 99):.2f} s, mean {statistics.fmean(ok) if ok else 0:.2f} s; "
          f"throughput {len(answers) / wall:.2f} req/s over {wall:.0f} s")
    for pid in pids:
        print(f"worker {pid}: RSS {rss_ready[pid]:.0f} MiB ready, {rss_start[pid]:.0f} MiB after "
              f"warm-up (start), {rss_end[pid]:.0f} MiB at the end, peak "
              f"{sampler.peak[pid]:.0f} MiB; growth {100 * growth[pid]:+.1f} %")
    replaced = set(pids) != set(pids_after)
    if replaced:
        print(f"workers were replaced during the run: {pids} -> {pids_after}")
    passed = (not lost and not mismatched and statuses.get("200", 0) == len(answers)
              and not replaced and all(g < RSS_GROWTH_LIMIT for g in growth.values()))
    print("verdict:", "PASS" if passed else "FAIL",
          f"(all 200, 0 lost, 0 mismatched, RSS growth < {100 * RSS_GROWTH_LIMIT:.0f} %)")
    if args.json:
        args.json.write_text(json.dumps({
            "requests": len(answers), "concurrency": args.concurrency, "statuses": statuses,
            "lost": len(lost), "mismatched": len(mismatched), "p50_s": percentile(ok, 50),
            "p95_s": percentile(ok, 95), "p99_s": percentile(ok, 99), "wall_s": wall,
            "rss_start_mib": rss_start, "rss_end_mib": rss_end, "rss_peak_mib": sampler.peak,
            "env": env, "passed": passed}, indent=2, default=str))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
