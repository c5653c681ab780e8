"""Real photographs with human-drawn masks: the segmenter's main training source and the first
thing a model is judged on.

Three folders share one layout (image/<id>.jpg, mask/<id>.png, MANIFEST.tsv, val.txt, ids
`<source>_<n>`): ``../shared/data/real_masks`` (read-only, given to the project),
``.cache/real`` (built by ``python -m model_export.data real`` from the fetched repositories in
``model_export/data/real_sources.json``) and ``.cache/teacher`` (boxes-only photos masked by the
ISNet teacher, ``python -m model_export.data teacher``: training only, its val.txt is empty).
The ids in each folder's val.txt are validation only: `real_items("train")` never returns them.
Sources marked held out are built into their own folder, ``.cache/heldout`` (every id in its
val.txt), which evaluation reads (`EVAL_ROOTS`) and training, its validation and the choice of
best.pt never do: they judge the models out of domain.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .sources import DEFAULT_CACHE

SHARED_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "real_masks"
CACHE_ROOT = DEFAULT_CACHE.parent / "real"
HELDOUT_ROOT = DEFAULT_CACHE.parent / "heldout"
TEACHER_ROOT = DEFAULT_CACHE.parent / "teacher"  # ISNet masks of boxes-only photos: no val ids
DEFAULT_ROOTS = (SHARED_ROOT, CACHE_ROOT, TEACHER_ROOT)  # training and its validation
EVAL_ROOTS = (*DEFAULT_ROOTS, HELDOUT_ROOT)  # what `evaluate` reports
SOFT_GT_KIND = "soft"  # how a manifest's gt_kind begins when its masks are probabilities


@dataclass(frozen=True)
class RealItem:
    id: str
    source: str
    image: Path
    mask: Path
    licence: str = ""
    soft: bool = False  # the mask is a teacher's probability (its gt_kind says so), not a drawing


def _manifest(root: Path) -> dict[str, dict[str, str]]:
    path = root / "MANIFEST.tsv"
    if not path.exists():
        return {}
    with path.open(newline="") as handle:
        return {row["id"]: row for row in csv.DictReader(handle, delimiter="\t")}


def real_items(split: str, roots: tuple[Path, ...] = DEFAULT_ROOTS,
               sources: tuple[str, ...] | None = None) -> list[RealItem]:
    """The photos of `split` ('train' or 'val') in every folder of `roots` that exists, sorted by
    id; `sources` keeps only those sources (the id's prefix before its last '_')."""
    if split not in ("train", "val"):
        raise ValueError(f"unknown split {split!r}: use 'train' or 'val'")
    items: list[RealItem] = []
    for root in roots:
        rows = _manifest(root)
        if not rows:
            continue
        val_path = root / "val.txt"
        val = set(val_path.read_text().split()) if val_path.exists() else set()
        for item_id, row in rows.items():
            if (item_id in val) != (split == "val"):
                continue
            source = item_id.rsplit("_", 1)[0]
            if sources is not None and source not in sources:
                continue
            image, mask = root / "image" / f"{item_id}.jpg", root / "mask" / f"{item_id}.png"
            if image.exists() and mask.exists():
                items.append(RealItem(item_id, source, image, mask, row.get("licence", ""),
                                      row.get("gt_kind", "").startswith(SOFT_GT_KIND)))
    return sorted(items, key=lambda item: item.id)


def load_real(item: RealItem, soft: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 [H,W,3] and mask float32 [H,W] in {0,1}; with `soft`, a teacher's mask
    (`item.soft`) keeps its probabilities in [0,1] (a drawn mask is binary either way)."""
    image = np.asarray(Image.open(item.image).convert("RGB"))
    mask = np.asarray(Image.open(item.mask).convert("L"), dtype=np.float32) / 255.0
    return image, mask if soft and item.soft else (mask > 0.5).astype(np.float32)


def by_source(items: list[RealItem]) -> dict[str, list[RealItem]]:
    out: dict[str, list[RealItem]] = {}
    for item in items:
        out.setdefault(item.source, []).append(item)
    return out
