"""ONNX Runtime's CPU arena against input shapes, one graph at a time.

    python -m bench.ort_arena [--models models] [--runs 80] [--graph matting ...]
                              [--policy kept --policy off --policy shrinkage --policy buckets]

Each (graph, policy) runs in a fresh process with the worker's glibc mmap threshold (32 MiB):
one session, one run, then `--runs` runs at shapes drawn as requests make them, then the same
shapes again. It prints the resident memory after the first run, after the new shapes and after
the repeat, and the mean time per run. Shapes: the segmenter at a 448 px long side, the short
side any multiple of 32; the ED graph on the segmenter's unpadded mask (any short side); the
matting net on a dense band box of up to 512 x 512 in multiples of 32. Policies: `kept` (the
arena as ONNX Runtime keeps it), `off` (no arena), `shrinkage` (the arena gives back its unused
regions after each run: the service's default) and `buckets` (the arena kept, every side
rounded up to a multiple of 128 first, as input-size buckets would).
"""
from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

from bench.server import REPO

GRAPHS = ("segmenter", "trimap", "matting")
POLICIES = ("kept", "off", "shrinkage", "buckets")
BUCKET = 128


def draw_shape(graph: str, rng: random.Random) -> tuple[int, int, int, int]:
    if graph == "segmenter":
        short = 32 * rng.randrange(4, 15)
        return (1, 3, 448, short) if rng.random() < 0.5 else (1, 3, short, 448)
    if graph == "trimap":
        short = rng.randrange(120, 449)
        return (1, 1, 448, short) if rng.random() < 0.5 else (1, 1, short, 448)
    return (1, 4, 32 * rng.randrange(4, 17), 32 * rng.randrange(4, 17))


def bucketed(shape: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    n, c, h, w = shape
    return n, c, -(-h // BUCKET) * BUCKET, -(-w // BUCKET) * BUCKET


def rss_mib() -> float:
    return int(Path("/proc/self/statm").read_text().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def child(models: Path, graph: str, policy: str, runs: int, threads: int, seed: int) -> dict:
    import numpy as np
    import onnxruntime as ort

    from service.pipeline.sessions import ARENA_SHRINKAGE
    from service.workers.memory import fix_mmap_threshold

    fix_mmap_threshold(32 << 20)
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.enable_cpu_mem_arena = policy != "off"
    options.log_severity_level = 3
    session = ort.InferenceSession(str(models / f"{graph}.onnx"), options,
                                   providers=["CPUExecutionProvider"])
    run_options = ort.RunOptions()
    if policy == "shrinkage":
        run_options.add_run_config_entry(*ARENA_SHRINKAGE)
    name = session.get_inputs()[0].name
    rng = random.Random(seed)
    shapes = [draw_shape(graph, rng) for _ in range(runs + 1)]
    if policy == "buckets":
        shapes = [bucketed(shape) for shape in shapes]
    data = np.random.default_rng(seed)

    def run(shape: tuple[int, int, int, int]) -> None:
        tensor = data.random(shape, dtype=np.float32)
        if graph == "trimap":
            tensor = (tensor > 0.3).astype(np.float32)
        session.run(None, {name: tensor}, run_options)

    run(shapes[0])
    first = rss_mib()
    start = time.perf_counter()
    for shape in shapes[1:]:
        run(shape)
    seconds = (time.perf_counter() - start) / runs
    after = rss_mib()
    for shape in shapes[1:]:
        run(shape)
    return {"first_run_mib": first, "after_mib": after, "repeat_mib": rss_mib(),
            "ms_per_run": 1000 * seconds, "distinct_shapes": len(set(shapes))}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--runs", type=int, default=80)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--graph", action="append", choices=GRAPHS)
    parser.add_argument("--policy", action="append", choices=POLICIES)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--child", nargs=2, metavar=("GRAPH", "POLICY"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        graph, policy = args.child
        print(json.dumps(child(args.models, graph, policy, args.runs, args.threads, args.seed)))
        return 0
    print(f"ORT arena: {args.runs} runs at drawn shapes, then again; {args.threads} threads; "
          f"models {args.models}; {os.cpu_count()} CPUs")
    results = []
    for graph in args.graph or GRAPHS:
        for policy in args.policy or POLICIES:
            command = [sys.executable, "-m", "bench.ort_arena", "--child", graph, policy,
                       "--models", str(args.models), "--runs", str(args.runs),
                       "--threads", str(args.threads), "--seed", str(args.seed)]
            done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, check=True)
            figures = {"graph": graph, "policy": policy,
                       **json.loads(done.stdout.strip().splitlines()[-1])}
            results.append(figures)
            print(f"{graph:9} {policy:9}: RSS {figures['first_run_mib']:.0f} MiB after one run, "
                  f"{figures['after_mib']:.0f} after {figures['distinct_shapes']} shapes "
                  f"({figures['after_mib'] - figures['first_run_mib']:+.0f}), "
                  f"{figures['repeat_mib']:.0f} after the repeat; "
                  f"{figures['ms_per_run']:.0f} ms/run", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
