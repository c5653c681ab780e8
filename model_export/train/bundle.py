"""python -m model_export.train.bundle: pack training data small enough to travel to a lent GPU
machine (the device tool carries at most 64 MiB; ../shared does not travel).

The bundle is a data cache of the usual layout (fg/, bg/, eval/) plus a CCP folder, downscaled
and subsampled until it fits `--max-mb`. The weights travel separately, as a travel folder
(`model_export/train/travel.py`); docs/training.md section 4 has the whole round trip.
"""
from __future__ import annotations

import argparse
import random
import shutil
from pathlib import Path

import cv2

from ..data import DEFAULT_CACHE
from ..data.ccp import DEFAULT_ROOT as CCP_ROOT
from ..data.ccp import ccp_ids


def _downscale(src: Path, dst: Path, long_side: int, quality: int = 85) -> None:
    image = cv2.imread(str(src), cv2.IMREAD_UNCHANGED)
    if image is None:
        return
    h, w = image.shape[:2]
    scale = long_side / max(h, w)
    if scale < 1:
        image = cv2.resize(image, (max(1, round(w * scale)), max(1, round(h * scale))),
                           interpolation=cv2.INTER_AREA)
    dst.parent.mkdir(parents=True, exist_ok=True)
    params = (
        [cv2.IMWRITE_JPEG_QUALITY, quality]
        if dst.suffix == ".jpg"
        else [cv2.IMWRITE_PNG_COMPRESSION, 9]
    )
    cv2.imwrite(str(dst), image, params)


def _size_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 2**20


def pack(out: Path, cache: Path = DEFAULT_CACHE, ccp_root: Path = CCP_ROOT,
         max_mb: float = 60.0, fg_share: float = 0.35, seed: int = 0,
         ccp_side: int = 512, bg_side: int = 640, fg_side: int = 320,
         with_eval: bool = True) -> Path:
    """Sides are long sides in pixels; train at S and keep CCP near 2 S (the dataset works at
    2 S), backgrounds and foregrounds near S. The held-out sets (`with_eval`) matter to matting
    validation only: a segmenter burst validates on CCP and can spend their ~18 MB on
    foregrounds."""
    if out.exists():
        # Rebuilt from scratch, but only over an earlier bundle: a mistyped --out must not cost
        # a folder of something else.
        foreign = [p.name for p in out.iterdir() if p.name not in ("cache", "ccp_fashion")]
        if foreign:
            raise SystemExit(f"{out} holds more than a bundle ({', '.join(sorted(foreign)[:5])}); "
                             "choose another --out")
        shutil.rmtree(out)
    rng = random.Random(seed)
    for item in ccp_ids(ccp_root):
        _downscale(
            ccp_root / "image" / f"{item}.jpg",
            out / "ccp_fashion" / "image" / f"{item}.jpg",
            ccp_side,
        )
        _downscale(
            ccp_root / "alpha" / f"{item}.png",
            out / "ccp_fashion" / "alpha" / f"{item}.png",
            ccp_side,
        )
    for split in ("train", "val"):
        for path in sorted((cache / "bg" / split).glob("*.jpg")):
            _downscale(path, out / "cache" / "bg" / split / path.name, bg_side)
    if with_eval and (cache / "eval").exists():
        shutil.copytree(cache / "eval", out / "cache" / "eval")
    if (cache / "manifest.json").exists():
        shutil.copy(cache / "manifest.json", out / "cache" / "manifest.json")
    foregrounds = sorted((cache / "fg" / "train").glob("*.png"))
    rng.shuffle(foregrounds)
    budget = (
        max_mb * fg_share if _size_mb(out) < max_mb * (1 - fg_share) else max_mb - _size_mb(out)
    )
    used = 0.0
    for path in foregrounds:
        dst = out / "cache" / "fg" / "train" / path.name
        _downscale(path, dst, fg_side)
        used += dst.stat().st_size / 2**20 if dst.exists() else 0
        if used > budget:
            dst.unlink(missing_ok=True)
            break
    print(f"bundle {out}: {_size_mb(out):.1f} MB")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--out", type=Path, default=Path(".cache/bundle"))
    parser.add_argument("--max-mb", type=float, default=60.0)
    parser.add_argument("--ccp-side", type=int, default=512, help="long side of the CCP photos")
    parser.add_argument("--bg-side", type=int, default=640, help="long side of the backgrounds")
    parser.add_argument("--fg-side", type=int, default=320, help="long side of the foregrounds")
    parser.add_argument("--fg-share", type=float, default=0.35,
                        help="share of --max-mb kept for foregrounds when the rest leaves room")
    parser.add_argument("--seed", type=int, default=0, help="which foregrounds are drawn")
    parser.add_argument("--no-eval", dest="with_eval", action="store_false",
                        help="leave the held-out sets out (a segmenter burst)")
    args = parser.parse_args(argv)
    pack(args.out, max_mb=args.max_mb, ccp_side=args.ccp_side, bg_side=args.bg_side,
         fg_side=args.fg_side, fg_share=args.fg_share, with_eval=args.with_eval, seed=args.seed)


if __name__ == "__main__":
    main()
