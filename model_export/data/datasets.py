"""Training datasets (on-the-fly augmentation) and the evaluation sets.

Every item is a pure function of (seed, epoch, index): the same arguments give the same item.
Call ``set_epoch(n)`` at the start of each epoch (or pass another seed on resume) to see new
augmentations; with ``persistent_workers=True`` call it before creating the DataLoader iterator.
Use ``worker_init`` as the DataLoader's ``worker_init_fn`` so OpenCV and torch stay on one thread
per worker.
"""
from __future__ import annotations

import logging
import signal
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from . import synth
from .ccp import DEFAULT_ROOT as CCP_ROOT
from .ccp import ccp_split, load_ccp
from .library import Library, read_rgb
from .real import DEFAULT_ROOTS as REAL_ROOTS
from .real import EVAL_ROOTS, RealItem, by_source, load_real, real_items
from .sources import DEFAULT_CACHE

log = logging.getLogger(__name__)

Rng = np.random.Generator
EVAL_SETS = ("studio", "cluttered")


def worker_init(_: int = 0) -> None:
    """DataLoader ``worker_init_fn``: one thread per worker for OpenCV and torch.

    Loader workers ignore SIGTERM / SIGINT: a signal sent to the whole run (`pkill -f`, Ctrl-C,
    a process-group kill) must reach only the trainer, which checkpoints and then stops them;
    a worker dying first would crash the trainer before it saves."""
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _ccp_ids(split: str, root: Path = CCP_ROOT) -> list[str]:
    if not (root / "image").is_dir():
        log.warning("CCP not found at %s: training without it", root)
        return []
    return ccp_split(split, root)


# --------------------------------------------------------------------------- scenes

@dataclass
class Scene:
    image: np.ndarray  # [H,W,3] float32, == alpha * fg + (1 - alpha) * bg
    fg: np.ndarray  # [H,W,3]
    alpha: np.ndarray  # [H,W]
    bg: np.ndarray  # [H,W,3]


Object = tuple[np.ndarray, np.ndarray]  # rgb [h,w,3] float32, alpha [h,w]

# Shadows cast on real floors and tables: from faint to the near-black contact shadow a shoe
# leaves on wood, which the segmenter took as part of the shoe.
SCENE_SHADOW_STRENGTH = (0.2, 0.85)


def compose_scene(rng: Rng, lib: Library, h: int, w: int, style: str, n_objects: int | None = None,
                  main: Object | None = None, main_frac: tuple[float, float] = (0.45, 0.95),
                  jitter: bool = True, cluttered_shadow_p: float = 0.0) -> Scene:
    """1-3 objects on a studio backdrop (with contact shadows and reflections) or a cluttered one.

    ``main`` replaces the library sample of the first (largest) object, e.g. a CCP person.
    ``cluttered_shadow_p``: the chance that an object on a cluttered backdrop casts a shadow on
    it (studio objects cast one 60 % of the time)."""
    if style == "studio":
        bg, floor = synth.studio_background(rng, h, w)
    else:
        bg, floor = lib.cluttered_background(rng, h, w), 1.0
        if jitter and rng.random() < 0.5:
            bg = synth.colour_jitter(rng, bg, 0.5)
    if n_objects is None:
        n_objects = int(rng.choice([1, 2, 3], p=[0.6, 0.27, 0.13]))
    layers = []
    for k in range(n_objects):
        if k == 0 and main is not None:
            rgb, alpha = main
        else:
            rgb, alpha, _ = lib.sample_fg(rng)
        if jitter and rng.random() < 0.7:
            rgb = synth.colour_jitter(rng, rgb, 0.6)
        if rng.random() < 0.5:
            rgb, alpha = rgb[:, ::-1], alpha[:, ::-1]
        oh, ow = alpha.shape
        frac = rng.uniform(*main_frac) if k == 0 else rng.uniform(0.15, 0.55)
        scale = frac * min(h / oh, w / ow)
        nw, nh = max(2, round(ow * scale)), max(2, round(oh * scale))
        rgb, alpha = synth.resize_rgba(
            np.ascontiguousarray(rgb), np.ascontiguousarray(alpha), nw, nh
        )
        if k == 0 and style == "studio" and rng.random() < 0.7:
            # product shot: centred, standing on the floor line when there is room
            x = (w - nw) // 2 + int(rng.normal(0, 0.05 * w))
            y = min(int(floor * h) - nh, (h - nh) // 2 + int(rng.normal(0, 0.08 * h)))
            y = max(y, int(rng.integers(-nh // 12 - 1, 1)) if nh > h * 0.8 else 0)
        elif rng.random() < 0.12:  # partly out of frame
            x = int(rng.integers(-nw // 3, max(1, w - 2 * nw // 3)))
            y = int(rng.integers(-nh // 3, max(1, h - 2 * nh // 3)))
        else:
            x = int(rng.integers(0, max(1, w - nw + 1)))
            y = int(rng.integers(0, max(1, h - nh + 1)))
        layer = synth.place(rgb, alpha, (h, w), x, y)
        if style == "studio" and rng.random() < 0.6:
            bg = synth.add_shadow(rng, bg, layer.alpha, layer.box)
        elif style != "studio" and cluttered_shadow_p > 0 and rng.random() < cluttered_shadow_p:
            bg = synth.scene_shadow(rng, bg, layer.alpha, layer.box, SCENE_SHADOW_STRENGTH)
        if style == "studio" and rng.random() < 0.12:
            bg = synth.add_reflection(rng, bg, layer)
        layers.append(layer)
    if len(layers) > 1:
        order = rng.permutation(len(layers))
        layers = [layers[i] for i in order]
    fg, alpha = synth.over(layers, (h, w))
    image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
    return Scene(image.astype(np.float32), fg, alpha, bg.astype(np.float32))


def _cast_shadow(rng: Rng, rgb: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """A real photo whose object casts one more shadow onto its own scene: only the background
    (1 - mask) darkens, so the label stays true."""
    shaded = synth.scene_shadow(rng, rgb, mask, synth.box_of(mask), SCENE_SHADOW_STRENGTH)
    keep = mask[..., None]
    return (keep * rgb + (1 - keep) * shaded).astype(np.float32)


def _random_hw(rng: Rng, long_side: int) -> tuple[int, int]:
    """A product-photo aspect ratio (square, 4:3, 3:4, 2:3, 3:2, 16:9...) with the given long
    side."""
    aspect = float(rng.choice([1.0, 1.0, 4 / 3, 3 / 4, 2 / 3, 3 / 2, 16 / 9, 9 / 16]))
    if aspect >= 1:
        return max(8, round(long_side / aspect)), long_side
    return long_side, max(8, round(long_side * aspect))


def _pad_fill(rng: Rng) -> np.ndarray:
    """Letterbox padding: mostly the ImageNet mean (zeros after normalisation), sometimes black or
    white, so the net does not depend on what the service pads with."""
    r = rng.random()
    if r < 0.7:
        return synth.IMAGENET_MEAN
    return np.full(3, 0.0 if r < 0.85 else 1.0, np.float32)


def _trim(rgb: np.ndarray, alpha: np.ndarray) -> Object:
    ys, xs = np.nonzero(alpha > 0.01)
    if len(ys) == 0:
        return rgb, alpha
    return rgb[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1], alpha[
        ys.min() : ys.max() + 1, xs.min() : xs.max() + 1
    ]


class _SeededDataset(Dataset):
    """Items are a pure function of (seed, epoch, index): reproducible across resumes and
    loader workers. Call `set_epoch` every epoch for fresh augmentations."""

    seed: int
    epoch: int
    length: int

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.length

    def _rng(self, index: int) -> Rng:
        if not 0 <= index < self.length:
            raise IndexError(index)
        return np.random.default_rng([self.seed, self.epoch, index])


# --------------------------------------------------------------------------- segmentation

class SegmentationDataset(_SeededDataset):
    """Whole-image and cropped views for the segmenter: real photos with human-drawn masks
    (data/real.py; `real_share` of the views), CCP photos, CCP persons pasted on other
    backgrounds, and composites of 1-3 library objects on studio or cluttered backgrounds.

    item -> {"image": float32 [3,S,S] ImageNet-normalised, "mask": float32 [1,S,S] in [0,1]}"""

    def __init__(self, split: str = "train", size: int = 320, cache: Path = DEFAULT_CACHE,
                 seed: int = 0, ccp_share: float = 0.5, length: int | None = None,
                 ccp_root: Path = CCP_ROOT, hole_share: float = 0.0, real_share: float = 0.0,
                 real_roots: tuple[Path, ...] = REAL_ROOTS, own_tone_share: float = 0.0,
                 soft_teacher: bool = False, shadow_share: float = 0.0) -> None:
        self.split, self.size, self.seed, self.epoch = split, size, seed, 0
        self.lib = Library(Path(cache), split, hole_share=hole_share)
        self.ccp_root = ccp_root
        self.ccp_ids = _ccp_ids(split, ccp_root)
        self.ccp_share = ccp_share if self.ccp_ids else 0.0
        self.real = by_source(real_items(split, real_roots)) if real_share > 0 else {}
        self.real_share = real_share if self.real else 0.0
        self.own_tone_share = own_tone_share
        self.shadow_share = shadow_share
        self.soft_teacher = soft_teacher
        if real_share > 0 and not self.real:
            log.warning("no real photos in %s: training without them", real_roots)
        # Sources drawn by the square root of their size: the big one (980 feral cats) must not
        # drown the others, nor a 10-photo source be seen a hundred times an epoch.
        counts = np.array([len(v) for v in self.real.values()], np.float64)
        self.real_weights = np.sqrt(counts) / np.sqrt(counts).sum() if len(counts) else counts
        self.length = length if length is not None else (2000 if split == "train" else 300)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self._rng(index)
        draw = rng.random()
        soft = False
        if draw < self.real_share:
            image, mask, soft = self._real_view(rng)
        elif draw < self.real_share + (1 - self.real_share) * self.ccp_share:
            image, mask = self._ccp_view(rng)
        else:
            image, mask = self._composite_view(rng)
        image = synth.degrade(rng, image)
        return {"image": torch.from_numpy(synth.normalise(image)),
                "mask": torch.from_numpy(np.clip(mask, 0.0, 1.0)[None].astype(np.float32)),
                "soft": torch.tensor(float(soft))}

    def _finish(
        self, rng: Rng, image: np.ndarray, mask: np.ndarray, letterbox_p: float
    ) -> tuple[np.ndarray, np.ndarray]:
        """To S x S: letterboxed whole view (as the service sees it) or a square crop."""
        S = self.size
        if rng.random() < letterbox_p:
            return synth.letterbox(rng, image, mask, S, _pad_fill(rng))
        h, w = mask.shape
        side = int(min(h, w) * rng.uniform(0.55, 1.0))
        y = int(rng.integers(0, h - side + 1))
        x = int(rng.integers(0, w - side + 1))
        interp = cv2.INTER_AREA if side > S else cv2.INTER_LINEAR
        image = cv2.resize(image[y:y + side, x:x + side], (S, S), interpolation=interp)
        mask = cv2.resize(mask[y:y + side, x:x + side], (S, S), interpolation=interp)
        return image, mask

    def _ccp_view(self, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
        item = self.ccp_ids[int(rng.integers(len(self.ccp_ids)))]
        rgb_u8, mask = load_ccp(item, self.ccp_root)
        if rng.random() < 0.5:
            rgb_u8, mask = rgb_u8[:, ::-1], mask[:, ::-1]
        # work at about twice the output size: cheap and enough for every view
        h, w = mask.shape
        s = min(1.0, 2 * self.size / max(h, w))
        rgb = cv2.resize(
            np.ascontiguousarray(rgb_u8), (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA
        )
        mask = cv2.resize(
            np.ascontiguousarray(mask), (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA
        )
        rgb = synth.colour_jitter(rng, rgb.astype(np.float32) / 255.0)
        mode = rng.random()
        if mode < 0.3:  # the person cut out and pasted on another background
            person = _trim(rgb, mask)
            h, w = _random_hw(rng, self.size)
            style = "studio" if rng.random() < 0.5 else "cluttered"
            scene = compose_scene(rng, self.lib, h, w, style, n_objects=int(rng.choice([1, 1, 2])),
                                  main=person, main_frac=(0.6, 1.0),
                                  cluttered_shadow_p=self.shadow_share)
            return self._finish(rng, scene.image, scene.alpha, 0.7)
        if mode < 0.75:  # whole photo, mildly cropped, letterboxed
            h, w = mask.shape
            ch, cw = int(h * rng.uniform(0.8, 1.0)), int(w * rng.uniform(0.8, 1.0))
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return synth.letterbox(
                rng,
                rgb[y : y + ch, x : x + cw],
                mask[y : y + ch, x : x + cw],
                self.size,
                _pad_fill(rng),
            )
        return self._finish(rng, rgb, np.ascontiguousarray(mask), 0.0)

    def _real_item(self, rng: Rng) -> RealItem:
        items = list(self.real.values())[int(rng.choice(len(self.real), p=self.real_weights))]
        return items[int(rng.integers(len(items)))]

    def _real_view(self, rng: Rng) -> tuple[np.ndarray, np.ndarray, bool]:
        """A real photo as the service sees it (whole, letterboxed), mildly or hard cropped
        (crops that cut the object), or its object pasted into another real photo's scene.
        The flag: its mask is a teacher's soft one (`soft_teacher`), for a confidence-weighted
        loss."""
        item = self._real_item(rng)
        soft = self.soft_teacher and item.soft
        image, mask = self._real_view_of(rng, *load_real(item, soft))
        return image, mask, soft

    def _real_view_of(self, rng: Rng, rgb_u8: np.ndarray, mask: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
        if rng.random() < 0.5:
            rgb_u8, mask = rgb_u8[:, ::-1], mask[:, ::-1]
        h, w = mask.shape
        s = min(1.0, 2 * self.size / max(h, w))
        size = (max(8, round(w * s)), max(8, round(h * s)))
        rgb = cv2.resize(np.ascontiguousarray(rgb_u8), size, interpolation=cv2.INTER_AREA)
        mask = cv2.resize(np.ascontiguousarray(mask), size, interpolation=cv2.INTER_AREA)
        rgb = synth.colour_jitter(rng, rgb.astype(np.float32) / 255.0)
        if rng.random() < self.own_tone_share:
            return self._on_own_tones(rng, rgb, mask)
        mode = rng.random()
        if mode < 0.15:
            return self._pasted_into_real(rng, rgb, mask)
        if self.shadow_share > 0 and rng.random() < self.shadow_share:
            rgb = _cast_shadow(rng, rgb, mask)
        if mode < 0.7:  # whole photo, mildly cropped, letterboxed
            h, w = mask.shape
            ch, cw = int(h * rng.uniform(0.75, 1.0)), int(w * rng.uniform(0.75, 1.0))
            y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
            return synth.letterbox(rng, rgb[y:y + ch, x:x + cw], mask[y:y + ch, x:x + cw],
                                   self.size, _pad_fill(rng))
        return self._finish(rng, rgb, np.ascontiguousarray(mask), 0.0)

    def _pasted_into_real(self, rng: Rng, rgb: np.ndarray, mask: np.ndarray
                          ) -> tuple[np.ndarray, np.ndarray]:
        """The object (feathered polygon mask) pasted onto another real photo whose own object
        was cut out of the frame: a real scene, with its clutter, that must stay background."""
        obj = _trim(rgb, cv2.GaussianBlur(mask, (0, 0), 0.7))
        scene_u8, scene_mask = load_real(self._real_item(rng))
        # The largest band of rows or columns free of the scene's own object.
        rows, cols = scene_mask.any(axis=1), scene_mask.any(axis=0)
        spans = []
        for axis, used in ((0, rows), (1, cols)):
            idx = np.nonzero(used)[0]
            if len(idx) == 0:
                spans.append((len(used), axis, 0, len(used)))
                continue
            spans += [
                (idx[0], axis, 0, idx[0]),
                (len(used) - idx[-1] - 1, axis, idx[-1] + 1, len(used)),
            ]
        length, axis, start, stop = max(spans)
        if length < 0.3 * scene_mask.shape[axis]:
            return synth.letterbox(rng, rgb, mask, self.size, _pad_fill(rng))
        scene = scene_u8[start:stop] if axis == 0 else scene_u8[:, start:stop]
        h, w = _random_hw(rng, self.size)
        bg = synth.photo_view(rng, scene.astype(np.float32) / 255.0, h, w)
        return self._object_before(rng, obj, bg)

    def _object_before(self, rng: Rng, obj: Object, bg: np.ndarray
                       ) -> tuple[np.ndarray, np.ndarray]:
        """`obj` placed at random on the backdrop `bg` (40-95 % of its side), casting a shadow
        on it `shadow_share` of the time, then finished."""
        h, w = bg.shape[:2]
        composed = compose_scene(rng, self.lib, h, w, "cluttered", n_objects=1, main=obj,
                                 main_frac=(0.4, 0.95), jitter=False)
        if self.shadow_share > 0 and rng.random() < self.shadow_share:
            bg = synth.scene_shadow(rng, bg, composed.alpha, synth.box_of(composed.alpha),
                                    SCENE_SHADOW_STRENGTH)
        alpha = composed.alpha[..., None]
        image = alpha * composed.fg + (1 - alpha) * bg
        return self._finish(rng, image.astype(np.float32), composed.alpha, 0.7)

    def _on_own_tones(self, rng: Rng, rgb: np.ndarray, mask: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
        """The object pasted before a backdrop of its own colours (synth.own_tone_backdrop), half
        the time above a ground of a background photo, as a shoe stands on a wall before the sky."""
        obj = _trim(rgb, cv2.GaussianBlur(mask, (0, 0), 0.7))
        h, w = _random_hw(rng, self.size)
        bg = synth.own_tone_backdrop(rng, obj[0], obj[1], h, w)
        if rng.random() < 0.5:
            horizon = int(h * rng.uniform(0.45, 0.85))
            bg[horizon:] = self.lib.cluttered_background(rng, h - horizon, w)
        return self._object_before(rng, obj, bg)

    def _composite_view(self, rng: Rng) -> tuple[np.ndarray, np.ndarray]:
        style = "studio" if rng.random() < 0.55 else "cluttered"
        if rng.random() < 0.6:
            h, w = _random_hw(rng, self.size)
            scene = compose_scene(rng, self.lib, h, w, style, cluttered_shadow_p=self.shadow_share)
            return self._finish(rng, scene.image, scene.alpha, 1.0)
        scene = compose_scene(rng, self.lib, self.size, self.size, style,
                              cluttered_shadow_p=self.shadow_share)
        return scene.image, scene.alpha


# --------------------------------------------------------------------------- matting

class MattingDataset(_SeededDataset):
    """Crops around the boundary of true-alpha composites, for the matting net.

    item -> {"image": float32 [3,S,S] normalised composite, "alpha": [1,S,S], "fg": [3,S,S] in
    [0,1], "bg": [3,S,S] in [0,1]} with image == alpha * fg + (1 - alpha) * bg before
    normalisation (exactly: colour jitter, noise and blur are applied to fg and bg separately,
    no JPEG). Where alpha == 0, fg holds the nearby foreground colours spread outwards."""

    def __init__(self, split: str = "train", crop: int = 320, cache: Path = DEFAULT_CACHE,
                 seed: int = 0, length: int | None = None, boundary_p: float = 0.85,
                 hole_share: float = 0.0, studio_share: float = 0.45) -> None:
        self.split, self.crop, self.seed, self.epoch = split, crop, seed, 0
        self.lib = Library(Path(cache), split, procedural=True, hole_share=hole_share)
        self.studio_share = studio_share
        if not self.lib.has_true_alpha:
            log.warning("no foreground library in %s: matting uses procedural objects only "
                        "(run `python -m model_export.data fetch` then `build`)", cache)
        self.boundary_p = boundary_p
        self.length = length if length is not None else (2000 if split == "train" else 300)

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        rng = self._rng(index)
        S = self.crop
        C = int(S * rng.uniform(1.0, 1.6))
        style = "studio" if rng.random() < self.studio_share else "cluttered"
        scene = compose_scene(rng, self.lib, C, C, style, n_objects=int(rng.choice([1, 1, 1, 2])),
                              main_frac=(0.5, 1.0))
        y, x = self._window(rng, scene.alpha)
        fg = scene.fg[y:y + S, x:x + S]
        bg = scene.bg[y:y + S, x:x + S]
        alpha = scene.alpha[y:y + S, x:x + S]
        if rng.random() < 0.2:
            bg = np.clip(bg + rng.normal(0, rng.uniform(0.005, 0.03), bg.shape), 0, 1).astype(
                np.float32
            )
        if rng.random() < 0.15:
            bg = cv2.GaussianBlur(bg, (0, 0), float(rng.uniform(0.5, 3)))
        if rng.random() < 0.1:
            fg = np.clip(fg + rng.normal(0, rng.uniform(0.005, 0.02), fg.shape), 0, 1).astype(
                np.float32
            )
        fg = synth.spread_colours(fg, alpha)
        image = alpha[..., None] * fg + (1 - alpha[..., None]) * bg
        return {
            "image": torch.from_numpy(synth.normalise(image)),
            "alpha": torch.from_numpy(np.ascontiguousarray(alpha[None], dtype=np.float32)),
            "fg": torch.from_numpy(np.ascontiguousarray(fg.transpose(2, 0, 1), dtype=np.float32)),
            "bg": torch.from_numpy(np.ascontiguousarray(bg.transpose(2, 0, 1), dtype=np.float32)),
        }

    def _window(self, rng: Rng, alpha: np.ndarray) -> tuple[int, int]:
        """Top-left of an S x S crop, centred on a boundary pixel most of the time."""
        S = self.crop
        H, W = alpha.shape
        cy, cx = H // 2, W // 2
        if rng.random() < self.boundary_p:
            hard = (alpha > 0.5).astype(np.uint8)
            band = cv2.morphologyEx(hard, cv2.MORPH_GRADIENT, np.ones((5, 5), np.uint8)) > 0
            band |= (alpha > 0.02) & (alpha < 0.98)
            ys, xs = np.nonzero(band)
            if len(ys):
                k = int(rng.integers(len(ys)))
                cy, cx = int(ys[k]), int(xs[k])
        else:
            cy, cx = int(rng.integers(0, H)), int(rng.integers(0, W))
        y = int(np.clip(cy - S // 2 + rng.integers(-S // 6, S // 6 + 1), 0, H - S))
        x = int(np.clip(cx - S // 2 + rng.integers(-S // 6, S // 6 + 1), 0, W - S))
        return y, x


# --------------------------------------------------------------------------- evaluation

def evaluation_sets(cache: Path = DEFAULT_CACHE, ccp_root: Path = CCP_ROOT,
                    real_roots: tuple[Path, ...] = EVAL_ROOTS
                    ) -> dict[str, list[tuple[str, np.ndarray, np.ndarray]]]:
    """name -> [(id, RGB uint8 [H,W,3] at natural size, GT alpha float32 [H,W] in [0,1])].

    Real photographs first: 'real_<source>' for each source's validation ids (data/real.py),
    then 'ccp_val' (ccp.py's validation split), then 'studio' and 'cluttered', the held-out
    composites written by ``build`` (from val foregrounds and backgrounds only). Sets that are
    not built or not installed are left out, with a warning."""
    sets: dict[str, list[tuple[str, np.ndarray, np.ndarray]]] = {}
    for source, items in by_source(real_items("val", real_roots)).items():
        sets[f"real_{source}"] = [(item.id, *load_real(item)) for item in items]
    ids = _ccp_ids("val", ccp_root)
    if ids:
        sets["ccp_val"] = [(i, *load_ccp(i, ccp_root)) for i in ids]
    for name in EVAL_SETS:
        folder = Path(cache) / "eval" / name
        items = []
        for image_path in sorted(folder.glob("*.jpg")):
            alpha_path = image_path.with_suffix(".png")
            if not alpha_path.exists():
                continue
            alpha = cv2.imread(str(alpha_path), cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
            items.append((image_path.stem, read_rgb(image_path), alpha))
        if items:
            sets[name] = items
        else:
            log.warning(
                "evaluation set %r not built in %s: run `python -m model_export.data build`",
                name,
                cache,
            )
    return sets
