"""The segmenter's second, closer look at small objects (service/pipeline/zoom.py)."""
from __future__ import annotations

import numpy as np
from PIL import Image

from service.pipeline import CutoutOptions, Pipeline, PipelineConfig
from service.pipeline.spec import load_spec
from service.pipeline.zoom import zoom_box
from support.service import colour_segmenter, colour_segmenter_spec, decode, encoded


def _square(size: int, side: int) -> np.ndarray:
    mask = np.zeros((size, size), np.float32)
    start = (size - side) // 2
    mask[start:start + side, start:start + side] = 1.0
    return mask


def test_zoom_box_only_for_objects_small_enough_to_gain():
    assert zoom_box(np.zeros((100, 100), np.float32), 1.15) is None
    assert zoom_box(_square(100, 90), 1.15) is None  # fills the frame
    left, top, right, bottom = zoom_box(_square(100, 20), 1.15)
    # The 20 px square (40..60) plus 30 % of its side on every side.
    assert np.allclose((left, top, right, bottom), (0.34, 0.34, 0.66, 0.66))
    assert zoom_box(_square(100, 20), 4.0) is None  # 100 / 32 px enlarges only 3.1x


def _slit_square() -> bytes:
    """A red square on white, split by a white slit too thin to survive a coarse look."""
    pixels = np.full((640, 640, 3), 255, np.uint8)
    pixels[260:380, 260:380] = (220, 20, 20)
    pixels[260:380, 317:323] = 255
    return encoded(Image.fromarray(pixels))


def test_a_closer_look_finds_what_the_first_pass_blurred(random_model_dir, tmp_path):
    segmenter = colour_segmenter_spec(colour_segmenter(tmp_path / "colour.onnx"), input_size=64)
    config = PipelineConfig(model_dir=random_model_dir, segmenter_spec=segmenter)
    masks, looked = {}, {}
    for gain in (0.0, 1.15):
        spec = load_spec(random_model_dir).with_inference(zoom_min_gain=gain)
        result = Pipeline(config, spec).run(_slit_square(), CutoutOptions(output="mask"))
        masks[gain] = np.asarray(decode(result.body)).astype(int)
        looked[gain] = result.looked_closer
    plain, zoomed = masks[0.0], masks[1.15]
    assert looked == {0.0: False, 1.15: True}
    assert plain.shape == zoomed.shape == (640, 640)
    # At 64 px the slit is a tenth of a pixel wide: the first pass calls it red.
    assert plain[320, 320] > 200
    assert zoomed[320, 320] < plain[320, 320] - 60
    # The solid halves stay foreground, and far from the object nothing changes.
    assert zoomed[320, 285] > 200 and zoomed[320, 355] > 200
    assert (zoomed[:150] == plain[:150]).all() and (zoomed[:, 500:] == plain[:, 500:]).all()
