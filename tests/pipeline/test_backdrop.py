"""Backdrop-coloured holes: found from the image and the trimap, then matted, not guessed."""
from __future__ import annotations

import cv2
import numpy as np

from service.pipeline import band, trimap
from service.pipeline.backdrop import backdrop_coloured, backdrop_holes

BACKDROP, FRAME = (235, 235, 240), (200, 40, 40)


def framed_hole(size: int = 120) -> tuple[np.ndarray, np.ndarray]:
    """A red frame with a see-through hole on a pale backdrop, and the trimap a blob-minded
    segmenter gives it: the whole square known foreground, hole included."""
    rgb = np.full((size, size, 3), BACKDROP, np.uint8)
    rgb[20:100, 20:100] = FRAME
    rgb[40:80, 40:80] = BACKDROP
    tri = np.zeros((size, size), np.float32)
    tri[16:104, 16:104] = 0.5
    tri[24:96, 24:96] = 1.0
    return rgb, tri


def test_the_hole_is_found_and_the_frame_is_kept():
    rgb, tri = framed_hole()
    keyed = backdrop_coloured(rgb, tri, distance=6)
    assert keyed is not None
    assert keyed[42:78, 42:78].all()              # the hole
    assert not keyed[24:38, 24:96].any()          # the frame
    assert not keyed[tri != 1.0].any()            # only known foreground is ever changed


def test_off_no_object_a_foreground_unlike_the_backdrop_or_too_little_backdrop():
    rgb, tri = framed_hole()
    assert backdrop_coloured(rgb, tri, distance=0) is None
    assert backdrop_coloured(rgb, np.zeros_like(tri), distance=6) is None
    solid = rgb.copy()
    solid[20:100, 20:100] = FRAME
    assert backdrop_coloured(solid, tri, distance=6) is None
    full = np.ones_like(tri)
    full[0, :50] = 0.0                            # 50 background pixels: no colour to trust
    assert backdrop_coloured(rgb, full, distance=6) is None


def test_a_colour_near_the_backdrop_counts_only_within_the_distance():
    rgb, tri = framed_hole()
    rgb[40:80, 40:80] = (225, 225, 232)           # a little darker than the backdrop
    assert backdrop_coloured(rgb, tri, distance=3) is None
    assert backdrop_coloured(rgb, tri, distance=12)[50, 50]


def test_keyed_pixels_keep_the_matting_nets_alpha():
    rgb, tri = framed_hole()
    keyed = backdrop_coloured(rgb, tri, distance=6)
    tri[keyed] = 0.5
    matte = np.where(tri == 0.5, 0.1, tri).astype(np.float32)
    probability = np.ones_like(tri)               # the segmenter's filled hole
    mixed = band.mix_with_mask(matte, tri, probability, 0.5, matting_only=keyed)
    assert np.allclose(mixed[keyed], 0.1)
    band_only = (tri == 0.5) & ~keyed
    assert np.allclose(mixed[band_only], 0.55)


def test_holes_judged_on_the_coarse_grid_land_on_the_fine_one():
    """The service judges colours on the ED graph's grid and enlarges the answer: at 4x the
    size the same hole is found, and only the fine trimap's known foreground is returned."""
    rgb, coarse = framed_hole()
    big_rgb = cv2.resize(rgb, (480, 480), interpolation=cv2.INTER_NEAREST)
    fine = trimap.resize_trimap(coarse, 480, 480)
    keyed = backdrop_holes(big_rgb, coarse, fine, distance=6)
    assert keyed is not None and keyed.shape == fine.shape
    full = backdrop_coloured(big_rgb, fine, distance=6)
    assert (keyed & full).sum() > 0.9 * full.sum()       # the hole, as judged at full size
    assert not keyed[fine != 1.0].any()
    assert not keyed[100:150, 100:380].any()             # the frame
    assert backdrop_holes(big_rgb, coarse, fine, distance=0) is None


def test_a_varied_background_is_no_backdrop():
    """A street or a room has no one colour: the step stays out even where the hole matches
    the background's median."""
    rgb, tri = framed_hole()
    rng = np.random.default_rng(0)
    busy = rng.integers(0, 256, rgb.shape, dtype=np.uint8)
    outside = tri == 0.0
    rgb[outside] = busy[outside]
    lab = cv2.cvtColor(busy[outside][None], cv2.COLOR_RGB2LAB)[0]
    median = np.median(lab, axis=0).astype(np.uint8)[None, None]
    rgb[40:80, 40:80] = cv2.cvtColor(median, cv2.COLOR_LAB2RGB)[0, 0]  # the median's colour
    assert backdrop_coloured(rgb, tri, distance=6) is None
    plain = rgb.copy()
    plain[outside] = plain[50, 50]                # the same hole on a plain backdrop of that colour
    assert backdrop_coloured(plain, tri, distance=6)[50, 50]
