"""How plain is the background near the object, per evaluation set: the figure behind
`service/pipeline/backdrop.py`'s PLAIN_SPREAD.

    python -m bench.backdrop_spread [--models models] [--images 60]

Each image runs through the serving pipeline up to its trimap; `backdrop.sample_backdrop`
then gives the median CIELAB distance of the known background near the object to its median
colour (the spread the backdrop step compares with PLAIN_SPREAD x distance). Prints the 10th,
50th and 90th percentile of that spread over the images of each set.
"""
from __future__ import annotations

import argparse
import io
from pathlib import Path

import numpy as np
from PIL import Image

from service.pipeline import CutoutOptions
from service.pipeline.backdrop import sample_backdrop
from service.pipeline.runner import measuring_pipeline


def _png(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(rgb).save(buffer, "PNG", compress_level=1)
    return buffer.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--images", type=int, default=60, help="per set")
    args = parser.parse_args(argv)

    from model_export.data import evaluation_sets

    pipeline = measuring_pipeline(args.models, backdrop_distance=0)
    options = CutoutOptions(output="trimap")
    for name, items in evaluation_sets().items():
        spreads = []
        for _, rgb, _ in items[:args.images]:
            body = pipeline.run(_png(rgb), options).body
            trimap = np.asarray(Image.open(io.BytesIO(body)).convert("L"), np.float32) / 255.0
            backdrop = sample_backdrop(rgb, np.round(trimap * 2) / 2)
            if backdrop is not None:
                spreads.append(backdrop.spread)
        if spreads:
            low, mid, high = np.percentile(spreads, (10, 50, 90))
            print(f"{name:10s} {len(spreads):4d} images  spread p10 {low:5.1f}  p50 {mid:5.1f}  "
                  f"p90 {high:5.1f}")


if __name__ == "__main__":
    main()
