"""Masks for boxes-only real photos, drawn by the ISNet peer as a teacher.

`python -m model_export.data teacher` reads the boxes sources that `data real` wrote
(boxes.tsv + boxes_image/ in .cache/real), runs ISNet (bench/peers.py) on each whole photo and
keeps its mask only where the boxes vouch for it:

- the mask must cover most of every box ("part" boxes, e.g. faces, and "object" boxes alike);
- for "object" boxes, little of the mask may lie outside the boxes (widened by a margin): ISNet
  took something else as the subject;
- the mask must be sure of itself: few pixels between 0.1 and 0.9 for its size;
- it must cover between 0.5 % and 97 % of the photo, as every real mask does, and must not run
  round most of the photo's border (ISNet then took the whole frame, or a frame-filling texture).

Kept photos are written to .cache/teacher in the layout of data/real.py (image/, mask/ 0/255,
MANIFEST.tsv, an empty val.txt: teacher masks are for training only, never for judging), with
teacher.tsv giving every photo's figures and why it was dropped. ISNet is AGPL and a build-time
tool here: only its masks of these photos are kept, in a git-ignored cache; the service never
loads it.
"""
from __future__ import annotations

import csv
import functools
import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .real import CACHE_ROOT, SOFT_GT_KIND, TEACHER_ROOT
from .real_build import MANIFEST_COLUMNS, MAX_COVER, MIN_COVER, write_tsv

log = logging.getLogger(__name__)

# The mask file holds the teacher's probability: binary at 0.5 for ordinary training
# (data/real.py load_real), soft targets weighted by its confidence with --soft-teacher.
GT_KIND = (f"{SOFT_GT_KIND} (ISNet teacher's probability on the whole photo, its edge at 0.5, "
           "vouched for by its boxes)")
MIN_BOX_COVER = 0.3  # share of the boxes' pixels the mask holds (an animal fills half its box)
MAX_OUTSIDE = 0.12  # "object" boxes: share of the mask allowed outside the widened boxes
BOX_MARGIN = 0.1  # widening of each box side, as a share of its size
MAX_UNSURE = 0.25  # pixels with 0.1 < p < 0.9, as a share of the mask's area
MAX_BORDER = 0.5  # share of the photo's outermost pixels the mask may hold
REPORT_COLUMNS = ("id", "kept", "why", "cover", "box_cover", "outside", "unsure", "border")


@dataclass(frozen=True)
class Verdict:
    kept: bool
    why: str
    cover: float
    box_cover: float
    outside: float
    unsure: float
    border: float


def _box_masks(boxes: list[tuple[float, ...]], h: int, w: int, margin: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """(inside the boxes, inside the boxes widened by `margin` of their size per side)."""
    inside = np.zeros((h, w), bool)
    widened = np.zeros((h, w), bool)
    for x0, y0, x1, y1 in boxes:
        inside[max(0, int(y0)):int(np.ceil(y1)), max(0, int(x0)):int(np.ceil(x1))] = True
        mx, my = margin * (x1 - x0), margin * (y1 - y0)
        widened[max(0, int(y0 - my)):int(np.ceil(y1 + my)),
                max(0, int(x0 - mx)):int(np.ceil(x1 + mx))] = True
    return inside, widened


def judge(prob: np.ndarray, boxes: list[tuple[float, ...]], box_kind: str) -> Verdict:
    """Whether the teacher's soft mask `prob` [H,W] in [0,1] can stand as a photo's label."""
    mask = prob > 0.5
    area = int(mask.sum())
    cover = area / mask.size
    inside, widened = _box_masks(boxes, *mask.shape, BOX_MARGIN)
    box_cover = float(mask[inside].mean()) if inside.any() else 0.0
    outside = float((mask & ~widened).sum() / max(area, 1))
    unsure = float(((prob > 0.1) & (prob < 0.9)).sum() / max(area, 1))
    frame = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
    border = float(frame.mean())
    figures = (cover, box_cover, outside, unsure, border)
    if not MIN_COVER <= cover <= MAX_COVER:
        return Verdict(False, "mask too small or too large", *figures)
    if border > MAX_BORDER:
        return Verdict(False, "mask runs round the frame", *figures)
    if box_cover < MIN_BOX_COVER:
        return Verdict(False, "mask misses the boxes", *figures)
    if box_kind == "object" and outside > MAX_OUTSIDE:
        return Verdict(False, "mask reaches far outside the boxes", *figures)
    if unsure > MAX_UNSURE:
        return Verdict(False, "teacher unsure", *figures)
    return Verdict(True, "", *figures)


def prob_path(out: Path, item_id: str, image: Path) -> Path:
    """Where the teacher's soft mask of `image` is cached: named by the photo's bytes too, so a
    rebuilt source whose id now holds another photo is labelled afresh."""
    digest = hashlib.sha1(image.read_bytes()).hexdigest()[:16]
    return out / "prob" / f"{item_id}_{digest}.png"


def _parse_boxes(text: str) -> list[tuple[float, ...]]:
    return [tuple(float(v) for v in box.split(",")) for box in text.split(";") if box]


def build_teacher(boxes_dirs: tuple[Path, ...] = (CACHE_ROOT,), out: Path = TEACHER_ROOT,
                  peer_path: Path | None = None, threads: int = 2,
                  sources: tuple[str, ...] | None = None) -> list[Verdict]:
    """Label every boxes photo in `boxes_dirs` (of `sources` only, when given: the id's prefix)
    with the teacher; write the kept ones to `out`.
    The teacher's soft masks are kept in out/prob/ (it is deterministic), so a rerun, with other
    thresholds say, only runs it on photos it has not seen (`prob_path`)."""
    from bench.peers import IsnetPeer, ensure_isnet

    @functools.cache
    def peer() -> IsnetPeer:  # loaded only when a photo has no soft mask yet
        return IsnetPeer(peer_path or ensure_isnet(), threads=threads)

    for sub in ("image", "mask", "prob"):
        (out / sub).mkdir(parents=True, exist_ok=True)
    rows, report, verdicts = [], [], []
    for folder in boxes_dirs:
        table = folder / "boxes.tsv"
        if not table.exists():
            log.warning("no boxes.tsv in %s", folder)
            continue
        with table.open(newline="") as handle:
            entries = list(csv.DictReader(handle, delimiter="\t"))
        for entry in entries:
            item_id = entry["id"]
            if sources is not None and item_id.rsplit("_", 1)[0] not in sources:
                continue
            source_image = folder / "boxes_image" / f"{item_id}.jpg"
            prob_file = prob_path(out, item_id, source_image)
            if prob_file.exists():
                prob = np.asarray(Image.open(prob_file), dtype=np.float32) / 255.0
            else:
                prob = peer().predict(np.asarray(Image.open(source_image).convert("RGB")))
                Image.fromarray((prob * 255 + 0.5).astype(np.uint8)).save(prob_file)
            verdict = judge(prob, _parse_boxes(entry["boxes_xyxy"]), entry["box_kind"])
            verdicts.append(verdict)
            report.append({"id": item_id, "kept": int(verdict.kept), "why": verdict.why,
                           **{k: f"{getattr(verdict, k):.4f}" for k in REPORT_COLUMNS[3:]}})
            if verdict.kept:
                shutil.copyfile(source_image, out / "image" / f"{item_id}.jpg")
                shutil.copyfile(prob_file, out / "mask" / f"{item_id}.png")
                rows.append({"id": item_id, "source_repo": entry["source_repo"],
                             "commit": entry["commit"], "src_image_path": entry["src_image_path"],
                             "src_mask_path": "", "gt_kind": GT_KIND,
                             "licence": entry["licence"], "subject": entry["subject"]})
    kept_ids = {r["id"] for r in rows}
    for sub in ("image", "mask"):  # out/prob keeps every photo's soft mask
        for stale in (out / sub).iterdir():
            if stale.stem not in kept_ids:
                stale.unlink()
    write_tsv(out / "MANIFEST.tsv", MANIFEST_COLUMNS, rows)
    write_tsv(out / "teacher.tsv", REPORT_COLUMNS, report)
    (out / "val.txt").write_text("")  # teacher masks never judge a model
    return verdicts
