"""Shared fixtures: real ONNX graphs exported from untrained nets (fast, deterministic)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/-style folder (three graphs + spec.json) with random weights."""
    from model_export.export.onnx_writer import export_all, random_models
    from model_export.models import MattingConfig, SegmenterConfig, TrimapConfig

    import torch

    out = tmp_path_factory.mktemp("random_models")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # export is mostly tracing: one thread is faster on a busy machine
    try:
        segmenter, matting = random_models()
        export_all(out, segmenter, matting, SegmenterConfig(), TrimapConfig(), MattingConfig(),
                   "test-random")
    finally:
        torch.set_num_threads(threads)
    return out
