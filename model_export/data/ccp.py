"""CCP street-fashion photos with whole-person masks (../shared/data/ccp_fashion).

A fixed validation split (every 8th id, 100 photos) is never used for training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

DEFAULT_ROOT = Path(__file__).resolve().parents[3] / "shared" / "data" / "ccp_fashion"
VAL_SIZE = 100


def ccp_ids(root: Path = DEFAULT_ROOT) -> list[str]:
    return sorted(
        p.stem
        for p in (root / "image").glob("*.jpg")
        if (root / "alpha" / f"{p.stem}.png").exists()
    )


def ccp_split(split: str, root: Path = DEFAULT_ROOT) -> list[str]:
    ids = ccp_ids(root)
    # Evenly spread over the id range so the split does not follow any ordering in the source.
    val = set(ids[:: max(1, len(ids) // VAL_SIZE)][:VAL_SIZE])
    if split == "val":
        return [i for i in ids if i in val]
    if split == "train":
        return [i for i in ids if i not in val]
    raise ValueError(f"unknown split {split!r}: use 'train' or 'val'")


def load_ccp(item_id: str, root: Path = DEFAULT_ROOT) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 [H,W,3] and mask float32 [H,W] in {0,1}."""
    image = np.asarray(Image.open(root / "image" / f"{item_id}.jpg").convert("RGB"))
    mask = (
        np.asarray(Image.open(root / "alpha" / f"{item_id}.png").convert("L"), dtype=np.float32)
        / 255.0
    )
    return image, mask
