"""Measuring see-through holes in library foregrounds, and drawing holed ones more often."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from model_export.data.holes import INDEX_NAME, hole_fraction
from model_export.data.library import Library


def _ring(size: int, outer: int, inner: int) -> np.ndarray:
    alpha = np.zeros((size, size), np.uint8)
    cv2.circle(alpha, (size // 2, size // 2), outer, 255, -1)
    if inner:
        cv2.circle(alpha, (size // 2, size // 2), inner, 0, -1)
    return alpha


def test_hole_fraction_of_a_disc_a_ring_and_an_open_shape() -> None:
    assert hole_fraction(_ring(200, 80, 0) / 255.0) == 0.0
    # a ring: the hole is the inner disc's share of the outer one
    assert hole_fraction(_ring(200, 80, 40) / 255.0) == pytest.approx(0.25, abs=0.02)
    # measured on a 256 px copy, so a big image gives the same share
    assert hole_fraction(_ring(1200, 480, 240) / 255.0) == pytest.approx(0.25, abs=0.02)
    # a C open to the outside has no hole: its gap is background you can walk out of
    open_shape = _ring(200, 80, 40)
    open_shape[90:110, 100:] = 0
    assert hole_fraction(open_shape / 255.0) == pytest.approx(0.0, abs=0.01)
    assert hole_fraction(np.zeros((10, 10))) == 0.0


def _library_cache(root: Path) -> Path:
    folder = root / "fg" / "train"
    folder.mkdir(parents=True)
    rgb = np.full((200, 200, 3), 128, np.uint8)
    cv2.imwrite(str(folder / "tuxpaint__ring.png"), np.dstack([rgb, _ring(200, 80, 40)]))
    cv2.imwrite(str(folder / "tuxpaint__disc.png"), np.dstack([rgb, _ring(200, 80, 0)]))
    return root


def test_hole_share_draws_holed_objects_and_indexes_them_once(tmp_path: Path) -> None:
    cache = _library_cache(tmp_path)
    plain = Library(cache, "train", procedural=False)
    assert not (cache / "fg" / "train" / INDEX_NAME).exists()  # nothing measured unless asked
    rng = np.random.default_rng(0)
    drawn = [hole_fraction(plain.sample_fg(rng)[1]) > 0.1 for _ in range(40)]
    assert 0 < sum(drawn) < 40  # both objects come up without the boost

    boosted = Library(cache, "train", procedural=False, hole_share=1.0)
    assert [p.name for p in boosted.holed] == ["tuxpaint__ring.png"]
    index = json.loads((cache / "fg" / "train" / INDEX_NAME).read_text())
    assert index["tuxpaint__ring.png"] == pytest.approx(0.25, abs=0.02)
    assert index["tuxpaint__disc.png"] == 0.0
    for _ in range(10):
        _, alpha, source = boosted.sample_fg(rng)
        assert source == "tuxpaint" and hole_fraction(alpha) > 0.2

    # the index is read back, not re-measured: a doctored entry is believed
    index["tuxpaint__disc.png"] = 0.5
    (cache / "fg" / "train" / INDEX_NAME).write_text(json.dumps(index))
    again = Library(cache, "train", procedural=False, hole_share=1.0)
    assert sorted(p.name for p in again.holed) == ["tuxpaint__disc.png", "tuxpaint__ring.png"]


def test_hole_share_from_the_command_line_reaches_the_segmenters_data(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from model_export.train.__main__ import parse_config
    from model_export.train.tasks import SegmentationTask

    cache = _library_cache(tmp_path / "cache")
    config = parse_config(["seg", "--run-dir", str(tmp_path / "run"), "--hole-share", "0.4",
                           "--data-cache", str(cache), "--ccp-root", str(tmp_path / "no-ccp")])
    assert config.hole_share == 0.4
    dataset = SegmentationTask(config).dataset()
    assert dataset.lib.hole_share == 0.4
    assert [p.name for p in dataset.lib.holed] == ["tuxpaint__ring.png"]
    with pytest.raises(ValueError):
        parse_config(["seg", "--run-dir", str(tmp_path / "run"), "--hole-share", "1.5"])
