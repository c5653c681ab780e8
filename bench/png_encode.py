"""PNG encode time and size of real cutouts, per zlib level and row filter.

    python -m bench.png_encode [--images 4] [--side 1500] [--repeats 3]

Each cutout is a CCP photo resized to a `--side` px long side with its ground-truth mask
(slightly blurred, as a matte's edge is) as alpha, composed the way the service composes an
RGBA answer (colour zeroed under transparent pixels), then encoded through the service's own
`codec.encode` with each setting. Prints the mean of per-image best-of-`--repeats` times and
the mean file size. A benchmark, not a test: read the ratios when the machine is shared.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import time

import cv2
import numpy as np

from bench.server import REPO
from service.pipeline import PipelineConfig, codec
from service.pipeline.compose import compose
from service.pipeline.options import CutoutOptions

ENCODING = PipelineConfig().encoding()  # the service's defaults

CCP = REPO.parent / "shared" / "data" / "ccp_fashion"
SETTINGS = [(2, "adaptive"), (1, "adaptive"), (1, "up"), (2, "up"), (1, "sub"), (1, "paeth"),
            (1, "none"), (3, "up"), (6, "up")]


def cutouts(count: int, side: int) -> list[np.ndarray]:
    images = sorted((CCP / "image").iterdir())[:count]
    out = []
    for path in images:
        rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
        alpha_path = next((CCP / "alpha").glob(path.stem + ".*"))
        alpha = cv2.imread(str(alpha_path), cv2.IMREAD_GRAYSCALE)
        scale = side / max(rgb.shape[:2])
        size = (round(rgb.shape[1] * scale), round(rgb.shape[0] * scale))
        rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_CUBIC)
        alpha = cv2.GaussianBlur(cv2.resize(alpha, size, interpolation=cv2.INTER_LINEAR), (5, 5), 0)
        out.append(compose(rgb, alpha, CutoutOptions()).pixels)
    return out


def measure(
    pixels: list[np.ndarray], config: codec.EncodeConfig, repeats: int
) -> tuple[float, float]:
    times, sizes = [], []
    for image in pixels:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            data = codec.encode(image, "png", config)
            best = min(best, time.perf_counter() - start)
        times.append(best)
        sizes.append(len(data))
    return 1000 * float(np.mean(times)), float(np.mean(sizes)) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=4)
    parser.add_argument("--side", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    cv2.setNumThreads(1)
    pixels = cutouts(args.images, args.side)
    print(f"PNG encode of {len(pixels)} RGBA cutouts at {args.side} px long side, best of "
          f"{args.repeats}; load average {os.getloadavg()[0]:.2f}")
    print(f"{'level':>5} {'filter':>9} {'ms':>8} {'MB':>6}")
    for level, png_filter in SETTINGS:
        config = dataclasses.replace(ENCODING, png_compression=level, png_filter=png_filter)
        ms, mb = measure(pixels, config, args.repeats)
        print(f"{level:>5} {png_filter:>9} {ms:8.1f} {mb:6.3f}")


if __name__ == "__main__":
    main()
