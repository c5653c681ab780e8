"""End-to-end latency of the cutout service through HTTP at 1500 px, and the ISNet peer model
timed on the same images in the same run.

    python -m bench.latency [--models models] [--images 12] [--workers 1] [--threads 2]
                            [--serve-arg=--tile-size=256 ...] [--env MATTING_SIDE=640 ...]
                            [--json out.json] [--plot docs/latency_stages.png]

It starts `cutout serve` on 127.0.0.1 (a free port) with the models in --models, waits for
/readyz, then posts CCP photos upscaled to a 1500 px long side (JPEG, quality 92) from 1 and from
4 concurrent clients, and reports p50 / p95 latency, throughput and the mean time per stage
(from the Server-Timing headers). The ISNet peer (.cache/peers/isnet.onnx, via bench.peers when
present, else plain ONNX Runtime) is timed on the same decoded images, with the server stopped so
each side has the whole machine; the ratio peer / ours is printed. The resident memory (RSS) of
each worker process is read from /proc after each load level. --env sets CUTOUT_<NAME> settings
for the server (any setting, e.g. --env MATTING_SIDE=640); --plot draws the stages (Pillow).
"""
from __future__ import annotations

import argparse
import io
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import httpx
import numpy as np
from PIL import Image

from bench.server import REPO, percentile, rss_mib, server_env, start_server, worker_pids

DEFAULT_IMAGES = REPO.parent / "shared" / "data" / "ccp_fashion" / "image"
ISNET = REPO / ".cache" / "peers" / "isnet.onnx"
SIDE = 1500


def load_images(folder: Path, count: int, side: int = SIDE) -> list[tuple[np.ndarray, bytes]]:
    """(RGB at `side` long side, its JPEG bytes) for `count` photos spread over the folder."""
    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    if not files:
        raise SystemExit(f"no images in {folder}")
    picked = files[:: max(1, len(files) // count)][:count]
    images = []
    for path in picked:
        image = Image.open(path).convert("RGB")
        scale = side / max(image.size)
        size = (round(image.width * scale), round(image.height * scale))
        image = image.resize(size, Image.LANCZOS)
        buffer = io.BytesIO()
        image.save(buffer, "JPEG", quality=92)
        images.append((np.asarray(image), buffer.getvalue()))
    return images


# ---- our service -----------------------------------------------------------------------------
def parse_timing(header: str) -> dict[str, float]:
    stages = {}
    for part in header.split(","):
        name, _, duration = part.strip().partition(";dur=")
        if duration:
            stages[name] = float(duration) / 1000.0
    return stages


def run_clients(url: str, payloads: list[bytes], concurrency: int, rounds: int) -> dict:
    jobs = [payloads[i % len(payloads)] for i in range(len(payloads) * rounds)]
    latencies: list[float] = []
    stages: dict[str, list[float]] = {}

    def one(client: httpx.Client, data: bytes) -> None:
        start = time.perf_counter()
        response = client.post("/v1/cutout", content=data,
                               headers={"Content-Type": "image/jpeg"})
        elapsed = time.perf_counter() - start
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        latencies.append(elapsed)
        for name, seconds in parse_timing(response.headers.get("server-timing", "")).items():
            stages.setdefault(name, []).append(seconds)

    clients = [httpx.Client(base_url=url, timeout=300) for _ in range(concurrency)]
    try:
        one(clients[0], payloads[0])  # warm the connection and the caches
        latencies.clear()
        stages.clear()
        start = time.perf_counter()
        with ThreadPoolExecutor(concurrency) as pool:
            for future in [pool.submit(one, clients[i % concurrency], data)
                           for i, data in enumerate(jobs)]:
                future.result()
        wall = time.perf_counter() - start
    finally:
        for client in clients:
            client.close()
    return {"concurrency": concurrency, "requests": len(jobs),
            "p50_s": percentile(latencies, 50), "p95_s": percentile(latencies, 95),
            "mean_s": statistics.fmean(latencies), "throughput_img_s": len(jobs) / wall,
            "stages_mean_s": {k: statistics.fmean(v) for k, v in stages.items()}}


def process_rss(server_pid: int, url: str) -> dict[str, float]:
    """RSS (MiB) of the server and of each worker (pids from /readyz)."""
    rss = {"server": rss_mib(server_pid)}
    for index, pid in enumerate(sorted(worker_pids(url))):
        rss[f"worker{index}"] = rss_mib(pid)
    return rss


# ---- the ISNet peer --------------------------------------------------------------------------
class _PlainIsnet:
    """ISNet without bench.peers: 1024 x 1024 input, (x / 255 - 0.5) / 1, first output."""

    def __init__(self, path: Path, threads: int) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(path), options,
                                            providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        x = cv2.resize(rgb, (1024, 1024), interpolation=cv2.INTER_LINEAR)
        x = (x.astype(np.float32) / 255.0 - 0.5).transpose(2, 0, 1)[None]
        mask = self.session.run(None, {self.input_name: np.ascontiguousarray(x)})[0]
        mask = mask.reshape(mask.shape[-2], mask.shape[-1]).astype(np.float32)
        return cv2.resize(mask, (rgb.shape[1], rgb.shape[0]), interpolation=cv2.INTER_LINEAR)


def load_peer(path: Path, threads: int):
    try:
        from bench.peers import IsnetPeer
    except ImportError:
        return _PlainIsnet(path, threads), "onnxruntime (bench.latency)"
    return IsnetPeer(path, threads=threads), "bench.peers.IsnetPeer"


def time_peer(path: Path, images: list[np.ndarray], threads: int, rounds: int) -> dict | None:
    if not path.is_file():
        print(f"ISNet peer: {path} not found (python -m bench.peers assembles it); skipped")
        return None
    peer, loader = load_peer(path, threads)
    peer.predict(images[0])  # warm-up
    times = []
    for _ in range(rounds):
        for rgb in images:
            start = time.perf_counter()
            peer.predict(rgb)
            times.append(time.perf_counter() - start)
    return {"loader": loader, "threads": threads, "runs": len(times),
            "p50_s": percentile(times, 50), "p95_s": percentile(times, 95)}


# ---- report ----------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=REPO / "models")
    parser.add_argument("--images-dir", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--images", type=int, default=12, help="photos used")
    parser.add_argument("--rounds", type=int, default=1, help="passes over the photos per test")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None, help="per worker (default: cores"
                        " / workers)")
    parser.add_argument("--peer", type=Path, default=ISNET)
    parser.add_argument("--peer-threads", type=int, default=len(os.sched_getaffinity(0)))
    parser.add_argument("--serve-arg", action="append", default=[],
                        help="extra `cutout serve` flag, e.g. --serve-arg=--tile-size=256")
    parser.add_argument("--env", action="append", default=[], metavar="NAME=VALUE",
                        help="server setting as CUTOUT_NAME=VALUE, e.g. --env MATTING_SIDE=640")
    parser.add_argument("--label", default=None, help="name of this run in the JSON / plot")
    parser.add_argument("--skip-peer", action="store_true", help="do not time ISNet")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--plot", type=Path, help="write a per-stage latency PNG here")
    args = parser.parse_args(argv)
    env = server_env(args.env)

    if not (args.models / "spec.json").is_file():
        raise SystemExit(f"{args.models} has no spec.json: export models first (python -m "
                         "model_export.export ...) or pass --models")
    images = load_images(args.images_dir, args.images)
    print(f"{len(images)} CCP photos at {SIDE} px long side; {os.cpu_count()} CPUs "
          f"({platform.processor() or platform.machine()}); models {args.models}")

    peer = None if args.skip_peer else time_peer(args.peer, [rgb for rgb, _ in images],
                                                 args.peer_threads, args.rounds)
    process, url = start_server(args.models, args.workers, args.threads, extra=args.serve_arg,
                                env=env)
    try:
        ours = []
        for concurrency in (1, 4):
            ours.append(run_clients(url, [jpeg for _, jpeg in images], concurrency, args.rounds))
            ours[-1]["rss_mib"] = process_rss(process.pid, url)
    finally:
        process.terminate()
        process.wait(timeout=60)

    settings = " ".join([*args.serve_arg, *(f"{k}={v}" for k, v in env.items())])
    print(f"\nours (HTTP end to end, {args.workers} worker(s), {settings})")
    print(f"{'clients':>8} {'p50 s':>8} {'p95 s':>8} {'img/s':>8}")
    for row in ours:
        print(f"{row['concurrency']:>8} {row['p50_s']:>8.3f} {row['p95_s']:>8.3f} "
              f"{row['throughput_img_s']:>8.2f}")
    print("mean per stage at 1 client (ms): " + ", ".join(
        f"{k} {v * 1000:.0f}" for k, v in ours[0]["stages_mean_s"].items()))
    print("RSS after 4 clients (MiB): " + ", ".join(
        f"{k} {v:.0f}" for k, v in ours[-1]["rss_mib"].items()))
    label = args.label or f"ours, {args.workers} worker(s) {settings}".strip()
    report = {"label": label, "side": SIDE, "images": len(images), "workers": args.workers,
              "settings": settings, "load_average": os.getloadavg(), "ours": ours, "peer": peer}
    if peer:
        ratio = peer["p50_s"] / ours[0]["p50_s"]
        report["peer_over_ours_p50"] = ratio
        print(f"\nISNet peer ({peer['loader']}, model only, {peer['threads']} threads): "
              f"p50 {peer['p50_s']:.3f} s, p95 {peer['p95_s']:.3f} s")
        print(f"ratio ISNet p50 / our p50 (1 client): {ratio:.2f}x")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if args.plot:
        from bench.plot_stages import draw, rows_from

        # A scratch file of its own: args.plot's .json sibling may be the --json the user asked for.
        with tempfile.TemporaryDirectory() as scratch:
            tmp = Path(scratch) / "report.json"
            tmp.write_text(json.dumps(report))
            draw(rows_from(tmp), "cutout: mean latency per stage at 1500 px, 1 client (ms)",
                 args.plot)
        print(f"stage plot: {args.plot}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
