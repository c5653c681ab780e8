"""Shared fixtures: real ONNX graphs exported from untrained nets (fast, deterministic)."""
from __future__ import annotations

from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """The CPU is shared (CI, training jobs): two torch threads on two busy cores run several
    times slower than one."""
    try:
        import torch
    except ImportError:  # the serving install has no torch
        yield
        return
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """models/-style folder (three graphs + spec.json) with random weights."""
    from model_export.export.onnx_writer import export_all, random_models
    from model_export.models import MattingConfig, SegmenterConfig, TrimapConfig

    out = tmp_path_factory.mktemp("random_models")
    segmenter, matting = random_models()
    export_all(out, segmenter, matting, SegmenterConfig(), TrimapConfig(), MattingConfig(),
               "test-random")
    return out


@pytest.fixture(scope="session")
def slow_image() -> bytes:
    """Red and white squares, 1500 x 1500: for the colour segmenter edges everywhere, so the
    unknown band covers the image and matting it at the inference size (matting_side=0: one
    dense pass) on one thread takes seconds, past the tests' deadlines."""
    import numpy as np
    from PIL import Image

    from support.service import RED, WHITE, encoded

    yy, xx = np.mgrid[0:1500, 0:1500]
    red = ((yy // 24) + (xx // 24)) % 2 == 0
    pixels = np.where(red[..., None], np.array(RED, np.uint8), np.array(WHITE, np.uint8))
    return encoded(Image.fromarray(pixels.astype(np.uint8)), "JPEG", quality=80)


@pytest.fixture(scope="session")
def quick_image() -> bytes:
    from support.service import disc_image, encoded

    return encoded(disc_image(64, 48), "PNG")
