"""Foreground colour estimation (service/pipeline/foreground.py) on photos whose true object
colour is known: a red object shot on green, with a soft edge of known alpha."""
from __future__ import annotations

import numpy as np
import pytest

from service.pipeline import foreground

RED = np.array([200, 30, 30], np.float32)
GREEN = np.array([40, 170, 60], np.float32)


def shot_on_green(soft_width: float, height: int = 300, width: int = 400,
                  object_colour: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray,
                                                                     np.ndarray]:
    """(photo, matte, true object colour per pixel): a disc whose alpha falls linearly over
    `soft_width` px, composited exactly as a camera mixes it, I = a F + (1 - a) B."""
    yy, xx = np.mgrid[0:height, 0:width]
    distance = np.hypot(xx - width / 2, yy - height / 2)
    alpha = np.clip((0.3 * min(height, width) - distance) / soft_width + 0.5, 0.0, 1.0)
    colour = np.broadcast_to(RED if object_colour is None else object_colour,
                             (height, width, 3)).astype(np.float32)
    a = alpha[..., None]
    photo = (a * colour + (1 - a) * GREEN + 0.5).astype(np.uint8)
    return photo, (alpha * 255 + 0.5).astype(np.uint8), colour


@pytest.mark.parametrize("soft_width", [3, 12, 30])
def test_the_old_backdrop_leaves_the_soft_edge(soft_width):
    photo, matte, truth = shot_on_green(soft_width)
    soft = foreground.soft_pixels(matte)
    assert soft.sum() > 100
    before = np.abs(photo[soft].astype(np.float32) - truth[soft]).mean(axis=0)
    estimated = foreground.estimate(photo, matte)
    after = np.abs(estimated[soft].astype(np.float32) - truth[soft]).mean(axis=0)
    assert before[1] > 40  # the green fringe (the photo's own colour)
    assert after[1] < 0.25 * before[1] and after.max() < 12, (before, after)
    # What the eye sees on a new white page: the error weighted by alpha.
    a = matte[soft].astype(np.float32)[:, None] / 255
    seen_before = (a * np.abs(photo[soft] - truth[soft])).mean()
    seen_after = (a * np.abs(estimated[soft] - truth[soft])).mean()
    assert seen_after < 0.3 * seen_before


def test_only_soft_pixels_change():
    photo, matte, _ = shot_on_green(12)
    estimated = foreground.estimate(photo, matte)
    hard = ~foreground.soft_pixels(matte)
    np.testing.assert_array_equal(estimated[hard], photo[hard])
    assert estimated is not photo and not np.array_equal(estimated, photo)


def test_a_varied_object_keeps_its_own_colours():
    """Left half red, right half blue: each side's edge takes its own side's colour."""
    blue = np.array([30, 40, 200], np.float32)
    height, width = 300, 400
    colour = np.where(np.arange(width)[None, :, None] < width // 2, RED, blue)
    photo, matte, _ = shot_on_green(12, height, width, np.broadcast_to(colour,
                                                                       (height, width, 3)))
    soft = foreground.soft_pixels(matte)
    estimated = foreground.estimate(photo, matte).astype(np.float32)
    left = soft.copy()
    left[:, width // 2 - 20:] = False
    right = soft.copy()
    right[:, :width // 2 + 20] = False
    assert np.abs(estimated[left] - RED).mean() < 12
    assert np.abs(estimated[right] - blue).mean() < 12


def test_hard_mattes_and_tiny_images_are_left_alone():
    photo, _, _ = shot_on_green(12)
    binary = np.where(np.arange(photo.shape[1])[None, :] < 200, 255, 0).astype(np.uint8)
    binary = np.broadcast_to(binary, photo.shape[:2]).copy()
    assert foreground.estimate(photo, binary) is photo  # no soft pixel: nothing to do
    one = np.array([[[9, 200, 9]]], np.uint8)
    assert foreground.estimate(one, np.array([[128]], np.uint8)).shape == (1, 1, 3)
    thin = foreground.estimate(np.full((1, 500, 3), 90, np.uint8),
                               np.linspace(0, 255, 500).astype(np.uint8)[None, :])
    assert thin.shape == (1, 500, 3)


def test_a_narrow_window_too_large_for_uint16_sums():
    """Windows over 16 px (long sides over about 4000 px) sum in float32: same result."""
    photo, matte, truth = shot_on_green(12)
    soft = foreground.soft_pixels(matte)
    small = foreground.estimate(photo, matte, narrow_window=0.03)  # 12 px: uint16 sums
    large = foreground.estimate(photo, matte, narrow_window=0.05)  # 20 px: float32 sums
    for estimated in (small, large):
        assert np.abs(estimated[soft].astype(np.float32) - truth[soft]).mean(axis=0).max() < 12
