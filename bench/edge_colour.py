"""Edge colour of cutouts on new backgrounds, with and without foreground estimation: the
figures behind `service/pipeline/foreground.py` and its setting CUTOUT_FOREGROUND_ESTIMATION.

    python -m bench.edge_colour [--models models] [--images 150] [--cost-images 8]
    python -m bench.edge_colour --figure docs/edge_colour.png   # also the before/after crop

The held-out studio composites (`python -m model_export.data build`) are made again from
their seeds to get each one's true foreground colour F and alpha a (checked against the
cached alpha). Each cached photo runs through the serving pipeline (output=alpha, as served);
the cut-out object, colour C and matte m, is then laid on new backgrounds N, plain and
patterned, and compared with the truth laid on the same ones:

    error = mean | (m C + (1 - m) N) - (a F + (1 - a) N) |   (0-255, over the edge: pixels
            where a or m is strictly between 0 and 1)

C is the photo's own colour (before: CUTOUT_FOREGROUND_ESTIMATION=false) or the estimate
(after: what the service serves by default; the first image is checked against the served
RGBA). Also printed: the colour error itself, | C - F | weighted by a over the same pixels.

Cost: the estimator alone on photos enlarged to 1500 px (the inference size; --cost-sides for
more), the best of --repeats runs per image, median over the images.
"""
from __future__ import annotations

import argparse
import functools
import io
import time
from pathlib import Path

import numpy as np
from PIL import Image

from service.pipeline import CutoutOptions, Pipeline, PipelineConfig, codec, foreground

PLAIN = {"white": (255, 255, 255), "black": (0, 0, 0), "blue": (20, 70, 200)}
PATTERNED = ("checks", "stripes")
SET_NAME = "studio"
# (power, wide window, narrow window) compared by --sweep; the first is the paper's.
SWEEP = ((1, 0.06, 0.004), (2, 0.06, 0.004), (4, 0.06, 0.004), (4, 0.03, 0.004),
         (4, 0.1, 0.004), (4, 0.06, 0.002), (4, 0.06, 0.008))


def backgrounds(height: int, width: int) -> dict[str, np.ndarray]:
    """New backgrounds, H x W x 3 float32 (0-255): plain colours, 16 px yellow / purple checks
    and 6 px diagonal red / teal stripes (a pattern puts every colour behind the edge)."""
    out = {name: np.broadcast_to(np.float32(colour), (height, width, 3))
           for name, colour in PLAIN.items()}
    yy, xx = np.mgrid[0:height, 0:width]
    checks = ((yy // 16 + xx // 16) % 2).astype(bool)
    out["checks"] = np.where(checks[..., None], np.float32((240, 200, 40)),
                             np.float32((70, 20, 120)))
    stripes = (((yy + xx) // 6) % 2).astype(bool)
    out["stripes"] = np.where(stripes[..., None], np.float32((210, 40, 40)),
                              np.float32((20, 160, 150)))
    return out


def studio_truth(cache: Path, seed: int, limit: int | None):
    """(id, photo JPEG bytes, true fg float32 0-255, true alpha 0-1) for the cached studio
    composites, made again exactly as `build_eval_sets` made them (same seeds, same library);
    an item whose remade alpha is not the cached one is skipped and counted."""
    import cv2

    from model_export.data.build import EVAL_COUNTS, EVAL_LONG_SIDE
    from model_export.data.datasets import _random_hw, compose_scene
    from model_export.data.library import Library

    folder = cache / "eval" / SET_NAME
    if not folder.is_dir():
        raise SystemExit(f"{folder} missing: run `python -m model_export.data build` first")
    library = Library(cache, "val", procedural=False)
    set_index = sorted(EVAL_COUNTS).index(SET_NAME)  # build_eval_sets walks the sets sorted
    items, mismatched = [], 0
    for i in range(EVAL_COUNTS[SET_NAME] if limit is None else limit):
        stem = f"{SET_NAME}_{i:03d}"
        image_path, alpha_path = folder / f"{stem}.jpg", folder / f"{stem}.png"
        if not image_path.exists():
            break
        rng = np.random.default_rng([seed, 7919, set_index, i])
        h, w = _random_hw(rng, EVAL_LONG_SIDE)
        n = int(rng.choice([1, 2], p=[0.75, 0.25]))
        scene = compose_scene(rng, library, h, w, "studio", n_objects=n, main_frac=(0.5, 0.9))
        cached = cv2.imread(str(alpha_path), cv2.IMREAD_UNCHANGED)
        if cached is None or not np.array_equal((scene.alpha * 255 + 0.5).astype(np.uint8),
                                                 cached):
            mismatched += 1
            continue
        items.append((stem, image_path.read_bytes(), scene.fg * 255.0, scene.alpha))
    return items, mismatched


def edge_errors(colour: np.ndarray, matte: np.ndarray, fg: np.ndarray, alpha: np.ndarray
                ) -> dict[str, float]:
    """Composite error per new background and the alpha-weighted colour error, over the edge."""
    m = matte.astype(np.float32) / 255.0
    edge = ((alpha > 0) & (alpha < 1)) | ((matte > 0) & (matte < 255))
    if not edge.any():
        return {}
    a_e, m_e = alpha[edge][:, None], m[edge][:, None]
    c_e, f_e = colour[edge].astype(np.float32), fg[edge]
    out = {}
    for name, new in backgrounds(*matte.shape).items():
        n_e = new[edge]
        served = m_e * c_e + (1 - m_e) * n_e
        truth = a_e * f_e + (1 - a_e) * n_e
        out[name] = float(np.abs(served - truth).mean())
    out["colour"] = float((a_e * np.abs(c_e - f_e)).sum() / (3 * a_e.sum() + 1e-6))
    return out


def decode_grey(body: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(body)).convert("L"))


def served_mattes(pipeline: Pipeline, items) -> list[tuple]:
    """(photo, served matte, true fg, true alpha) per item; the first item's served RGBA is
    checked against the estimator's output: the bench measures what the service serves."""
    cases = []
    for index, (_, data, fg, alpha) in enumerate(items):
        photo = codec.decode(data, pipeline.config.max_pixels).rgb
        matte = decode_grey(pipeline.run(data, CutoutOptions(output="alpha")).body)
        if index == 0 and pipeline.config.foreground_estimation:
            served = np.asarray(Image.open(io.BytesIO(pipeline.run(data, CutoutOptions()).body)))
            visible = served[..., 3] > 0
            if not np.array_equal(served[..., :3][visible],
                                  foreground.estimate(photo, matte)[visible]):
                raise SystemExit("the served RGBA is not the estimator's output")
        cases.append((photo, matte, fg, alpha))
    return cases


def measure(cases: list[tuple], estimator) -> list[dict]:
    """Mean errors: [photo's colour, estimated] with the served matte, then the same two with
    the true alpha as the matte (the estimator alone)."""
    tables: list[list[dict]] = [[], [], [], []]
    for photo, matte, fg, alpha in cases:
        true = (alpha * 255 + 0.5).astype(np.uint8)
        rows = (edge_errors(photo, matte, fg, alpha),
                edge_errors(estimator(photo, matte), matte, fg, alpha),
                edge_errors(photo, true, fg, alpha),
                edge_errors(estimator(photo, true), true, fg, alpha))
        if all(rows):
            for table, row in zip(tables, rows, strict=True):
                table.append(row)
    return [{k: float(np.mean([r[k] for r in table])) for k in table[0]} for table in tables]


def cost(pipeline: Pipeline, items, count: int, repeats: int, side: int = 1500) -> dict:
    """The estimator's time at the inference size, and the soft pixels it works on."""
    import cv2

    alpha_options = CutoutOptions(output="alpha")
    seconds, soft = [], []
    for _, data, _, _ in items[:count]:
        photo = codec.decode(data, pipeline.config.max_pixels).rgb
        scale = side / max(photo.shape[:2])
        size = (round(photo.shape[1] * scale), round(photo.shape[0] * scale))
        big = cv2.resize(photo, size, interpolation=cv2.INTER_LANCZOS4)
        buffer = io.BytesIO()
        Image.fromarray(big).save(buffer, "PNG", compress_level=1)
        matte = decode_grey(pipeline.run(buffer.getvalue(), alpha_options).body)
        runs = []
        for _ in range(repeats):
            start = time.perf_counter()
            foreground.estimate(big, matte)
            runs.append(time.perf_counter() - start)
        seconds.append(min(runs))
        soft.append(int(foreground.soft_pixels(matte).sum()))
    return {"ms": 1000 * float(np.median(seconds)), "ms_max": 1000 * float(np.max(seconds)),
            "soft_px": float(np.median(soft)), "images": len(seconds), "side": side}


def figure(pipeline: Pipeline, path: Path, items) -> str:
    """A red object shot on green, the estimate against the photo's colour: the crop around
    the edge, 3x, on white. Returns a line with the green level in the soft edge."""
    import cv2

    # The object: the studio item with the most soft edge, recoloured red, on a green backdrop.
    _, _, fg, alpha = max(items[:40], key=lambda item: ((item[3] > 0.02) & (item[3] < 0.98)).sum())
    grey = fg.mean(axis=2, keepdims=True) / 255.0
    red = np.concatenate([0.35 + 0.6 * grey, 0.05 + 0.15 * grey, 0.05 + 0.15 * grey], axis=2)
    green = np.float32((0.20, 0.62, 0.25))
    a = alpha[..., None]
    photo = np.clip((a * red + (1 - a) * green) * 255 + 0.5, 0, 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(photo).save(buffer, "JPEG", quality=95)
    matte = decode_grey(pipeline.run(buffer.getvalue(), CutoutOptions(output="alpha")).body)
    decoded = codec.decode(buffer.getvalue(), pipeline.config.max_pixels).rgb
    estimated = foreground.estimate(decoded, matte)
    soft = foreground.soft_pixels(matte)
    line = (f"red object on green, soft edge ({int(soft.sum())} px): mean green level "
            f"{decoded[soft][:, 1].mean():.0f} photo's colour, {estimated[soft][:, 1].mean():.0f} "
            f"estimated; the object's own {np.median(red[alpha > 0.98][:, 1]) * 255:.0f}")
    # The crop: the 160 px window holding the most soft pixels.
    density = cv2.blur(soft.astype(np.float32), (160, 160))
    cy, cx = np.unravel_index(np.argmax(density), density.shape)
    top = int(np.clip(cy - 80, 0, max(0, matte.shape[0] - 160)))
    left = int(np.clip(cx - 80, 0, max(0, matte.shape[1] - 160)))
    window = (slice(top, top + 160), slice(left, left + 160))
    def on_white(rgb: np.ndarray) -> np.ndarray:
        m = matte[window][..., None].astype(np.float32) / 255.0
        return (rgb[window] * m + 255.0 * (1 - m) + 0.5).astype(np.uint8)

    panels = [decoded[window], on_white(decoded), on_white(estimated)]
    panels = [cv2.resize(p, None, fx=3, fy=3, interpolation=cv2.INTER_NEAREST) for p in panels]
    gap = np.full((panels[0].shape[0], 12, 3), 255, np.uint8)
    strip = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    Image.fromarray(strip).save(path, optimize=True)
    return line


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--cache", type=Path, default=Path(".cache/data"))
    parser.add_argument("--seed", type=int, default=0, help="the seed the cache was built with")
    parser.add_argument("--images", type=int, default=None, help="studio images (default: all)")
    parser.add_argument("--cost-images", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--cost-sides", type=lambda text: [int(v) for v in text.split(",")],
                        default=[1500], help="long sides the cost is measured at, e.g. 1500,3000")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--power", type=int, default=foreground.POWER,
                        help="weight exponent of the estimator's means (a sweep)")
    parser.add_argument("--wide", type=float, default=foreground.WIDE_WINDOW)
    parser.add_argument("--narrow", type=float, default=foreground.NARROW_WINDOW)
    parser.add_argument("--figure", type=Path, help="also write the before/after crop here")
    parser.add_argument("--sweep", action="store_true",
                        help="only compare the estimator's settings (SWEEP) on the same mattes")
    args = parser.parse_args(argv)

    items, mismatched = studio_truth(args.cache, args.seed, args.images)
    if not items:
        raise SystemExit("no studio composite could be made again from its seed")
    pipeline = Pipeline(PipelineConfig(model_dir=args.models, threads=args.threads))
    cases = served_mattes(pipeline, items)
    print(f"models {pipeline.version}, {len(items)} studio composites "
          f"({mismatched} skipped: not remade exactly)")
    names = [*PLAIN, *PATTERNED]
    if args.sweep:
        print(f"{'power':>5} {'wide':>6} {'narrow':>6}  edge error: served matte (mean, colour), "
              "true alpha (mean, colour); photo's colour first")
        for power, wide, narrow in SWEEP:
            tables = measure(cases, functools.partial(
                foreground.estimate, wide_window=wide, narrow_window=narrow, power=power))
            cells = [(np.mean([t[n] for n in names]), t["colour"]) for t in tables]
            if power == SWEEP[0][0] and (wide, narrow) == SWEEP[0][1:]:
                print(f"{'photo':>20}  {cells[0][0]:6.2f} {cells[0][1]:6.2f}   "
                      f"{cells[2][0]:6.2f} {cells[2][1]:6.2f}")
            print(f"{power:>5} {wide:>6g} {narrow:>6g}  {cells[1][0]:6.2f} {cells[1][1]:6.2f}   "
                  f"{cells[3][0]:6.2f} {cells[3][1]:6.2f}")
        return
    tables = measure(cases, lambda p, m: foreground.estimate(p, m, args.wide, args.narrow,
                                                             args.power))
    print(f"estimator: power {args.power}, windows {args.wide:g} / {args.narrow:g} of the long "
          "side")
    print(f"{'edge error (0-255)':<22}" + "".join(f"{n:>9}" for n in names)
          + f"{'mean':>9}{'colour':>9}")
    labels = ("photo's colour", "estimated", "true alpha: photo's", "true alpha: estimated")
    for label, row in zip(labels, tables, strict=True):
        mean = np.mean([row[n] for n in names])
        print(f"{label:<22}" + "".join(f"{row[n]:9.2f}" for n in names)
              + f"{mean:9.2f}{row['colour']:9.2f}")
    for side in (args.cost_sides if args.cost_images else []):
        timing = cost(pipeline, items, args.cost_images, args.repeats, side)
        print(f"cost at {timing['side']} px: median {timing['ms']:.1f} ms, max "
              f"{timing['ms_max']:.1f} ms over {timing['images']} images (median "
              f"{timing['soft_px']:.0f} soft pixels)")
    if args.figure:
        print(figure(pipeline, args.figure, items))
        print(f"wrote {args.figure}")


if __name__ == "__main__":
    main()
