"""The pipeline's stages in-process, with real ONNX Runtime sessions on random weights."""
from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
from PIL import Image

from service.errors import DeadlineExceeded, PayloadTooLarge, UndecodableImage, UnsupportedMediaType
from service.pipeline import (
    CutoutOptions,
    Inference,
    Pipeline,
    PipelineConfig,
    band,
    codec,
    geometry,
    trimap,
)
from service.pipeline.options import parse_color, parse_margin
from service.pipeline.runner import Deadline
from service.pipeline.spec import load_spec
from support.service import (
    colour_segmenter,
    colour_segmenter_spec,
    decode,
    disc_image,
    encoded,
    linear_rgb_icc,
    png_with_claimed_size,
    tiff_with_compression,
)


@pytest.fixture(scope="module")
def pipeline(random_model_dir) -> Pipeline:
    return Pipeline(PipelineConfig(model_dir=random_model_dir, threads=1))


# ---- decode ----------------------------------------------------------------------------------
def test_cmyk_jpeg_becomes_rgb():
    data = encoded(Image.new("CMYK", (40, 30), (0, 255, 255, 0)), "JPEG")  # red in CMYK
    image = codec.decode(data, 10**6)
    assert image.rgb.shape == (30, 40, 3) and image.alpha is None
    r, g, b = image.rgb[15, 20].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_16bit_greyscale_is_scaled_not_clipped():
    values = np.full((20, 20), 32768, np.uint16)
    data = encoded(Image.fromarray(values), "PNG")
    image = codec.decode(data, 10**6)
    assert abs(int(image.rgb[0, 0, 0]) - 128) <= 1


def test_palette_with_transparency_and_la_keep_their_alpha():
    palette = Image.new("P", (10, 10), 0)
    palette.putpalette([255, 0, 0, 0, 255, 0] + [0] * 762)
    palette.paste(1, (0, 0, 5, 10))
    decoded = codec.decode(encoded(palette, "PNG", transparency=1), 10**6)
    assert decoded.alpha is not None
    assert decoded.alpha[0, 0] == 0 and decoded.alpha[0, 9] == 255
    la = Image.merge("LA", (Image.new("L", (8, 8), 100), Image.new("L", (8, 8), 7)))
    decoded = codec.decode(encoded(la, "PNG"), 10**6)
    assert decoded.alpha is not None and decoded.alpha[0, 0] == 7
    assert tuple(decoded.rgb[0, 0]) == (100, 100, 100)
    # The models see a transparent input composited over white.
    assert codec.over_white(decoded.rgb, decoded.alpha)[0, 0, 0] > 240


def test_icc_profile_converted_to_srgb():
    grey = Image.new("RGB", (6, 6), (128, 128, 128))
    converted = codec.decode(encoded(grey, "PNG", icc_profile=linear_rgb_icc()), 10**6)
    assert abs(int(converted.rgb[0, 0, 0]) - 188) <= 2  # linear 0.5 is sRGB ~188
    plain = codec.decode(encoded(grey, "PNG"), 10**6)
    assert plain.rgb[0, 0, 0] == 128


def test_heic_decodes_with_its_icc_profile_and_orientation():
    grey = Image.new("RGB", (64, 64), (128, 128, 128))
    converted = codec.decode(encoded(grey, "HEIF", quality=95, icc_profile=linear_rgb_icc()),
                             10**6)
    assert converted.source_format == "HEIF"
    assert abs(int(converted.rgb[0, 0, 0]) - 188) <= 3  # linear 0.5 is sRGB ~188, as for PNG
    # Orientation 6 (display turned 90 degrees clockwise), written as phones write it: an irot
    # box (HEIF's own, which viewers follow) and the EXIF tag. What a viewer sees comes out.
    stored = np.zeros((64, 128, 3), np.uint8)
    stored[:, :32] = (230, 20, 20)  # left quarter red as stored -> top quarter when shown
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(Image.fromarray(stored), "HEIF", quality=95, exif=exif.tobytes())
    assert b"irot" in data
    shown = codec.decode(data, 10**6)
    assert shown.rgb.shape == (128, 64, 3)
    assert shown.rgb[8, 32, 0] > 180 and shown.rgb[120, 32, 0] < 60


def test_heic_bomb_refused_before_decoding():
    """A real HEIC of 3 MP in 1 kB (one flat colour): the pixel limit is checked on its header."""
    flat = encoded(Image.new("RGB", (2000, 1500), (250, 250, 250)), "HEIF", quality=10)
    assert len(flat) < 10_000
    with pytest.raises(PayloadTooLarge, match="before decoding"):
        codec.decode(flat, 1_000_000)
    assert codec.decode(flat, 3_000_000).rgb.shape == (1500, 2000, 3)


def test_first_frame_of_animations_and_multipage_tiff():
    frames = [Image.new("RGB", (16, 16), c) for c in ((255, 0, 0), (0, 0, 255))]
    for fmt in ("GIF", "WEBP", "TIFF"):
        buffer = io.BytesIO()
        frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])
        image = codec.decode(buffer.getvalue(), 10**6)
        assert image.rgb[8, 8, 0] > 200 and image.rgb[8, 8, 2] < 60, fmt


def test_refusals():
    with pytest.raises(PayloadTooLarge, match="before decoding"):
        codec.decode(png_with_claimed_size(4000, 3000), 10_000_000)
    # Past Pillow's own bomb limit (179 MP) too, the limit quoted is ours.
    for width, height in ((4000, 3000), (20000, 20000)):
        with pytest.raises(PayloadTooLarge, match=r"limit of 10\.0 MP \(CUTOUT_MAX_PIXELS"):
            codec.decode(png_with_claimed_size(width, height), 10_000_000)
    with pytest.raises(UnsupportedMediaType):
        codec.decode(b"<svg xmlns='http://www.w3.org/2000/svg'/>", 10**6)
    with pytest.raises(UndecodableImage):
        data = encoded(disc_image(64, 64), "PNG")
        codec.decode(data[:-30], 10**6)


@pytest.mark.parametrize("compression", [50001, 50000, 34925, 34676])  # WebP, ZSTD, LZMA, SGI log
def test_a_known_container_with_a_codec_not_supported_is_415(compression):
    """A TIFF is a known container, but what it holds may need a codec libtiff was built
    without: 415 with the codec's name, not a 400 "corrupt"."""
    with pytest.raises(UnsupportedMediaType, match="TIFF image with .* compression"):
        codec.decode(tiff_with_compression(compression), 10**6)
    # The same container with a codec every build has decodes (raw strips: compression 1).
    assert codec.decode(tiff_with_compression(1), 10**6).rgb[8, 8, 0] == 200


# ---- geometry, options, trimap ---------------------------------------------------------------
@pytest.mark.parametrize("png_filter", sorted(codec.PNG_FILTERS))
def test_every_png_filter_is_lossless(png_filter):
    rng = np.random.default_rng(3)
    rgba = rng.integers(0, 256, (37, 53, 4), dtype=np.uint8)
    rgba[:, :20] = 0  # a transparent, zeroed region as in a cutout
    config = dataclasses.replace(PipelineConfig().encoding(), png_filter=png_filter)
    decoded = Image.open(io.BytesIO(codec.encode(rgba, "png", config)))
    assert decoded.mode == "RGBA"
    np.testing.assert_array_equal(np.asarray(decoded), rgba)


def test_fit_long_side_and_tiny_sides():
    assert geometry.fit_long_side(3000, 2000, 1500, upscale=False) == (1500, 1000)
    assert geometry.fit_long_side(800, 600, 1500, upscale=False) == (800, 600)
    assert geometry.fit_long_side(1, 5000, 320) == (1, 320)


def test_cut_box_fills_outside():
    image = np.full((4, 4), 9, np.uint8)
    out = geometry.cut_box(image, (-1, -1, 3, 3), fill=0)
    assert out.shape == (4, 4) and out[0, 0] == 0 and out[1, 1] == 9


def test_margin_and_colour_parsing():
    top, right, bottom, left = parse_margin("10px 5%")
    assert top.pixels(100) == 10 and right.pixels(200) == 10 and bottom == top and left == right
    assert [m.pixels(50) for m in parse_margin("1 2 3 4")] == [1, 2, 3, 4]
    assert parse_color("81d4fa") == (0x81, 0xD4, 0xFA, 255)
    assert parse_color("#00ff0080") == (0, 255, 0, 128)
    assert parse_color("green")[:3] == (0, 128, 0)
    with pytest.raises(ValueError):
        parse_margin("1 2 3")


def test_trimap_resize_keeps_three_values_and_widens_the_band():
    coarse = np.zeros((32, 32), np.float32)
    coarse[8:24, 8:24] = 0.5
    coarse[12:20, 12:20] = 1.0
    fine = trimap.resize_trimap(coarse, 150, 150)
    assert set(np.unique(fine)) == {0.0, 0.5, 1.0}
    nearest = geometry.upscale_nearest(coarse, 150, 150)
    assert (fine[nearest == 0.5] == 0.5).all()  # never narrower than the coarse band
    assert (fine == 0.5).sum() > (nearest == 0.5).sum()


# ---- band-only matting -----------------------------------------------------------------------
def ring_trimap(height: int, width: int) -> np.ndarray:
    yy, xx = np.mgrid[0:height, 0:width]
    distance = np.hypot(yy - height / 2, xx - width / 2)
    out = np.zeros((height, width), np.float32)
    out[distance < 60] = 0.5
    out[distance < 45] = 1.0
    return out


def test_tiles_cover_every_unknown_pixel():
    unknown = trimap.unknown_region(ring_trimap(400, 500))
    layout = band.TileLayout(128, 16, 1)
    covered = np.zeros_like(unknown)
    tiles = band.plan_tiles(unknown, layout)
    assert len({(t.top, t.left) for t in tiles}) == len(tiles)  # no window run twice
    for tile in tiles:
        for top, bottom, left, right in tile.cores:
            covered[top:bottom, left:right] = True
            assert 0 <= tile.top <= top and bottom <= tile.top + 128 <= 400
            assert 0 <= tile.left <= left and right <= tile.left + 128 <= 500
    assert covered[unknown].all()
    assert covered.sum() < unknown.size  # the band only, not the whole image


def test_band_matting_writes_the_band_and_keeps_known_pixels(pipeline):
    rgb = np.asarray(disc_image(500, 400, radius=50))
    tri = ring_trimap(400, 500)
    alpha, tiles = band.matte_band(pipeline.matting, rgb, tri, band.TileLayout(128, 16, batch=3))
    assert tiles > 0
    known = tri != 0.5
    assert (alpha[known] == tri[known]).all()
    unknown = alpha[tri == 0.5]
    assert ((unknown >= 0) & (unknown <= 1)).all() and not np.all(unknown == 0.5)


def test_one_tile_equals_the_net_on_its_window(pipeline):
    rgb = np.asarray(disc_image(200, 150, radius=50))
    tri = ring_trimap(150, 200)
    layout = band.TileLayout(256, 64, 1)
    alpha, tiles = band.matte_band(pipeline.matting, rgb, tri, layout)
    assert tiles == 1
    window = np.empty((1, 4, 256, 256), np.float32)
    pipeline.matting.normalise(geometry.pad_to(rgb, 256, 256), out=window[0, :3])
    window[0, 3] = geometry.pad_to(tri, 256, 256)
    expected = pipeline.matting.predict(window)[0, :150, :200]
    np.testing.assert_allclose(alpha, expected, atol=1e-6)


# ---- runner ----------------------------------------------------------------------------------
def test_deadline_stops_the_pipeline(pipeline):
    data = encoded(disc_image(100, 80), "PNG")
    with pytest.raises(DeadlineExceeded):
        pipeline.run(data, CutoutOptions(), Deadline(0.0))


def colour_pipeline(model_dir, folder, spec=None, **fields) -> Pipeline:
    """A pipeline on the random graphs whose segmenter is the colour graph (red is foreground)
    at a 160 px working size; `spec`: the model spec to use, `fields`: PipelineConfig's."""
    segmenter = colour_segmenter_spec(colour_segmenter(folder / "colour.onnx"), input_size=160)
    return Pipeline(PipelineConfig(model_dir=model_dir, segmenter_spec=segmenter, **fields), spec)


def test_infer_is_what_run_serves(random_model_dir, tmp_path):
    """`infer` (what the evaluation and the contact sheet call) gives exactly the mask, trimap
    and alpha that `run` serves, from one pass."""
    pipeline = colour_pipeline(random_model_dir, tmp_path)
    rgb = np.asarray(disc_image(320, 240, radius=60))
    data = encoded(Image.fromarray(rgb), "PNG")
    found = pipeline.infer(rgb)
    for output, matte in (("alpha", found.matte), ("mask", found.mask_matte()),
                          ("trimap", found.trimap_matte())):
        served = np.asarray(decode(pipeline.run(data, CutoutOptions(output=output)).body))
        np.testing.assert_array_equal(served, matte, err_msg=output)
    assert (found.trimap == 0.5).sum() > 500 and found.alpha is not None
    early = pipeline.infer(rgb, until="trimap")
    assert early.alpha is None and "matting" not in early.timings
    np.testing.assert_array_equal(early.matte, found.trimap_matte())


def test_the_pipeline_mattes_with_matte_auto(random_model_dir, tmp_path):
    """One choice between band tiles and one dense pass, `band.matte_auto`, which the pipeline
    runs: with the matting net's alpha alone (matting_weight 1) the served alpha is its answer.
    Band and dense agree on known pixels."""
    spec = load_spec(random_model_dir).with_inference(matting_weight=1.0)
    pipeline = colour_pipeline(random_model_dir, tmp_path, spec, matting_side=0)
    rgb = np.asarray(disc_image(240, 180, radius=50))
    found = pipeline.infer(rgb)
    tri = found.trimap
    alpha, tiles, net_px = band.matte_auto(pipeline.matting, rgb, tri, pipeline.layout)
    np.testing.assert_array_equal(found.alpha, alpha)
    assert (found.tiles, found.net_pixels) == (tiles, net_px) and tiles >= 1
    mode = band.choose_mode(tri, pipeline.layout, 32)
    assert net_px == band.net_pixels(mode, tri, pipeline.layout, 32)
    tiled, _ = band.matte_band(pipeline.matting, rgb, tri, pipeline.layout)
    dense, _ = band.matte_dense(pipeline.matting, rgb, tri)
    known = tri != 0.5
    assert (tiled[known] == dense[known]).all()
    np.testing.assert_array_equal(alpha, dense if mode == "dense" else tiled)
    assert found.matte[90, 120] == 255 and found.matte[2, 2] == 0


def test_square_external_segmenter_with_minmax_output(random_model_dir, tmp_path):
    segmenter = colour_segmenter_spec(colour_segmenter(tmp_path / "colour.onnx"), input_size=96,
                                      resize="square", activation="minmax")
    config = PipelineConfig(model_dir=random_model_dir, segmenter_spec=segmenter)
    result = Pipeline(config).run(encoded(disc_image(300, 120, radius=40)),
                                  CutoutOptions(output="mask"))
    mask = np.asarray(decode(result.body))
    assert mask.shape == (120, 300) and mask[60, 150] > 240 and mask[5, 5] < 15


def test_matting_weight_mixes_the_two_nets_in_the_band_only(random_model_dir, tmp_path):
    """spec.json's matting_weight 1: the band is the matting net's; 0: the segmenter's
    probability; 0.5: their mean. Known pixels are the trimap's 0 / 1 whatever the weight."""
    # 320 x 240: the bundled segmenter's working size, so mask and matte share one grid.
    rgb = np.asarray(disc_image(320, 240, radius=60))
    spec = load_spec(random_model_dir)

    def run(weight: float) -> Inference:
        return colour_pipeline(random_model_dir, tmp_path,
                               spec.with_inference(matting_weight=weight)).infer(rgb)

    found = {w: run(w) for w in (0.0, 0.5, 1.0)}
    mattes = {w: f.matte.astype(np.int32) for w, f in found.items()}
    mask = found[0.5].mask_matte().astype(np.int32)
    tri = found[0.5].trimap_matte().astype(np.int32)
    band_px, known = tri == 128, tri != 128
    assert band_px.sum() > 500
    for matte in mattes.values():
        assert (matte[known] == np.where(tri[known] == 255, 255, 0)).all()
    assert np.abs(mattes[0.0][band_px] - mask[band_px]).max() <= 1
    assert np.abs(mattes[1.0][band_px] - mattes[0.0][band_px]).mean() > 5  # the nets differ
    mean = (mattes[0.0] + mattes[1.0]) / 2
    assert np.abs(mattes[0.5][band_px] - mean[band_px]).max() <= 1.5


def test_mix_with_mask_leaves_known_pixels_and_weight_one_alone():
    tri = ring_trimap(40, 50)
    alpha = np.where(tri == 0.5, 0.2, tri).astype(np.float32)
    probability = np.full(tri.shape, 0.8, np.float32)
    assert band.mix_with_mask(alpha, tri, probability, 1.0) is alpha
    mixed = band.mix_with_mask(alpha, tri, probability, 0.25)
    np.testing.assert_allclose(mixed[tri == 0.5], 0.25 * 0.2 + 0.75 * 0.8, rtol=1e-6)
    assert (mixed[tri != 0.5] == tri[tri != 0.5]).all()
