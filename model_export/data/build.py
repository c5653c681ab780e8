"""Build the data cache: the foreground library, background photos and held-out composites.

Reproducible (every random choice is seeded, the train/val split is a hash of the object's name)
and idempotent (files already there are kept; a second run only writes what is missing and the
manifest). Sources that are not installed are skipped and recorded as such.
"""
from __future__ import annotations

import hashlib
import io
import json
import logging
import re
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from . import synth
from .ccp import DEFAULT_ROOT as CCP_ROOT
from .ccp import ccp_split
from .sources import DEFAULT_CACHE, NPM_ROOT

log = logging.getLogger(__name__)

BUILD_VERSION = 1
VAL_PERCENT = 10
VAL_PERCENT_BG = 15  # few background photos: a larger share keeps the held-out set varied
FG_MAX_SIDE = 800
FG_MIN_SIDE = 48
BG_LONG_SIDE = 1024
BG_MIN_SIDE = 300
EVAL_LONG_SIDE = 640
EVAL_COUNTS = {"studio": 150, "cluttered": 150}
OPENCLIPART_COUNT = 300
SVG_SECONDS = 8

# gcompris-qt-data activities whose big RGB images are photographs (animals, monuments,
# landscapes, aquariums); the others are drawings, collages or user-interface art.
GCOMPRIS_PHOTO_BUNDLES = ("clickgame", "details", "erase", "explore_farm_animals",
                          "explore_monuments", "explore_world_animals", "explore_world_music")
TUXPAINT_SKIP = ("symbols/",)  # letters, digits, music notes: not objects


@dataclass
class Roots:
    """Where each source lives once installed (overridable, e.g. by tests)."""

    tuxpaint: Path = Path("/usr/share/tuxpaint/stamps")
    emoji3d: Path = NPM_ROOT / "@lobehub" / "fluent-emoji-3d" / "assets"
    openclipart: Path = Path("/usr/share/openclipart/svg")
    gnome: Path = Path("/usr/share/backgrounds/gnome")
    desktop_base: Path = Path("/usr/share/desktop-base")
    gcompris: Path = Path("/usr/share/gcompris-qt/rcc")
    furniture: Path = Path("/usr/share/sweethome3d/furniture")
    ccp: Path = CCP_ROOT


SOURCES = {
    # name: (kind, origin, licence, copyright file)
    "tuxpaint": (
        "foreground",
        "Debian package tuxpaint-stamps-default",
        "GPL-2",
        "/usr/share/doc/tuxpaint-stamps-default/copyright",
    ),
    "emoji3d": (
        "foreground",
        "npm package @lobehub/fluent-emoji-3d (Microsoft Fluent Emoji 3D)",
        "MIT",
        ".cache/npm/node_modules/@lobehub/fluent-emoji-3d/package.json",
    ),
    "furniture": (
        "foreground",
        (
            "Debian package sweethome3d-furniture (OBJ models rendered by "
            "model_export/data/furniture.py, random yaw/pitch/light)"
        ),
        (
            "CC0-1.0 (BlendSwap-CC-0) / CC-BY-3.0 (BlendSwap-CC-BY, Reallusion, Scopia) / "
            "CC-BY-3.0-US (KatorLegaz): see copyright"
        ),
        "/usr/share/doc/sweethome3d-furniture/copyright",
    ),
    "openclipart": (
        "foreground",
        "Debian package openclipart-svg (rasterised with cairosvg)",
        "public domain (Creative Commons PD dedication)",
        "/usr/share/doc/openclipart-svg/copyright",
    ),
    "gnome": (
        "background",
        "Debian package gnome-backgrounds",
        "CC-BY-SA-3.0 (per file, see copyright)",
        "/usr/share/doc/gnome-backgrounds/copyright",
    ),
    "desktopbase": (
        "background",
        "Debian package desktop-base",
        "GPL-2+ / GPL-3+ / CC-BY-SA-3.0 (per theme)",
        "/usr/share/doc/desktop-base/copyright",
    ),
    "gcompris": (
        "background",
        "Debian package gcompris-qt-data (photos in the Qt resource bundles)",
        "CC-BY-SA-3.0 / CC-BY / CC0 / public domain / GPL-3+ (per file, see copyright)",
        "/usr/share/doc/gcompris-qt-data/copyright",
    ),
}
DEBIAN_PACKAGE = {
    "tuxpaint": "tuxpaint-stamps-default",
    "furniture": "sweethome3d-furniture",
    "openclipart": "openclipart-svg",
    "gnome": "gnome-backgrounds",
    "desktopbase": "desktop-base",
    "gcompris": "gcompris-qt-data",
}
FURNITURE_VIEWS = 2
FURNITURE_SIZE = 512
UNDONE = {
    "furniture": "rendered without per-pixel textures (one texture sample per triangle) and "
    "without glass (materials with d < 0.6 are left out)",
}


@dataclass
class Candidate:
    source: str
    name: str  # unique within the source, file-name safe
    group: str  # object identity for the split (variants of one object share it)
    load: Callable[[], np.ndarray | None] = field(repr=False)  # RGBA or RGB uint8

    val_percent: int = VAL_PERCENT

    @property
    def split(self) -> str:
        digest = hashlib.sha1(f"{self.source}/{self.group}".encode()).hexdigest()
        return "val" if int(digest, 16) % 100 < self.val_percent else "train"

    def filename(self, ext: str) -> str:
        return f"{self.source}__{self.name}.{ext}"


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


# --------------------------------------------------------------------------- loaders

def _pil_rgba(data: Path | bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    return np.asarray(image.convert("RGBA"))


def _pil_rgb(data: Path | bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data) if isinstance(data, bytes) else data)
    return np.asarray(image.convert("RGB"))


class _Timeout(Exception):
    pass


def _svg_rgba(path: Path, width: int) -> np.ndarray | None:
    """Rasterise an SVG with cairosvg (None if cairosvg is missing, the file fails or is slow)."""
    try:
        import cairosvg
    except ImportError:
        log.warning("cairosvg not installed: SVG sources skipped (pip install cairosvg)")
        return None

    def on_alarm(*_: object) -> None:
        raise _Timeout

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(SVG_SECONDS)
    try:
        png = cairosvg.svg2png(url=str(path), output_width=width)
        return _pil_rgba(png)
    except Exception as exc:  # noqa: BLE001 - third-party SVGs fail in many ways; skip the file
        log.info("skip %s: %s", path, type(exc).__name__)
        return None
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# --------------------------------------------------------------------------- candidates

def _render_furniture(model: object, seed: int, view: int) -> np.ndarray | None:
    from . import furniture

    assert isinstance(model, furniture.Model)
    mesh = furniture.load_mesh(model)
    if mesh is None:
        return None
    digest = int(hashlib.sha1(model.key.encode()).hexdigest()[:8], 16)
    return furniture.render(mesh, np.random.default_rng([seed, 202, digest, view]), FURNITURE_SIZE)


def foreground_candidates(roots: Roots, seed: int, openclipart_count: int) -> Iterator[Candidate]:
    if roots.tuxpaint.is_dir():
        for path in sorted(roots.tuxpaint.rglob("*.png")):
            rel = path.relative_to(roots.tuxpaint).as_posix()
            if rel.startswith(TUXPAINT_SKIP):
                continue
            stem = re.sub(r"(_mirror|_flip|[-_]?\d+)$", "", path.stem)
            yield Candidate("tuxpaint", _safe(rel[:-4]), f"{path.parent.as_posix()}/{stem}",
                            lambda p=path: _pil_rgba(p))
    if roots.emoji3d.is_dir():
        for path in sorted(roots.emoji3d.glob("*.webp")):
            if re.search(r"-1f3f[b-f]", path.stem):  # skin-tone variants of the same emoji
                continue
            yield Candidate(
                "emoji3d", _safe(path.stem), path.stem.split("-")[0], lambda p=path: _pil_rgba(p)
            )
    if roots.furniture.is_dir():
        from . import furniture

        for model in furniture.iter_models(roots.furniture):
            for view in range(FURNITURE_VIEWS):
                yield Candidate("furniture", f"{model.key}-v{view}", model.key,
                                lambda m=model, k=view: _render_furniture(m, seed, k))
    if roots.openclipart.is_dir() and openclipart_count > 0:
        files = sorted(roots.openclipart.rglob("*.svg"))
        rng = np.random.default_rng([seed, 101])
        for k in sorted(rng.choice(len(files), min(openclipart_count, len(files)), replace=False)):
            path = files[int(k)]
            rel = path.relative_to(roots.openclipart).as_posix()
            yield Candidate("openclipart", _safe(rel[:-4]), rel, lambda p=path: _svg_rgba(p, 512))


def background_candidates(roots: Roots) -> Iterator[Candidate]:
    for cand in _background_candidates(roots):
        cand.val_percent = VAL_PERCENT_BG
        yield cand


def _background_candidates(roots: Roots) -> Iterator[Candidate]:
    if roots.gcompris.is_dir():
        from .rcc import iter_rcc

        for bundle in GCOMPRIS_PHOTO_BUNDLES:
            path = roots.gcompris / f"{bundle}.rcc"
            if not path.exists():
                continue
            for name, blob in iter_rcc(path):
                if not name.lower().endswith((".webp", ".jpg", ".jpeg", ".png")):
                    continue
                with Image.open(io.BytesIO(blob)) as probe:
                    if probe.mode != "RGB" or max(probe.size) < 600:
                        continue
                stem = Path(name).stem
                yield Candidate("gcompris", _safe(f"{bundle}-{stem}"), f"{bundle}/{stem}",
                                lambda b=blob: _pil_rgb(b))
    if roots.gnome.is_dir():
        for path in sorted(roots.gnome.iterdir()):
            base = re.sub(r"-[ld]$", "", path.stem)  # light and dark variants: one object
            if path.suffix.lower() in (".webp", ".jpg", ".jpeg", ".png"):
                yield Candidate("gnome", _safe(path.stem), base, lambda p=path: _pil_rgb(p))
            elif path.suffix.lower() == ".svg":
                yield Candidate(
                    "gnome", _safe(path.stem), base, lambda p=path: _svg_rgba(p, BG_LONG_SIDE)
                )
    if roots.desktop_base.is_dir():
        for theme in sorted(roots.desktop_base.glob("*-theme")):
            images = sorted((theme / "wallpaper" / "contents" / "images").glob("*.svg"))
            preferred = [p for p in images if p.stem == "1920x1080"] or images[:1]
            for path in preferred:
                yield Candidate("desktopbase", _safe(theme.name), theme.name,
                                lambda p=path: _svg_rgba(p, BG_LONG_SIDE))


# --------------------------------------------------------------------------- processing

def prepare_foreground(rgba: np.ndarray) -> np.ndarray | None:
    """Trim to the alpha box (2 px margin), cap the size, spread colours under alpha == 0.

    Returns RGBA uint8, or None for images without usable transparency."""
    if rgba.ndim != 3 or rgba.shape[2] != 4:
        return None
    alpha = rgba[..., 3]
    if alpha.min() > 8 or alpha.max() < 128:
        return None
    ys, xs = np.nonzero(alpha > 0)
    y0, y1 = max(0, ys.min() - 2), min(alpha.shape[0], ys.max() + 3)
    x0, x1 = max(0, xs.min() - 2), min(alpha.shape[1], xs.max() + 3)
    rgba = rgba[y0:y1, x0:x1]
    if max(rgba.shape[:2]) < FG_MIN_SIDE or (rgba[..., 3] > 127).mean() < 0.08:
        return None
    rgb = rgba[..., :3].astype(np.float32) / 255.0
    a = rgba[..., 3].astype(np.float32) / 255.0
    scale = FG_MAX_SIDE / max(a.shape)
    if scale < 1:
        rgb, a = synth.resize_rgba(rgb, a, round(a.shape[1] * scale), round(a.shape[0] * scale))
    rgb = synth.spread_colours(rgb, a)
    out = np.dstack([rgb, a])
    return (np.clip(out, 0, 1) * 255 + 0.5).astype(np.uint8)


def prepare_background(image: np.ndarray) -> np.ndarray | None:
    if image.ndim == 3 and image.shape[2] == 4:  # rasterised SVG: flatten on white
        a = image[..., 3:].astype(np.float32) / 255.0
        image = (image[..., :3] * a + 255 * (1 - a)).astype(np.uint8)
    if min(image.shape[:2]) < BG_MIN_SIDE:
        return None
    scale = BG_LONG_SIDE / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    return image


def _write_png(path: Path, rgba: np.ndarray) -> None:
    tmp = path.with_name(path.name + ".tmp.png")
    cv2.imwrite(str(tmp), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA), [cv2.IMWRITE_PNG_COMPRESSION, 3])
    tmp.replace(path)


def _write_jpg(path: Path, rgb: np.ndarray, quality: int) -> None:
    tmp = path.with_name(path.name + ".tmp.jpg")
    cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[..., ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    tmp.replace(path)


def _materialise(
    candidates: Iterator[Candidate],
    folder: Path,
    ext: str,
    prepare: Callable[[np.ndarray], np.ndarray | None],
    write: Callable[[Path, np.ndarray], None],
    rejected: set[str],
) -> dict[str, int]:
    """Write each candidate once to folder/<split>/; returns counts of new, kept and skipped."""
    stats = {"new": 0, "kept": 0, "rejected": 0}
    for cand in candidates:
        key = f"{cand.source}/{cand.name}"
        out = folder / cand.split / cand.filename(ext)
        if out.exists():
            stats["kept"] += 1
            continue
        if key in rejected:
            stats["rejected"] += 1
            continue
        try:
            raw = cand.load()
        except Exception as exc:  # noqa: BLE001 - a broken source file is skipped, not fatal
            log.info("cannot load %s: %s", key, exc)
            raw = None
        ready = prepare(raw) if raw is not None else None
        if ready is None:
            rejected.add(key)
            stats["rejected"] += 1
            continue
        out.parent.mkdir(parents=True, exist_ok=True)
        write(out, ready)
        stats["new"] += 1
    return stats


def build_eval_sets(
    cache: Path, seed: int, counts: dict[str, int], force: bool = False
) -> dict[str, int]:
    """Held-out composites from val foregrounds and backgrounds only, written once."""
    from .datasets import _random_hw, compose_scene
    from .library import Library

    lib = Library(cache, "val", procedural=False)
    written: dict[str, int] = {}
    for set_index, (name, count) in enumerate(sorted(counts.items())):
        folder = cache / "eval" / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            stem = f"{name}_{i:03d}"
            image_path, alpha_path = folder / f"{stem}.jpg", folder / f"{stem}.png"
            if image_path.exists() and alpha_path.exists() and not force:
                continue
            rng = np.random.default_rng([seed, 7919, set_index, i])
            h, w = _random_hw(rng, EVAL_LONG_SIDE)
            n = int(
                rng.choice([1, 2], p=[0.75, 0.25])
                if name == "studio"
                else rng.choice([1, 2, 3], p=[0.6, 0.3, 0.1])
            )
            style = "studio" if name == "studio" else "cluttered"
            scene = compose_scene(rng, lib, h, w, style, n_objects=n, main_frac=(0.5, 0.9))
            alpha_u8 = (scene.alpha * 255 + 0.5).astype(np.uint8)
            cv2.imwrite(str(alpha_path), alpha_u8)
            _write_jpg(image_path, (np.clip(scene.image, 0, 1) * 255 + 0.5).astype(np.uint8), 95)
        written[name] = len(list(folder.glob("*.jpg")))
    return written


def _package_version(package: str) -> str | None:
    try:
        out = subprocess.run(["dpkg-query", "-W", "-f=${Status}|${Version}", package],
                             capture_output=True, text=True, check=False).stdout
    except FileNotFoundError:
        return None
    status, _, version = out.partition("|")
    return version if "install ok installed" in status else None


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.exists() else 0


def build(cache: Path = DEFAULT_CACHE, seed: int = 0, roots: Roots | None = None,
          openclipart_count: int = OPENCLIPART_COUNT, eval_counts: dict[str, int] | None = None,
          force_eval: bool = False) -> dict[str, object]:
    """Build (or complete) the cache and write ``manifest.json``; returns the manifest."""
    roots = roots or Roots()
    cache = Path(cache)
    eval_counts = EVAL_COUNTS if eval_counts is None else eval_counts
    start = time.perf_counter()
    cache.mkdir(parents=True, exist_ok=True)
    rejected_path = cache / "rejected.json"
    rejected: set[str] = (
        set(json.loads(rejected_path.read_text())) if rejected_path.exists() else set()
    )

    fg_stats = _materialise(
        foreground_candidates(roots, seed, openclipart_count),
        cache / "fg",
        "png",
        prepare_foreground,
        _write_png,
        rejected,
    )
    bg_stats = _materialise(background_candidates(roots), cache / "bg", "jpg", prepare_background,
                            lambda p, rgb: _write_jpg(p, rgb, 90), rejected)
    rejected_path.write_text(json.dumps(sorted(rejected), indent=0))
    eval_written = build_eval_sets(cache, seed, eval_counts, force_eval)

    sources: dict[str, object] = {}
    for name, (kind, origin, licence, copyright_file) in SOURCES.items():
        folder = cache / ("fg" if kind == "foreground" else "bg")
        counts = {
            split: len(list((folder / split).glob(f"{name}__*"))) for split in ("train", "val")
        }
        entry: dict[str, object] = {"kind": kind, "origin": origin, "licence": licence,
                                    "copyright": copyright_file, "counts": counts}
        if name in DEBIAN_PACKAGE:
            entry["package_version"] = _package_version(DEBIAN_PACKAGE[name])
        sources[name] = entry
    ccp: dict[str, object] = {"root": str(roots.ccp), "licence": "Apache-2.0 (Clothing Co-Parsing, "
                              "bearpaw/clothing-co-parsing fe34fb7)"}
    if (roots.ccp / "image").is_dir():
        ccp.update(train=len(ccp_split("train", roots.ccp)), val=len(ccp_split("val", roots.ccp)))
    manifest: dict[str, object] = {
        "build_version": BUILD_VERSION,
        "seed": seed,
        "val_percent": {"foregrounds": VAL_PERCENT, "backgrounds": VAL_PERCENT_BG},
        "split_rule": "sha1('<source>/<object group>') % 100 < val_percent -> val",
        "sources": sources,
        "ccp": ccp,
        "synthetic": "studio backgrounds (flat, gradients, vignettes, wall-to-floor sweeps, "
        "contact and drop shadows, floor reflections) and procedural objects, generated on the "
        "fly",
        "eval": {
            "counts": eval_written,
            "long_side": EVAL_LONG_SIDE,
            "from": "val foregrounds and val backgrounds only; JPEG q95 image + 8-bit PNG alpha",
        },
        "bytes": {"fg": _du(cache / "fg"), "bg": _du(cache / "bg"), "eval": _du(cache / "eval")},
        "undone": UNDONE,
        "last_run": {
            "foregrounds": fg_stats,
            "backgrounds": bg_stats,
            "seconds": round(time.perf_counter() - start, 1),
        },
    }
    (cache / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest
