"""Foregrounds with see-through holes (ladders, frames, outline drawings, chair backs).

The segmenter's worst studio errors are holes it fills in confidently; such objects are a small
share of the library (about 10 % have holes over 5 % of their outline), so training can draw
them more often. The hole fraction of each file is measured once and kept beside the files
(``<cache>/fg/<split>/holes.json``): re-reading 3,500 PNGs costs about half a minute.
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

INDEX_NAME = "holes.json"
MEASURE_SIDE = 256  # holes are judged on a small copy: the share, not the outline, matters


def hole_fraction(alpha: np.ndarray) -> float:
    """Share of the filled outline (alpha > 0.5, holes filled) that is see-through."""
    solid = (np.asarray(alpha, np.float32) > 0.5).astype(np.uint8)
    if not solid.any():
        return 0.0
    scale = MEASURE_SIDE / max(solid.shape)
    if scale < 1.0:
        size = (max(1, round(solid.shape[1] * scale)), max(1, round(solid.shape[0] * scale)))
        solid = cv2.resize(solid, size, interpolation=cv2.INTER_NEAREST)
    # flood the outside from a one-pixel frame; whatever it cannot reach is inside the outline
    framed = np.pad(solid, 1)
    flood_mask = np.zeros((framed.shape[0] + 2, framed.shape[1] + 2), np.uint8)
    cv2.floodFill(framed, flood_mask, (0, 0), 2)
    filled = int((framed != 2).sum())
    return float((filled - int(solid.sum())) / max(filled, 1))


def _alpha_of(path: Path) -> np.ndarray | None:
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.ndim != 3 or raw.shape[2] != 4:
        return None
    return raw[..., 3].astype(np.float32) / (65535.0 if raw.dtype == np.uint16 else 255.0)


def hole_fractions(paths: list[Path]) -> dict[str, float]:
    """File name -> hole fraction, for files in one folder; cached in that folder's index."""
    if not paths:
        return {}
    index_path = paths[0].parent / INDEX_NAME
    try:
        known: dict[str, float] = json.loads(index_path.read_text())
    except (OSError, ValueError):
        known = {}
    missing = [p for p in paths if p.name not in known]
    for path in missing:
        alpha = _alpha_of(path)
        known[path.name] = 0.0 if alpha is None else round(hole_fraction(alpha), 4)
    if missing:
        try:
            index_path.write_text(json.dumps(known, sort_keys=True))
        except OSError:
            pass  # a read-only cache still works, it just measures again next time
    return {p.name: known[p.name] for p in paths}


def holed(paths: list[Path], min_fraction: float) -> list[Path]:
    fractions = hole_fractions(paths)
    return [p for p in paths if fractions[p.name] >= min_fraction]
