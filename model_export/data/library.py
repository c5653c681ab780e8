"""Read side of the built cache: the foreground library and background photos of one split.

Layout written by ``build.py`` (all optional; missing parts degrade to procedural objects and
synthetic backgrounds)::

    <cache>/fg/<split>/<source>__<name>.png     RGBA cut-outs trimmed to their alpha box
    <cache>/bg/<split>/<source>__<name>.jpg     background photos, <= 1024 px long side
    <cache>/eval/<set>/<id>.jpg, <id>.png        held-out composites and their alpha
    <cache>/manifest.json
"""
from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import cv2
import numpy as np

from . import holes, synth

# Share of each foreground source in the composites (renormalised over what is installed).
# 'procedural' (textured blobs with hair-like strands) is always available.
FG_WEIGHTS = {
    "tuxpaint": 0.35,
    "furniture": 0.25,
    "emoji3d": 0.25,
    "openclipart": 0.07,
    "procedural": 0.08,
}
SPLITS = ("train", "val")


def _check_split(split: str) -> None:
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}: use 'train' or 'val'")


def read_rgba(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """float32 RGB [H,W,3] and alpha [H,W] in [0,1] from an RGBA PNG."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise OSError(f"cannot read {path}")
    if raw.ndim == 2:
        raw = cv2.cvtColor(raw, cv2.COLOR_GRAY2BGRA)
    if raw.shape[2] == 3:
        raw = cv2.cvtColor(raw, cv2.COLOR_BGR2BGRA)
    scale = 65535.0 if raw.dtype == np.uint16 else 255.0
    rgb = raw[..., 2::-1].astype(np.float32) / scale
    return np.ascontiguousarray(rgb), raw[..., 3].astype(np.float32) / scale


def read_rgb(path: Path) -> np.ndarray:
    raw = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if raw is None:
        raise OSError(f"cannot read {path}")
    return np.ascontiguousarray(raw[..., ::-1])


class Library:
    """Lists the files of one split; samples foregrounds by source weight and background photos."""

    def __init__(self, cache: Path, split: str, procedural: bool = True,
                 hole_share: float = 0.0, hole_min: float = 0.05) -> None:
        _check_split(split)
        self.cache = Path(cache)
        self.split = split
        self.fg: dict[str, list[Path]] = defaultdict(list)
        for path in sorted((self.cache / "fg" / split).glob("*.png")):
            self.fg[path.name.split("__", 1)[0]].append(path)
        self.bg: list[Path] = sorted((self.cache / "bg" / split).glob("*.jpg"))
        sources = [s for s in self.fg if s in FG_WEIGHTS] + [
            s for s in self.fg if s not in FG_WEIGHTS
        ]
        if procedural or not sources:
            sources.append("procedural")
        weights = np.array([FG_WEIGHTS.get(s, 0.05) for s in sources], np.float64)
        self.sources = sources
        self.weights = weights / weights.sum()
        # a share of draws taken from objects with see-through holes (holes.py), any source
        self.hole_share = hole_share
        self.holed: list[Path] = []
        if hole_share > 0:
            self.holed = holes.holed([p for files in self.fg.values() for p in files], hole_min)

    @property
    def has_true_alpha(self) -> bool:
        return any(self.fg.values())

    def counts(self) -> dict[str, int]:
        return {**{s: len(v) for s, v in self.fg.items()}, "backgrounds": len(self.bg)}

    def sample_fg(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, str]:
        """(rgb float32 [h,w,3], alpha [h,w], source name)."""
        if self.holed and rng.random() < self.hole_share:
            path = self.holed[int(rng.integers(len(self.holed)))]
            rgb, alpha = read_rgba(path)
            return rgb, alpha, path.name.split("__", 1)[0]
        source = str(self.sources[int(rng.choice(len(self.sources), p=self.weights))])
        if source == "procedural":
            rgb, alpha = synth.procedural_object(rng, int(rng.integers(160, 320)))
            return rgb, alpha, source
        files = self.fg[source]
        rgb, alpha = read_rgba(files[int(rng.integers(len(files)))])
        return rgb, alpha, source

    def sample_photo(self, rng: np.random.Generator) -> np.ndarray | None:
        if not self.bg:
            return None
        return read_rgb(self.bg[int(rng.integers(len(self.bg)))])

    def cluttered_background(self, rng: np.random.Generator, h: int, w: int) -> np.ndarray:
        photo = self.sample_photo(rng) if rng.random() < 0.9 else None
        if photo is None:
            return synth.synthetic_clutter(rng, h, w)
        return synth.photo_view(rng, photo, h, w)
