"""python -m model_export.evaluate: quality of exported models through the serving pipeline.

Real photographs come first: each source of real photos with human-drawn masks
(`real_<source>`, data/real.py: the validation ids only) and CCP validation, then the studio and
cluttered composites. Runs every validation image through `service.pipeline.Pipeline.infer`, the
service's own inference (1500 px cap, segmenter with its second look, ED trimap graph, backdrop
step, band matting, mix, rescale), once per image, and prints, per
set: mask IoU and boundary F of the segmenter's mask, and IoU, boundary F, alpha MAD and
gradient error of the final alpha (metrics.py; whole-image per-pixel means for MAD, sum/1000
for gradient), and the background smear (mean alpha on the GT background away from its
edge). With the ISNet teacher installed (.cache/peers/isnet.onnx), the same figures for it on
the same images.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from .metrics import (
    background_smear,
    boundary_f_score,
    gradient_error,
    iou,
    iou_loss_by_region,
    mad,
    mask_errors,
)

# "real" stands for every real-photo source found (real_<source>); the order is the report's.
SETS = ("real", "ccp_val", "studio", "cluttered")


def _unit(matte: np.ndarray) -> np.ndarray:
    """A served uint8 matte as floats in [0, 1]."""
    return matte.astype(np.float32) / 255.0


def _scores(prob: np.ndarray, alpha: np.ndarray | None, gt: np.ndarray) -> dict[str, float]:
    """Ours: the segmenter's mask (`prob`) and the served alpha. A peer: its one output as `prob`
    (its smear is that output's)."""
    out = {"mask_iou": iou(prob, gt), "mask_bf": boundary_f_score(prob, gt)}
    if alpha is None:
        out["smear"] = background_smear(prob, gt)
    else:
        errors = mask_errors(prob, gt)
        out.update(mask_kept_background=errors["kept_background"],
                   mask_lost_object=errors["lost_object"])
        # The mask's own MAD tells whether the matting stage improves on the segmenter's edge.
        out.update(mask_mad=mad(prob, gt), iou=iou(alpha, gt), bf=boundary_f_score(alpha, gt),
                   mad=mad(alpha, gt), grad=gradient_error(alpha, gt),
                   smear=background_smear(alpha, gt))
    return out


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    return {k: float(np.mean([r[k] for r in rows])) for k in rows[0]} if rows else {}


def load_teacher():
    try:
        from bench.peers import IsnetPeer  # run from the repo root
    except ImportError:
        return None
    try:
        return IsnetPeer()
    except Exception:  # noqa: BLE001 - the teacher is optional
        return None


class TeacherScores:
    """ISNet's scores per image, cached on disk: the teacher never changes, our models do."""

    def __init__(self, peer, path: Path = Path(".cache/peers/isnet_scores.json")) -> None:
        self.peer = peer
        self.path = path
        self.cache: dict = json.loads(path.read_text()) if path.exists() else {}

    def __call__(self, set_name: str, item_id: str, rgb: np.ndarray, gt: np.ndarray) -> dict:
        key = f"{set_name}/{item_id}"
        if "smear" not in self.cache.get(key, {}):  # scores cached before the smear metric
            self.cache[key] = _scores(self.peer.predict(rgb), None, gt)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.write_text(json.dumps(self.cache))
        return self.cache[key]


def upscaled(rgb: np.ndarray, gt: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray]:
    """The photo enlarged to a `side` long side (Lanczos) and its GT alpha (bilinear): the
    evaluation images are <= 830 px, the service's inference size is 1500 px."""
    import cv2

    height, width = gt.shape
    scale = side / max(height, width)
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return (cv2.resize(rgb, size, interpolation=cv2.INTER_LANCZOS4),
            cv2.resize(gt.astype(np.float32), size, interpolation=cv2.INTER_LINEAR))


def parse_settings(items: list[str]) -> dict:
    """['matting_side=768', 'matting_weight=0.7'] -> {field: value} (JSON values, else
    strings): PipelineConfig fields and the model spec's inference fields."""
    out: dict = {}
    for item in items:
        key, _, value = item.partition("=")
        try:
            out[key.strip().replace("-", "_")] = json.loads(value)
        except json.JSONDecodeError:
            out[key.strip().replace("-", "_")] = value
    return out


def evaluate(model_dir: Path, sets: tuple[str, ...] = SETS, limit: int | None = None,
             input_size: int | None = None, teacher: bool = True,
             threads: int = 2, settings: dict | None = None, upscale: int | None = None,
             data: dict | None = None, regions: bool = False,
             real_roots: tuple[Path, ...] | None = None) -> dict:
    """`data`: the sets as `evaluation_sets()` gives them (default: the built cache's).
    `regions`: also split each image's alpha IoU loss by trimap region (one more pass up to
    the trimap per image)."""
    from service.pipeline.runner import measuring_pipeline

    from .data import evaluation_sets

    settings = dict(settings or {})
    pipeline = measuring_pipeline(model_dir, input_size, threads=threads, **settings)
    # Scores of enlarged photos are not the teacher's cached ones.
    peer = load_teacher() if teacher and not upscale else None
    teacher_scores = TeacherScores(peer) if peer is not None else None
    if data is None:
        data = evaluation_sets(real_roots=real_roots) if real_roots else evaluation_sets()
    sets = expand_sets(sets, data)
    report: dict = {"models": str(model_dir), "version": pipeline.version,
                    "input_size": input_size or pipeline.spec.segmenter.input_size,
                    "settings": settings, "upscale": upscale, "sets": {}}
    for name in sets:
        # Per image, so that an error analysis is read off the report, not a throwaway script.
        images, seconds, second_looks = [], [], 0
        for item_id, rgb, gt in data.get(name, [])[:limit]:
            if upscale:
                rgb, gt = upscaled(rgb, gt, upscale)
            start = time.perf_counter()
            found = pipeline.infer(rgb)  # the served mask, trimap and alpha, in one pass
            seconds.append(time.perf_counter() - start)
            prob, alpha = _unit(found.mask_matte()), _unit(found.matte)
            second_looks += found.looked_closer
            image = {"id": item_id, "ours": _scores(prob, alpha, gt)}
            if regions:
                image["iou_loss"] = iou_loss_by_region(alpha, gt, _unit(found.trimap_matte()))
            if teacher_scores is not None:
                image["isnet"] = teacher_scores(name, item_id, rgb, gt)
            images.append(image)
        if not images:
            continue
        entry = {"n": len(images), "ours": _mean([i["ours"] for i in images]),
                 "seconds_per_image": float(np.mean(seconds)), "second_looks": second_looks}
        if teacher_scores is not None:
            entry["isnet"] = _mean([i["isnet"] for i in images])
        if regions:
            entry["iou_loss_sum"] = {k: float(sum(i["iou_loss"][k] for i in images))
                                     for k in images[0]["iou_loss"]}
        entry["images"] = images
        report["sets"][name] = entry
    summary = real_photo_summary(report)
    if summary is not None:
        report["real_photos"] = summary
    return report


def expand_sets(names: tuple[str, ...], data: dict) -> tuple[str, ...]:
    """'real' -> every real_<source> set present, in the data's order."""
    out: list[str] = []
    for name in names:
        out += [k for k in data if k.startswith("real_")] if name == "real" else [name]
    return tuple(out)


def real_photo_summary(report: dict) -> dict | None:
    """Mean over the real-photo sets (each real source and CCP counted once, whatever its size)
    of ours and the peer's mask IoU, boundary F and smear: the figure models are chosen on."""
    names = [n for n in report["sets"] if n.startswith("real_") or n == "ccp_val"]
    if not names:
        return None
    out: dict = {"sets": names}
    for model in ("ours", "isnet"):
        entries = [report["sets"][n][model] for n in names if model in report["sets"][n]]
        if len(entries) == len(names):
            out[model] = {k: float(np.mean([e[k] for e in entries]))
                          for k in entries[0] if all(k in e for e in entries)}
    return out


def worst_images(report: dict, count: int) -> str:
    """The `count` images of each set with the lowest mask IoU, beside the teacher's IoU on them."""
    lines = [f"{'set':<16} {'image':<28} {'maskIoU':>8} {'IoU':>7} {'isnet':>7}"]
    for name, entry in report["sets"].items():
        for image in sorted(entry["images"], key=lambda r: r["ours"]["mask_iou"])[:count]:
            teacher = image.get("isnet", {}).get("mask_iou")
            lines.append(f"{name:<16} {image['id']:<28} {image['ours']['mask_iou']:>8.4f} "
                         f"{image['ours']['iou']:>7.4f} "
                         + (f"{teacher:>7.4f}" if teacher is not None else f"{'-':>7}"))
    return "\n".join(lines)


def format_report(report: dict) -> str:
    lines = [f"models {report['models']} (version {report['version']}), "
             f"segmenter input {report['input_size']} px"
             + (f", upscaled to {report['upscale']} px" if report.get("upscale") else "")
             + (f", settings {report['settings']}" if report.get("settings") else "")]
    header = (f"{'set':<16} {'model':<6} {'n':>4} {'maskIoU':>8} {'maskBF':>7} {'maskMAD':>8} "
              f"{'IoU':>7} "
              f"{'BF':>7} {'MAD':>8} {'Grad':>8} {'smear':>7} {'s/img':>6}")
    lines.append(header)
    for name, entry in report["sets"].items():
        o = entry["ours"]
        lines.append(
            f"{name:<16} {'ours':<6} {entry['n']:>4} {o['mask_iou']:>8.4f} "
            f"{o['mask_bf']:>7.4f} {o['mask_mad']:>8.5f} {o['iou']:>7.4f} {o['bf']:>7.4f} "
            f"{o['mad']:>8.5f} {o['grad']:>8.3f} {o['smear']:>7.4f} "
            f"{entry['seconds_per_image']:>6.2f}"
        )
        if "isnet" in entry:
            p = entry["isnet"]
            # The peer has one output: its IoU, boundary F and smear sit under the mask's columns
            # and the smear column.
            lines.append(
                f"{name:<16} {'isnet':<6} {entry['n']:>4} {p['mask_iou']:>8.4f} "
                f"{p['mask_bf']:>7.4f} {'':>8} {'':>7} {'':>7} {'':>8} {'':>8} "
                f"{p['smear']:>7.4f}"
            )
    summary = report.get("real_photos")
    if summary:
        for model in ("ours", "isnet"):
            if model in summary:
                m = summary[model]
                lines.append(f"real photos, mean of {len(summary['sets'])} sets, {model}: mask IoU "
                             f"{m['mask_iou']:.4f}, boundary F {m['mask_bf']:.4f}"
                             + (f", alpha IoU {m['iou']:.4f}" if "iou" in m else "")
                             + f", smear {m['smear']:.4f}")
    looks = [
        f"{name} {entry['second_looks']} of {entry['n']}"
        for name, entry in report["sets"].items()
        if "second_looks" in entry
    ]
    if looks:
        lines.append(
            "second look at a small object (service/pipeline/zoom.py): " + ", ".join(looks)
        )
    errors = [f"{name} {entry['ours']['mask_kept_background']:.3f} / "
              f"{entry['ours']['mask_lost_object']:.3f}"
              for name, entry in report["sets"].items() if "mask_kept_background" in entry["ours"]]
    if errors:
        lines.append("our mask's errors, share of the object's area, background kept / object "
                     "lost: " + ", ".join(errors))
    for name, entry in report["sets"].items():
        if "iou_loss_sum" in entry:
            sums = entry["iou_loss_sum"]
            lines.append(f"{name}: alpha IoU loss summed over images, by trimap region: known fg "
                         f"{sums['fg']:.2f}, band {sums['band']:.2f}, known bg {sums['bg']:.2f} "
                         f"(mean IoU = 1 - total / {entry['n']})")
    return "\n".join(lines)


def teacher_only(sets: tuple[str, ...], limit: int | None) -> None:
    """Fill the teacher's score cache (slow: ISNet runs at 1024 px)."""
    from .data import evaluation_sets

    peer = load_teacher()
    if peer is None:
        raise SystemExit("ISNet teacher not installed: python -m bench.peers")
    scores = TeacherScores(peer)
    data = evaluation_sets()
    for name in expand_sets(sets, data):
        rows = [scores(name, i, rgb, gt) for i, rgb, gt in data.get(name, [])[:limit]]
        if rows:
            print(name, len(rows), {k: round(v, 4) for k, v in _mean(rows).items()})


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--sets", default=",".join(SETS))
    parser.add_argument("--limit", type=int, default=None, help="images per set")
    parser.add_argument("--input-size", type=int, default=None,
                        help="override the segmenter's working size")
    parser.add_argument("--no-teacher", action="store_true")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--matting-side", type=int, default=None,
                        help="long side the band is matted at (0: inference size)")
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="any PipelineConfig field or spec.json inference field, e.g. "
                        "--set matting_weight=0.7 (repeatable)")
    parser.add_argument("--upscale", type=int, default=None, metavar="SIDE",
                        help="enlarge each photo (Lanczos) and its GT (bilinear) to this long "
                        "side first, e.g. 1500 (the service's inference size)")
    parser.add_argument(
        "--json", type=Path, help="also write the report here (with per-image figures)"
    )
    parser.add_argument("--worst", type=int, default=0, metavar="N",
                        help="also list the N images of each set with the lowest mask IoU")
    parser.add_argument("--regions", action="store_true",
                        help="also split the alpha IoU loss by trimap region: known foreground "
                        "and background (the segmenter's errors) against the unknown band")
    parser.add_argument("--teacher-only", action="store_true", help="only score the ISNet teacher")
    parser.add_argument("--real-roots", type=Path, nargs="+", default=None, metavar="DIR",
                        help="folders of real photos (default: ../shared/data/real_masks and "
                        ".cache/real, the validation ids of each)")
    args = parser.parse_args(argv)
    if args.teacher_only:
        teacher_only(tuple(args.sets.split(",")), args.limit)
        return
    settings = parse_settings(args.set)
    if args.matting_side is not None:
        settings["matting_side"] = args.matting_side
    report = evaluate(args.models, tuple(args.sets.split(",")), args.limit, args.input_size,
                      not args.no_teacher, args.threads, settings, args.upscale,
                      regions=args.regions, real_roots=tuple(args.real_roots or ()) or None)
    print(format_report(report))
    if args.worst:
        print(worst_images(report, args.worst))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
