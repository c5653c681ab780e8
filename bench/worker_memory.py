"""A worker's memory over many distinct image sizes, per ONNX Runtime arena policy.

    python -m bench.worker_memory [--models models] [--images 300] [--second-pass 100]
                                  [--variant NAME:SETTING=VALUE,...] [--json out.json]

Each variant runs in a fresh process set up as a worker is (the glibc mmap threshold fixed,
`service/workers/memory.py`; one `Pipeline` from the settings, CUTOUT_* plus the variant's
settings; warm-up), which cuts out `--images` photos (CCP, resized log-uniformly between
`--min-mp` and `--max-mp`, each to a size no other image has) in turn, then the first
`--second-pass` sizes again. It prints the resident memory once ready, every 50 images, after the
first pass and after the second, the peak (VmHWM), and the mean time per image. No HTTP: the
figures are the pipeline's alone. Default variants: the arena as before (no shrinkage), the arena
off, and the default (arena shrinkage after every run).
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.server import REPO, server_env

DEFAULT_VARIANTS = [
    "arena kept:ORT_ARENA_SHRINKAGE=false",
    "arena off:ORT_MEM_ARENA=false,ORT_ARENA_SHRINKAGE=false",
    "arena shrinkage (default):",
]


def proc_status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(args: argparse.Namespace) -> dict:
    """One variant, in this process: the settings come from the environment."""
    from bench.soak import load_photos, make_image, plan_requests
    from service.config import Settings
    from service.pipeline import CutoutOptions, Pipeline
    from service.workers.memory import fix_mmap_threshold

    settings = Settings(model_dir=args.models, threads=args.threads)
    fix_mmap_threshold(settings.worker_mmap_threshold_kib * 1024)
    pipeline = Pipeline(settings.pipeline_config())
    pipeline.warm_up()
    photos = load_photos(args.images_dir, args.photos)
    plans = plan_requests(args.images, photos, args.min_mp, args.max_mp, args.seed, set())
    images = [make_image(plan, photos) for plan in plans]  # made first: not in the timing
    rss = {"ready": proc_status_mib("VmRSS")}
    options = CutoutOptions()
    start = time.perf_counter()
    for index, data in enumerate(images, 1):
        pipeline.run(data, options)
        if index % 50 == 0:
            rss[f"after {index}"] = proc_status_mib("VmRSS")
    seconds = (time.perf_counter() - start) / len(images)
    rss["first pass"] = proc_status_mib("VmRSS")
    for data in images[:args.second_pass]:
        pipeline.run(data, options)
    rss["second pass"] = proc_status_mib("VmRSS")
    return {"rss_mib": rss, "peak_mib": proc_status_mib("VmHWM"), "s_per_image": seconds}


def run_variant(spec: str, args: argparse.Namespace) -> dict:
    name, _, settings = spec.partition(":")
    env = server_env([item for item in settings.split(",") if item])
    command = [sys.executable, "-m", "bench.worker_memory", "--child",
               "--models", str(args.models), "--images-dir", str(args.images_dir),
               "--images", str(args.images), "--second-pass", str(args.second_pass),
               "--photos", str(args.photos), "--min-mp", str(args.min_mp),
               "--max-mp", str(args.max_mp), "--threads", str(args.threads),
               "--seed", str(args.seed)]
    done = subprocess.run(command, cwd=REPO, env={**os.environ, **env}, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"variant {name!r} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    return {"variant": name, "env": env, **figures}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--images-dir", type=Path,
                        default=REPO.parent / "shared" / "data" / "ccp_fashion" / "image")
    parser.add_argument("--photos", type=int, default=16, help="distinct photos resized")
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--second-pass", type=int, default=100)
    parser.add_argument("--min-mp", type=float, default=0.1)
    parser.add_argument("--max-mp", type=float, default=2.5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variant", action="append", default=None,
                        metavar="NAME:SETTING=VALUE,...")
    parser.add_argument("--json", type=Path, help="write the figures here too")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return 0
    print(f"worker memory: {args.images} images of distinct sizes ({args.min_mp}-{args.max_mp} "
          f"MP), then the first {args.second_pass} again; {args.threads} threads; models "
          f"{args.models}; {os.cpu_count()} CPUs")
    results = []
    for spec in args.variant or DEFAULT_VARIANTS:
        result = run_variant(spec, args)
        results.append(result)
        rss = result["rss_mib"]
        steps = ", ".join(f"{key} {value:.0f}" for key, value in rss.items())
        print(f"{result['variant']}: RSS MiB {steps}; peak {result['peak_mib']:.0f}; "
              f"{result['s_per_image']:.3f} s/image; growth over the first pass "
              f"{rss['first pass'] - rss['ready']:+.0f} MiB, second pass "
              f"{rss['second pass'] - rss['first pass']:+.0f} MiB", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
