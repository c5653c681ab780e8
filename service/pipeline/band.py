"""Band-only matting: the matting net runs only where the trimap is unknown.

The unknown band is covered by fixed-size tiles: each tile's centre (its *core*,
`tile - 2 * margin` pixels square) is written back, its margin only gives the net context.
Grid cells are visited in order; a cell whose unknown pixels are not yet covered gets a core
centred on the bounding box of those pixels, and everything that core covers is struck off, so
the cores follow the band (and its neighbours' pixels) instead of a fixed grid: fewer tiles for
the same band, and the margins hold the context on both sides of the edge.

Tiles near the borders slide inwards so every tile keeps its full size (one input shape for ONNX
Runtime); tiles whose windows then coincide share one run. Tiles go through the session in
batches. Pixels outside the band keep the trimap's exact 0 / 1, which is what the net's own
trimap fusion would give them anyway.

`upscale_band` brings a matte computed at a reduced scale (`matting_side`) back to the
inference size: bilinear, optionally refined by a guided filter with the full-size image as the
guide, written only on the full-size trimap's unknown band (known pixels stay exactly 0 / 1).

`matte_dense` runs the net once over the whole padded image; `matte_auto`, what the service
runs, picks whichever of the two feeds the net fewer pixels.
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from . import geometry
from .sessions import MattingModel
from .trimap import unknown_region

Box = tuple[int, int, int, int]  # (top, bottom, left, right), bottom / right exclusive


@dataclass(frozen=True)
class Tile:
    top: int  # window (net input) top-left, in image coordinates
    left: int
    cores: tuple[Box, ...]  # regions written back (several when border windows coincide)


@dataclass(frozen=True)
class TileLayout:
    size: int
    margin: int
    batch: int

    @property
    def core(self) -> int:
        return self.size - 2 * self.margin

    def check(self, multiple: int) -> None:
        if self.size % multiple:
            raise ValueError(f"tile size {self.size} must be a multiple of {multiple}, e.g. "
                             f"{geometry.round_up(self.size, multiple)}")
        if self.margin < 0 or self.core <= 0:
            raise ValueError(f"tile margin {self.margin} must be >= 0 and under half the tile "
                             f"size {self.size}")
        if self.batch < 1:
            raise ValueError("tile batch must be >= 1")


# The tiles the service uses: the fastest in the tile sweep (docs/performance.md, "Tile
# efficiency"; 96/16 and 64/16 were slower, 128/32 no better, batch 1 slower).
TILES = TileLayout(size=128, margin=16, batch=4)
# The guided filter that brings a reduced-scale matte back up (He et al.; +1 point of IoU over
# bilinear, docs/performance.md): radius in px at the matting scale, and regularisation.
GUIDED_RADIUS, GUIDED_EPS = 2, 1e-3


def _clamp(value: int, low: int, high: int) -> int:
    return min(max(value, low), high)


def plan_tiles(unknown: np.ndarray, layout: TileLayout) -> list[Tile]:
    """Tiles whose cores cover every unknown pixel. The image is assumed at least `size` on
    both sides (pad it first)."""
    height, width = unknown.shape
    core, size, margin = layout.core, layout.size, layout.margin
    remaining = unknown.copy()
    windows: dict[tuple[int, int], list[Box]] = {}
    # Only cells that hold unknown pixels at all are visited (a cheap block reduction first).
    rows, cols = -(-height // core), -(-width // core)
    grid = np.zeros((rows * core, cols * core), dtype=bool)
    grid[:height, :width] = unknown
    hit = grid.reshape(rows, core, cols, core).any(axis=(1, 3))
    for row, col in np.argwhere(hit):
        top, left = int(row) * core, int(col) * core
        cell = remaining[top:top + core, left:left + core]
        ys = np.flatnonzero(cell.any(axis=1))
        if ys.size == 0:
            continue  # struck off by an earlier core
        xs = np.flatnonzero(cell.any(axis=0))
        box_top, box_bottom = top + int(ys[0]), top + int(ys[-1]) + 1
        box_left, box_right = left + int(xs[0]), left + int(xs[-1]) + 1
        core_top = _clamp((box_top + box_bottom - core) // 2, 0, height - core)
        core_left = _clamp((box_left + box_right - core) // 2, 0, width - core)
        remaining[core_top:core_top + core, core_left:core_left + core] = False
        window_top = _clamp(core_top - margin, 0, height - size)
        window_left = _clamp(core_left - margin, 0, width - size)
        windows.setdefault((window_top, window_left), []).append(
            (core_top, core_top + core, core_left, core_left + core))
    return [Tile(top, left, tuple(cores)) for (top, left), cores in windows.items()]


def _batches(tiles: list[Tile], size: int) -> Iterator[list[Tile]]:
    for start in range(0, len(tiles), size):
        yield tiles[start:start + size]


def matte_band(model: MattingModel, rgb: np.ndarray, trimap: np.ndarray, layout: TileLayout,
               run: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    """Alpha (float32, H x W) and the number of tiles run. `run` replaces `model.predict`
    (the runner passes one that honours the request's deadline)."""
    predict = run or model.predict
    height, width = trimap.shape
    alpha = trimap.copy()
    unknown = unknown_region(trimap)
    if not unknown.any():
        return alpha, 0
    # Images smaller than a tile are padded once; tiles then always have the full size.
    padded_h, padded_w = max(height, layout.size), max(width, layout.size)
    rgb_padded = geometry.pad_to(rgb, padded_h, padded_w)
    trimap_padded = geometry.pad_to(trimap, padded_h, padded_w)
    unknown_padded = np.zeros((padded_h, padded_w), dtype=bool)
    unknown_padded[:height, :width] = unknown
    tiles = plan_tiles(unknown_padded, layout)
    size = layout.size
    for chunk in _batches(tiles, layout.batch):
        batch = np.empty((len(chunk), 4, size, size), dtype=np.float32)
        for index, tile in enumerate(chunk):
            window = (slice(tile.top, tile.top + size), slice(tile.left, tile.left + size))
            model.normalise(rgb_padded[window], out=batch[index, :3])
            batch[index, 3] = trimap_padded[window]
        out = predict(batch)
        for index, tile in enumerate(chunk):
            for top, bottom, left, right in tile.cores:
                bottom, right = min(bottom, height), min(right, width)
                if bottom <= top or right <= left:
                    continue
                alpha[top:bottom, left:right] = out[index, top - tile.top:bottom - tile.top,
                                                    left - tile.left:right - tile.left]
    return alpha, len(tiles)


def net_pixels(mode: str, trimap: np.ndarray, layout: TileLayout, multiple: int) -> int:
    """Pixels the matting net is fed by `mode` ("band" or "dense") on this trimap."""
    height, width = trimap.shape
    if mode == "dense":
        return geometry.round_up(height, multiple) * geometry.round_up(width, multiple)
    unknown = unknown_region(trimap)
    if not unknown.any():
        return 0
    padded_h, padded_w = max(height, layout.size), max(width, layout.size)
    unknown_padded = np.zeros((padded_h, padded_w), dtype=bool)
    unknown_padded[:height, :width] = unknown
    return len(plan_tiles(unknown_padded, layout)) * layout.size ** 2


def choose_mode(trimap: np.ndarray, layout: TileLayout, multiple: int) -> str:
    """"band" or "dense", whichever feeds the net fewer pixels (dense on a tie)."""
    band_px = net_pixels("band", trimap, layout, multiple)
    return "dense" if net_pixels("dense", trimap, layout, multiple) <= band_px else "band"


def matte_auto(model: MattingModel, rgb: np.ndarray, trimap: np.ndarray, layout: TileLayout,
               run: Callable[[np.ndarray], np.ndarray] | None = None
               ) -> tuple[np.ndarray, int, int]:
    """What the service runs: band tiles or one dense pass, whichever feeds the net fewer
    pixels. Tiles with context margins hold ~7-9x the band's pixels (docs/performance.md), so
    on a small image (a reduced-scale crop of the band's box) one pass over it is cheaper.
    (alpha, tiles run, pixels fed to the net)."""
    if not unknown_region(trimap).any():
        return trimap.copy(), 0, 0
    multiple = model.spec.size_multiple
    if choose_mode(trimap, layout, multiple) == "dense":
        alpha, tiles = matte_dense(model, rgb, trimap, run)
        return alpha, tiles, net_pixels("dense", trimap, layout, multiple)
    alpha, tiles = matte_band(model, rgb, trimap, layout, run)
    return alpha, tiles, tiles * layout.size ** 2


def matte_dense(model: MattingModel, rgb: np.ndarray, trimap: np.ndarray,
                run: Callable[[np.ndarray], np.ndarray] | None = None) -> tuple[np.ndarray, int]:
    predict = run or model.predict
    height, width = trimap.shape
    multiple = model.spec.size_multiple
    rgb_padded = geometry.pad_to_multiple(rgb, multiple)
    trimap_padded = geometry.pad_to_multiple(trimap, multiple)
    batch = np.empty((1, 4) + trimap_padded.shape, dtype=np.float32)
    model.normalise(rgb_padded, out=batch[0, :3])
    batch[0, 3] = trimap_padded
    return np.ascontiguousarray(predict(batch)[0, :height, :width]), 1


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(image, -1, (2 * radius + 1, 2 * radius + 1), normalize=True,
                         borderType=cv2.BORDER_REFLECT)


def _grey(rgb: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32) * (1.0 / 255.0)


def guided_coefficients(guide: np.ndarray, alpha: np.ndarray, radius: int,
                        eps: float) -> tuple[np.ndarray, np.ndarray]:
    """He et al.'s guided filter with a grey guide: the box-averaged linear coefficients
    (A, B) such that the filtered alpha is A * guide + B. Computed at the matting scale, they
    are upsampled and applied to the full-size guide (the fast guided filter)."""
    mean_i = _box(guide, radius)
    mean_p = _box(alpha, radius)
    cov_ip = _box(guide * alpha, radius) - mean_i * mean_p
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return _box(a, radius), _box(b, radius)


def upscale_band(alpha_small: np.ndarray, rgb_small: np.ndarray, trimap_full: np.ndarray,
                 rgb_full: np.ndarray, refine: Literal["none", "guided"] = "guided",
                 radius: int = GUIDED_RADIUS, eps: float = GUIDED_EPS) -> np.ndarray:
    """A matte computed at a reduced scale, brought to the size of `trimap_full`.

    Bilinear, or (refine="guided") the fast guided filter: its coefficients from the small
    image and matte, applied to the full-size image, so edges follow the full-size pixels.
    Only the full-size trimap's unknown band takes the result; known pixels keep its exact
    0 / 1."""
    height, width = trimap_full.shape
    out = trimap_full.copy()
    unknown = unknown_region(trimap_full)
    if not unknown.any():
        return out
    if refine == "guided":
        coef_a, coef_b = guided_coefficients(_grey(rgb_small), alpha_small.astype(np.float32),
                                             radius, eps)
        coef_a = cv2.resize(coef_a, (width, height), interpolation=cv2.INTER_LINEAR)
        coef_b = cv2.resize(coef_b, (width, height), interpolation=cv2.INTER_LINEAR)
        guide = _grey(rgb_full)
        values = coef_a[unknown] * guide[unknown] + coef_b[unknown]
    elif refine == "none":
        values = cv2.resize(alpha_small.astype(np.float32), (width, height),
                            interpolation=cv2.INTER_LINEAR)[unknown]
    else:
        raise ValueError(f"refine must be none or guided, not {refine!r}")
    out[unknown] = np.clip(values, 0.0, 1.0)
    return out


def mix_with_mask(alpha: np.ndarray, trimap: np.ndarray, probability: np.ndarray,
                  weight: float, matting_only: np.ndarray | None = None) -> np.ndarray:
    """In the unknown band, `weight` x the matting net's alpha + the rest x the segmenter's
    probability (at any size; resized to `alpha`'s); known pixels keep their exact 0 / 1. The
    two nets err differently near edges (the matting net on pale parts, the segmenter by
    blurring), so their mean is closer to the truth than either (docs/performance.md, lever 7).
    `matting_only` pixels keep the matting net's alpha: the segmenter is known to be wrong there
    (backdrop.py)."""
    if weight >= 1.0:
        return alpha
    height, width = alpha.shape
    probability = geometry.resize(probability, width, height)
    out = alpha.copy()
    unknown = unknown_region(trimap)
    if matting_only is not None:
        unknown &= ~matting_only
    # An external segmenter without an activation may stray outside [0, 1].
    mixed = weight * alpha[unknown] + (1.0 - weight) * np.clip(probability[unknown], 0.0, 1.0)
    out[unknown] = mixed
    return out
