"""The ED layer (mask -> trimap) against an OpenCV reference, in torch and in trimap.onnx.

The reference is written independently of model_export: numpy bounding box, radius
floor(rate * (h + w) / 2 + 0.5) in float32 (round half up, as the layer does) capped at
max_radius, then cv2.erode / cv2.dilate with a (2r + 1) square of ones and cv2's default
border (the image border neither erodes nor dilates).
"""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
import pytest
import torch

from model_export.export.__main__ import main as export_main
from model_export.export.onnx_writer import TRIMAP, export_graph
from model_export.layers import EDTrimap, box_radius, dilate, erode
from model_export.models import TrimapConfig, build_trimap

RATE = 0.02  # the torch layer's checks run at this rate (it makes the rounding tie below)
# The shipped defaults (export, random_model_dir): a narrow band, inner half narrower
# (measured: docs/training.md, "The unknown band's width").
ERODE_RATE, DILATE_RATE = 0.01, 0.015
MAX_RADIUS = 24
THRESHOLD = 0.5


# --------------------------------------------------------------------------- reference


def reference_radius(binary: np.ndarray, rate: float, max_radius: int) -> int:
    ys, xs = np.nonzero(binary)
    if ys.size == 0:
        return 0
    box_h = ys.max() - ys.min() + 1
    box_w = xs.max() - xs.min() + 1
    size = np.float32(box_h + box_w) * np.float32(0.5)
    radius = np.floor(np.float32(rate) * size + np.float32(0.5))
    return int(min(radius, max_radius))


def reference_trimap(
    mask: np.ndarray,
    erode_rate: float = RATE,
    dilate_rate: float = RATE,
    max_radius: int = MAX_RADIUS,
    threshold: float = THRESHOLD,
) -> np.ndarray:
    """[H, W] mask probability -> [H, W] float32 trimap in {0, 0.5, 1}."""
    binary = (mask > threshold).astype(np.uint8)
    r_e = reference_radius(binary, erode_rate, max_radius)
    r_d = reference_radius(binary, dilate_rate, max_radius)
    eroded = cv2.erode(binary, np.ones((2 * r_e + 1, 2 * r_e + 1), np.uint8))
    dilated = cv2.dilate(binary, np.ones((2 * r_d + 1, 2 * r_d + 1), np.uint8))
    trimap = np.full(binary.shape, 0.5, np.float32)
    trimap[dilated == 0] = 0.0
    trimap[eroded == 1] = 1.0
    return trimap


# --------------------------------------------------------------------------- synthetic masks


def _ellipse(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.ellipse(m, (w // 2, h // 2), (w // 3, h // 4), 30, 0, 360, 1, -1)
    return m


def _rect_touching_border(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 3 :, : w // 2] = 1  # touches the left and bottom borders
    return m


def _blobs(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.circle(m, (w // 5, h // 4), max(2, min(h, w) // 8), 1, -1)
    cv2.circle(m, (4 * w // 5, 3 * h // 4), max(2, min(h, w) // 6), 1, -1)
    cv2.rectangle(m, (w // 2, h // 10), (w // 2 + w // 10, h // 10 + h // 5), 1, -1)
    return m


def _thin_lines(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    cv2.line(m, (2, 3), (w - 3, h - 5), 1, 1)
    cv2.line(m, (w // 4, h - 2), (w // 4, 1), 1, 2)
    return m


def _tiny(h: int, w: int) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    m[h // 2, w // 3] = 1
    m[h // 2 : h // 2 + 2, 2 * w // 3 : 2 * w // 3 + 3] = 1
    return m


def _empty(h: int, w: int) -> np.ndarray:
    return np.zeros((h, w), np.uint8)


def _full(h: int, w: int) -> np.ndarray:
    return np.ones((h, w), np.uint8)


def _large_capped(h: int, w: int) -> np.ndarray:
    # Big object; with the high rates of the cap test its radius exceeds max_radius.
    m = np.zeros((h, w), np.uint8)
    m[4 : h - 4, 6 : w - 6] = 1
    m[h // 2 - 3 : h // 2 + 3, w // 4 : 3 * w // 4] = 0  # a hole the erosion must respect
    return m


def _tie(h: int, w: int) -> np.ndarray:
    # Box 30 x 20 -> (h + w) / 2 = 25, rate 0.02 * 25 = 0.5: radius rounds half up to 1.
    m = np.zeros((h, w), np.uint8)
    m[5:35, 7:27] = 1
    return m


SHAPES = {
    "ellipse": _ellipse,
    "rect_border": _rect_touching_border,
    "blobs": _blobs,
    "thin_lines": _thin_lines,
    "tiny": _tiny,
    "empty": _empty,
    "full": _full,
    "tie": _tie,
}
SIZES = [(64, 64), (96, 160), (200, 120), (320, 240)]
TORCH_SIZES = SIZES


def _soft(binary: np.ndarray, seed: int) -> np.ndarray:
    """A probability mask whose thresholding at 0.5 gives back `binary` (values never 0.5)."""
    rng = np.random.default_rng(seed)
    noise = rng.uniform(0.0, 0.49, binary.shape).astype(np.float32)
    return np.where(binary > 0, 1.0 - noise, noise).astype(np.float32)


def _torch_trimap(layer: EDTrimap, masks: np.ndarray, **rates: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return layer(torch.from_numpy(masks), **rates).numpy()


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def layer() -> EDTrimap:
    return build_trimap(TrimapConfig(erode_rate=RATE, dilate_rate=RATE, max_radius=MAX_RADIUS,
                                     threshold=THRESHOLD)).eval()


@pytest.fixture(scope="module")
def trimap_session(random_model_dir: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(random_model_dir / TRIMAP.file), options,
                                providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------- tests


def test_default_config_matches_reference_constants() -> None:
    config = TrimapConfig()
    assert (config.erode_rate, config.dilate_rate, config.max_radius, config.threshold) == (
        ERODE_RATE, DILATE_RATE, MAX_RADIUS, THRESHOLD)


@pytest.mark.parametrize("size", TORCH_SIZES, ids=[f"{h}x{w}" for h, w in TORCH_SIZES])
def test_torch_equals_opencv(layer: EDTrimap, size: tuple[int, int]) -> None:
    masks = np.stack([_soft(make(*size), seed=i) for i, make in enumerate(SHAPES.values())])
    got = _torch_trimap(layer, masks[:, None])
    for i, name in enumerate(SHAPES):
        np.testing.assert_array_equal(got[i, 0], reference_trimap(masks[i]), err_msg=name)


@pytest.mark.parametrize("size", SIZES, ids=[f"{h}x{w}" for h, w in SIZES])
def test_onnx_equals_opencv_batched(trimap_session: ort.InferenceSession,
                                    size: tuple[int, int]) -> None:
    """All shapes at one size in one batch: also checks samples do not leak into each other."""
    masks = np.stack([_soft(make(*size), seed=i) for i, make in enumerate(SHAPES.values())])
    got = trimap_session.run([TRIMAP.output_name], {TRIMAP.input_name: masks[:, None]})[0]
    assert got.shape == (len(SHAPES), 1, *size)
    for i, name in enumerate(SHAPES):
        np.testing.assert_array_equal(
            got[i, 0], reference_trimap(masks[i], ERODE_RATE, DILATE_RATE), err_msg=name
        )


def test_radius_tie_rounds_half_up(layer: EDTrimap) -> None:
    binary = _tie(64, 64)
    assert reference_radius(binary, RATE, MAX_RADIUS) == 1  # 0.02 * 25 = 0.5 -> 1
    r_e, r_d = layer.radii(torch.from_numpy(binary.astype(np.float32))[None, None])
    assert r_e.tolist() == r_d.tolist() == [1.0]


def test_empty_mask_is_all_background(layer: EDTrimap,
                                     trimap_session: ort.InferenceSession) -> None:
    mask = np.full((1, 1, 96, 64), 0.3, np.float32)  # below threshold everywhere
    torch_out = _torch_trimap(layer, mask)
    onnx_out = trimap_session.run(None, {TRIMAP.input_name: mask})[0]
    for out in (torch_out, onnx_out):
        assert np.isfinite(out).all()
        assert (out == 0.0).all()


def test_full_mask_is_all_foreground(layer: EDTrimap,
                                    trimap_session: ort.InferenceSession) -> None:
    mask = np.ones((1, 1, 64, 96), np.float32)
    assert (_torch_trimap(layer, mask) == 1.0).all()
    assert (trimap_session.run(None, {TRIMAP.input_name: mask})[0] == 1.0).all()


def test_values_are_exactly_the_three_levels(trimap_session: ort.InferenceSession) -> None:
    mask = _soft(_blobs(128, 96), seed=3)[None, None]
    out = trimap_session.run(None, {TRIMAP.input_name: mask})[0]
    assert set(np.unique(out).tolist()) == {0.0, 0.5, 1.0}


def test_threshold_is_strict(layer: EDTrimap) -> None:
    mask = np.full((1, 1, 32, 32), THRESHOLD, np.float32)  # exactly 0.5 is background
    assert (_torch_trimap(layer, mask) == 0.0).all()


@pytest.mark.parametrize("rates", [(0.2, 0.3), (0.05, 0.5)])
def test_radius_capped_at_max_radius(rates: tuple[float, float]) -> None:
    erode_rate, dilate_rate = rates
    layer = EDTrimap(erode_rate, dilate_rate, max_radius=MAX_RADIUS).eval()
    mask = _soft(_large_capped(200, 160), seed=5)
    binary = (mask > THRESHOLD).astype(np.float32)
    r_e, r_d = layer.radii(torch.from_numpy(binary)[None, None])
    assert r_d.item() == MAX_RADIUS  # 0.3 * 178 and 0.5 * 178 are both above the cap
    assert r_e.item() == reference_radius(binary, erode_rate, MAX_RADIUS)
    got = _torch_trimap(layer, mask[None, None])[0, 0]
    np.testing.assert_array_equal(got, reference_trimap(mask, erode_rate, dilate_rate))


def test_per_sample_rates_in_a_batch(layer: EDTrimap) -> None:
    size = (96, 128)
    makers = [_ellipse, _blobs, _rect_touching_border, _large_capped]
    masks = np.stack([_soft(make(*size), seed=i) for i, make in enumerate(makers)])
    erode_rates = [0.0, 0.05, 0.1, 0.03]
    dilate_rates = [0.08, 0.01, 0.2, 0.0]
    got = _torch_trimap(
        layer, masks[:, None],
        erode_rate=torch.tensor(erode_rates), dilate_rate=torch.tensor(dilate_rates),
    )
    for i in range(len(makers)):
        expected = reference_trimap(masks[i], erode_rates[i], dilate_rates[i])
        np.testing.assert_array_equal(got[i, 0], expected, err_msg=makers[i].__name__)
    # A zero rate leaves that side untouched: no erosion -> the unknown band is outside only.
    binary0 = masks[0] > THRESHOLD
    assert (got[0, 0][binary0] == 1.0).all()


def test_box_radius_matches_numpy() -> None:
    makers = [_ellipse, _blobs, _thin_lines, _tiny, _empty, _full]
    binaries = np.stack([make(80, 112) for make in makers]).astype(np.float32)
    rates = torch.tensor([0.02, 0.05, 0.1, 0.5, 0.3, 0.01])
    got = box_radius(torch.from_numpy(binaries)[:, None], rates)
    expected = [
        reference_radius(b, float(r), max_radius=10**6)
        for b, r in zip(binaries, rates, strict=True)
    ]
    assert got.tolist() == expected


@pytest.mark.parametrize("radius", [0, 1, 3, 7])
def test_fixed_radius_helpers_equal_opencv(radius: int) -> None:
    binary = _blobs(72, 104)
    kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    x = torch.from_numpy(binary.astype(np.float32))[None, None]
    np.testing.assert_array_equal(dilate(x, radius)[0, 0].numpy(), cv2.dilate(binary, kernel))
    np.testing.assert_array_equal(erode(x, radius)[0, 0].numpy(), cv2.erode(binary, kernel))


def test_graph_unrolls_cascade_of_separable_max_pools(trimap_session: ort.InferenceSession,
                                                      random_model_dir: Path) -> None:
    import onnx

    graph = onnx.load(str(random_model_dir / TRIMAP.file)).graph
    pools = [n for n in graph.node if n.op_type == "MaxPool"]
    # max_radius steps x (erode, dilate) x (1x3, 3x1)
    assert len(pools) == MAX_RADIUS * 2 * 2
    kernels = {tuple(a.ints) for n in pools for a in n.attribute if a.name == "kernel_shape"}
    assert kernels == {(1, 3), (3, 1)}
    assert {n.domain for n in graph.node} <= {""}  # standard ONNX ops only


def test_export_with_other_max_radius(tmp_path: Path) -> None:
    """The unrolled depth follows the config; the graph still equals the reference."""
    layer = EDTrimap(0.1, 0.15, max_radius=6)
    path = export_graph(layer, TRIMAP, tmp_path / TRIMAP.file, sample_hw=(64, 64))
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    masks = np.stack([_soft(_ellipse(96, 128), 1), _soft(_large_capped(96, 128), 2)])
    got = session.run(None, {TRIMAP.input_name: masks[:, None]})[0]
    for i in range(2):
        np.testing.assert_array_equal(got[i, 0], reference_trimap(masks[i], 0.1, 0.15, 6))


def test_export_cli_sets_the_band_rates(tmp_path: Path) -> None:
    """`--erode-rate` / `--dilate-rate` reach both trimap.onnx and spec.json."""
    export_main(
        ["--random", "--out", str(tmp_path), "--erode-rate", "0.01", "--dilate-rate", "0.05"]
    )
    spec = json.loads((tmp_path / "spec.json").read_text())
    assert (spec["trimap"]["erode_rate"], spec["trimap"]["dilate_rate"]) == (0.01, 0.05)
    session = ort.InferenceSession(str(tmp_path / TRIMAP.file), providers=["CPUExecutionProvider"])
    mask = _soft(_ellipse(96, 128), 3)
    got = session.run(None, {TRIMAP.input_name: mask[None, None]})[0][0, 0]
    np.testing.assert_array_equal(got, reference_trimap(mask, 0.01, 0.05))
    # The outer half of the band is wider than the inner one, as asked.
    binary = mask > THRESHOLD
    assert (got[~binary] == 0.5).sum() > 2 * (got[binary] == 0.5).sum()


def test_export_cli_writes_the_inference_block(tmp_path: Path) -> None:
    """spec.json's `inference` block: the service's defaults unless given, and what the service
    reads (service/pipeline/spec.py)."""
    from service.pipeline.spec import InferenceSpec, load_spec

    export_main(["--random", "--out", str(tmp_path / "a")])
    assert load_spec(tmp_path / "a").inference == InferenceSpec()
    export_main(["--random", "--out", str(tmp_path / "b"), "--matting-weight", "0.7",
                 "--backdrop-distance", "0", "--zoom-min-gain", "1.3"])
    spec = json.loads((tmp_path / "b" / "spec.json").read_text())
    assert spec["inference"] == {"matting_weight": 0.7, "backdrop_distance": 0.0,
                                 "zoom_min_gain": 1.3}
    assert load_spec(tmp_path / "b").inference.matting_weight == 0.7
