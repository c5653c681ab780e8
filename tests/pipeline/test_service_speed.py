"""The speed levers (docs/performance.md) keep the pipeline's contracts: tiles placed along the
band cover every unknown pixel, reduced-scale matting keeps known pixels exactly 0 / 1 and the
output at the input's size, the guided upsampling follows the full-size edges. Real ONNX
sessions on random weights, no mocks."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from service.config import Settings
from service.pipeline import CutoutOptions, Pipeline, PipelineConfig, band, trimap
from service.pipeline.spec import load_spec
from support.service import (
    colour_segmenter,
    colour_segmenter_spec,
    decode,
    disc_image,
    encoded,
)


def blob_trimap(height: int, width: int, seed: int) -> np.ndarray:
    """Irregular objects (a few overlapping ellipses) with a band a few pixels wide."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:height, 0:width]
    inside = np.zeros((height, width), bool)
    near = np.zeros((height, width), bool)
    for _ in range(rng.integers(1, 4)):
        cy, cx = rng.uniform(0, height), rng.uniform(0, width)
        ry, rx = rng.uniform(10, height / 2), rng.uniform(10, width / 2)
        d = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2
        inside |= d < 0.8
        near |= d < 1.2
    out = np.zeros((height, width), np.float32)
    out[near] = 0.5
    out[inside] = 1.0
    out[near & ~inside] = 0.5
    return out


@pytest.mark.parametrize("seed", range(6))
def test_tile_planner_covers_every_unknown_pixel(seed):
    height, width = 300 + 37 * seed, 420 - 23 * seed
    unknown = trimap.unknown_region(blob_trimap(height, width, seed))
    layout = band.TileLayout(96, 16, 1)
    covered = np.zeros_like(unknown)
    tiles = band.plan_tiles(unknown, layout)
    assert len({(t.top, t.left) for t in tiles}) == len(tiles)
    for tile in tiles:
        assert 0 <= tile.top <= height - 96 and 0 <= tile.left <= width - 96
        for top, bottom, left, right in tile.cores:
            assert tile.top <= top and bottom <= tile.top + 96  # cores inside their window
            assert tile.left <= left and right <= tile.left + 96
            covered[top:bottom, left:right] = True
    assert covered[unknown].all()


def test_upscale_band_keeps_known_pixels_and_follows_the_full_size_edge():
    # A vertical edge at x = 101 in the full image; at a quarter of the size it falls between
    # pixels, so bilinear upsampling blurs it over several pixels.
    height, width = 120, 200
    full = np.zeros((height, width, 3), np.uint8)
    full[:, 101:] = 255
    truth = (np.arange(width) >= 101).astype(np.float32)[None].repeat(height, 0)
    tri = np.zeros((height, width), np.float32)
    tri[:, 80:] = 0.5
    tri[:, 120:] = 1.0
    small_rgb = cv2.resize(full, (50, 30), interpolation=cv2.INTER_AREA)
    small_alpha = cv2.resize(truth, (50, 30), interpolation=cv2.INTER_AREA)
    errors = {}
    for refine in ("none", "guided"):
        out = band.upscale_band(small_alpha, small_rgb, tri, full, refine, radius=2, eps=1e-3)
        assert out.shape == (height, width) and out.dtype == np.float32
        known = tri != 0.5
        assert (out[known] == tri[known]).all()  # exact 0 / 1 outside the band
        assert ((out >= 0) & (out <= 1)).all()
        errors[refine] = float(np.abs(out - truth)[tri == 0.5].mean())
    assert errors["guided"] < 0.5 * errors["none"], errors


@pytest.fixture(scope="module")
def colour_spec(tmp_path_factory):
    """The colour segmenter's spec file, at a 160 px working size."""
    path = colour_segmenter(tmp_path_factory.mktemp("speed") / "colour.onnx")
    return colour_segmenter_spec(path, input_size=160)


def test_reduced_scale_matting_keeps_known_regions_and_the_size(random_model_dir, colour_spec):
    data = encoded(disc_image(300, 220, radius=70), "PNG")
    config = PipelineConfig(model_dir=random_model_dir, segmenter_spec=colour_spec,
                            matting_side=128, threads=1)
    pipeline = Pipeline(config)
    ring = np.zeros((220, 300), np.float32)
    ring[40:180, 60:240] = 0.5
    ring[60:160, 80:220] = 1.0
    # The band's box plus 8 px of context, its long side scaled to 128.
    assert pipeline.matting_region(ring) == ((52, 32, 248, 188), (128, 102))
    assert pipeline.matting_region(np.ones((220, 300), np.float32)) is None
    result = pipeline.run(data, CutoutOptions(output="alpha"))
    assert (result.width, result.height) == (300, 220)
    assert result.tiles > 0 and 0 < result.band_pixels < result.net_pixels
    matte = np.asarray(decode(result.body))
    assert matte.shape == (220, 300)
    tri = np.asarray(decode(pipeline.run(data, CutoutOptions(output="trimap")).body))
    assert (matte[tri == 255] == 255).all() and (matte[tri == 0] == 0).all()
    band_values = matte[tri == 128]
    assert band_values.size and not (band_values == band_values[0]).all()
    rgba = pipeline.run(data, CutoutOptions())  # the default output goes the same way
    assert (rgba.width, rgba.height) == (300, 220)


def test_matting_side_above_the_inference_size_changes_nothing(random_model_dir, colour_spec):
    data = encoded(disc_image(200, 150, radius=50), "PNG")
    mattes = []
    for side in (0, 4000):
        config = PipelineConfig(model_dir=random_model_dir, segmenter_spec=colour_spec,
                                matting_side=side, threads=1)
        pipeline = Pipeline(config)
        result = pipeline.run(data, CutoutOptions(output="alpha"))
        tri = np.asarray(decode(pipeline.run(data, CutoutOptions(output="trimap")).body))
        assert result.band_pixels == int((tri == 128).sum())  # matted at the full size
        mattes.append(np.asarray(decode(result.body)))
    assert (mattes[0] == mattes[1]).all()


def _record_input_shapes(segmenter) -> list[tuple[int, ...]]:
    """The shapes of the tensors the segmenter's ONNX session is run on (it still runs)."""
    shapes: list[tuple[int, ...]] = []
    run = segmenter.run

    def recorded(tensor, options=None):
        shapes.append(tensor.shape)
        return run(tensor, options)

    segmenter.run = recorded
    return shapes


def test_segmenter_side_sets_the_bundled_segmenters_working_size(random_model_dir):
    """The model's working size (spec.json; `evaluate --input-size` measures others): the
    segmenter's input and the ED layer's side follow it."""
    data = encoded(disc_image(300, 200, radius=60), "PNG")
    for side, expected in ((None, 320), (128, 128)):
        spec = load_spec(random_model_dir).with_segmenter_side(side)
        pipeline = Pipeline(PipelineConfig(model_dir=random_model_dir, threads=1), spec)
        shapes = _record_input_shapes(pipeline.segmenter)
        result = pipeline.run(data, CutoutOptions(output="alpha"))
        assert max(shapes[-1][2:]) == expected and pipeline.trimap_side == expected
        assert decode(result.body).size == (300, 200)


def test_settings_reach_the_pipeline(tmp_path):
    settings = Settings(model_dir=tmp_path, matting_side=640, max_inference_side=1000,
                        foreground_estimation=False, png_compression=6, ort_arena_shrinkage=False)
    config = settings.pipeline_config()
    assert (config.matting_side, config.max_inference_side) == (640, 1000)
    assert not config.foreground_estimation and config.encoding().png_compression == 6
    assert config.runtime().arena_shrinkage is False
    defaults = Settings(model_dir=tmp_path).pipeline_config()
    assert defaults.matting_side == PipelineConfig(model_dir=tmp_path).matting_side == 512


def test_the_pipeline_uses_the_measured_tiles(random_model_dir):
    pipeline = Pipeline(PipelineConfig(model_dir=random_model_dir, threads=1))
    assert pipeline.layout == band.TILES == band.TileLayout(128, 16, 4)


@pytest.fixture(scope="module")
def matting_model(random_model_dir):
    return Pipeline(PipelineConfig(model_dir=random_model_dir, threads=1)).matting


def ring(height: int, width: int, radius: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    distance = np.hypot(yy - height / 2, xx - width / 2)
    out = np.zeros((height, width), np.float32)
    out[distance < radius + 6] = 0.5
    out[distance < radius - 6] = 1.0
    return out


def test_auto_matting_takes_the_cheaper_of_tiles_and_one_pass(matting_model):
    layout = band.TileLayout(64, 16, batch=4)
    rng = np.random.default_rng(0)
    # A small crop full of band: one dense pass feeds the net fewer pixels than the tiles.
    small_tri = ring(96, 128, 30)
    small_rgb = rng.integers(0, 255, (96, 128, 3), dtype=np.uint8)
    auto, tiles, net_px = band.matte_auto(matting_model, small_rgb, small_tri, layout)
    dense, _ = band.matte_dense(matting_model, small_rgb, small_tri)
    assert tiles == 1 and np.allclose(auto, dense, atol=1e-6)
    assert net_px == 96 * 128
    # A thin ring in a large frame: tiles.
    big_tri = ring(320, 320, 40)
    big_rgb = rng.integers(0, 255, (320, 320, 3), dtype=np.uint8)
    auto, tiles, net_px = band.matte_auto(matting_model, big_rgb, big_tri, layout)
    tiled, expected_tiles = band.matte_band(matting_model, big_rgb, big_tri, layout)
    assert tiles == expected_tiles > 1 and np.allclose(auto, tiled, atol=1e-6)
    assert net_px == tiles * 64 * 64
    known = big_tri != 0.5
    assert (auto[known] == big_tri[known]).all()
    assert band.matte_auto(matting_model, big_rgb, np.ones_like(big_tri), layout)[1] == 0
