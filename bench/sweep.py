"""In-process sweep of pipeline settings at 1500 px: time per stage, tiles, band pixels.

    python -m bench.sweep --models models --images 8 \\
        --config matting_side=0 --config matting_side=768 --config matting_side=768,matting_weight=1

Each --config is comma-separated PipelineConfig fields or spec.json inference fields
(key=value); every config gets its own
Pipeline (threads=--threads) and runs the same CCP photos upscaled to a 1500 px long side (JPEG,
as bench.latency sends them), one warm-up then --rounds passes, configs interleaved per round so
a busy machine slows them alike. Prints p50 end to end (in-process, no HTTP), mean ms per stage,
tiles per image, matting-net pixels (tiles x tile area) over band pixels.
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np

from bench.latency import DEFAULT_IMAGES, load_images


def parse_config(text: str) -> dict:
    out: dict = {}
    for part in filter(None, text.split(",")):
        key, _, value = part.partition("=")
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def main(argv: list[str] | None = None) -> None:
    from service.pipeline import CutoutOptions
    from service.pipeline.runner import measuring_pipeline

    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--images-dir", type=Path, default=DEFAULT_IMAGES)
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--side", type=int, default=1500)
    parser.add_argument("--config", action="append", default=[])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)

    images = [jpeg for _, jpeg in load_images(args.images_dir, args.images, args.side)]
    configs = args.config or [""]
    pipelines = [measuring_pipeline(args.models, threads=args.threads, **parse_config(c))
                 for c in configs]
    options = CutoutOptions()
    for pipeline in pipelines:
        pipeline.run(images[0], options)  # warm-up at the real shapes
    rows = [{"total": [], "stages": {}, "tiles": [], "band": [], "net_px": []} for _ in configs]
    for _ in range(args.rounds):
        for data in images:
            for pipeline, row in zip(pipelines, rows, strict=True):
                start = time.perf_counter()
                result = pipeline.run(data, options)
                row["total"].append(time.perf_counter() - start)
                for name, seconds in result.timings.items():
                    row["stages"].setdefault(name, []).append(seconds)
                row["tiles"].append(result.tiles)
                row["band"].append(result.band_pixels)
                row["net_px"].append(result.net_pixels)
    report = []
    for text, row in zip(configs, rows, strict=True):
        entry = {"config": text or "(defaults)", "p50_s": float(np.median(row["total"])),
                 "p95_s": float(np.percentile(row["total"], 95)),
                 "stages_ms": {k: 1000 * statistics.fmean(v) for k, v in row["stages"].items()},
                 "tiles": statistics.fmean(row["tiles"]), "band_px": statistics.fmean(row["band"]),
                 "net_px": statistics.fmean(row["net_px"])}
        entry["net_over_band"] = entry["net_px"] / max(entry["band_px"], 1)
        report.append(entry)
        print(f"{entry['config']}: p50 {entry['p50_s']:.3f} s  p95 {entry['p95_s']:.3f} s  "
              f"tiles {entry['tiles']:.1f}  band {entry['band_px'] / 1000:.0f}k px  "
              f"net/band {entry['net_over_band']:.2f}  | " + ", ".join(
                  f"{k} {v:.0f}" for k, v in entry["stages_ms"].items()), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
