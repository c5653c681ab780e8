"""The exported ONNX graphs: structure (checker, opset, dynamic sizes, ops, spec.json) and
torch vs ONNX Runtime parity of every graph, run through real ONNX Runtime sessions.

Parity uses "contrast" weights: the untrained nets' outputs are almost constant (sigmoid of
logits around 0), which would let a wrong graph pass a 1e-4 tolerance. The contrast nets are
re-initialised (He-normal convolutions, random norm affine parameters) and their heads
calibrated so that the outputs spread over (0, 1); the shipping export path is checked too, on
the untrained `random_model_dir` graphs.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from model_export.export.onnx_writer import (
    MATTING,
    OPSET,
    SEGMENTER,
    SPEC_NAME,
    TRIMAP,
    GraphSpec,
    _Probability,
    export_graph,
    random_models,
    segmenter_graph_module,
    store_weights_as_float16,
)
from model_export.models import SegmenterConfig, TrimapConfig, build_trimap

TOLERANCE = 1e-4
PARITY_SIZES = [(96, 96), (64, 160)]  # one square, one non-square
SIZES_32 = [(32, 32), (32, 96), (160, 64)]
GRAPHS = (SEGMENTER, TRIMAP, MATTING)


def _session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def _with_contrast(net: nn.Module, head: nn.Conv2d, sample: torch.Tensor, seed: int) -> nn.Module:
    """Re-initialise `net` so activations keep their scale, then rescale its last convolution
    `head` so that its output (the logits) on `sample` has mean 0 and std 2."""
    g = torch.Generator().manual_seed(seed)
    captured: list[torch.Tensor] = []
    hook = head.register_forward_hook(lambda _m, _i, out: captured.append(out))
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, nn.Conv2d):
                fan_in = module.weight[0].numel()
                module.weight.normal_(0.0, fan_in ** -0.5, generator=g)
                if module.bias is not None:
                    module.bias.uniform_(-0.1, 0.1, generator=g)
            elif isinstance(module, (nn.BatchNorm2d, nn.GroupNorm)):
                module.weight.uniform_(0.5, 1.5, generator=g)
                module.bias.uniform_(-0.2, 0.2, generator=g)
        net.eval()(sample)
        hook.remove()
        logits = captured[0]
        scale = 2.0 / logits.std().item()
        head.weight.mul_(scale)
        head.bias.mul_(scale).sub_(logits.mean().item() * scale)
    return net


def _inputs(spec: GraphSpec, n: int, h: int, w: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if spec is TRIMAP:
        yy, xx = np.mgrid[0:h, 0:w]
        masks = []
        for i in range(n):  # an ellipse per sample, soft edges, different sizes
            cy, cx = h * (0.4 + 0.1 * i), w * (0.5 - 0.05 * i)
            d = ((yy - cy) / (0.3 * h)) ** 2 + ((xx - cx) / ((0.2 + 0.1 * i) * w)) ** 2
            masks.append(1.0 / (1.0 + np.exp(4.0 * (d - 1.0))))
        return np.stack(masks)[:, None].astype(np.float32)
    image = rng.standard_normal((n, 3, h, w)).astype(np.float32)
    if spec is SEGMENTER:
        return image
    trimap = rng.integers(0, 3, (n, 1, h, w)).astype(np.float32) / 2.0
    return np.concatenate([image, trimap], axis=1)


def _torch_run(module: nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return module(torch.from_numpy(x)).numpy()


@pytest.fixture(scope="module")
def contrast_modules() -> dict[str, nn.Module]:
    segmenter, matting = random_models(seed=1)
    seg_sample = torch.from_numpy(_inputs(SEGMENTER, 1, 64, 64, seed=100))
    mat_sample = torch.from_numpy(_inputs(MATTING, 1, 64, 64, seed=101))
    _with_contrast(segmenter, segmenter.head[0], seg_sample, seed=2)
    _with_contrast(matting, matting.head[0], mat_sample, seed=3)
    return {
        SEGMENTER.file: _Probability(segmenter).eval(),
        TRIMAP.file: build_trimap(TrimapConfig()).eval(),
        MATTING.file: matting.eval(),
    }


@pytest.fixture(scope="module")
def contrast_sessions(contrast_modules: dict[str, nn.Module],
                      tmp_path_factory: pytest.TempPathFactory) -> dict[str, ort.InferenceSession]:
    out = tmp_path_factory.mktemp("contrast_models")
    sessions = {}
    for spec in GRAPHS:
        path = export_graph(contrast_modules[spec.file], spec, out / spec.file, sample_hw=(64, 96))
        sessions[spec.file] = _session(path)
    return sessions


@pytest.fixture(scope="module")
def random_sessions(random_model_dir: Path) -> dict[str, ort.InferenceSession]:
    return {spec.file: _session(random_model_dir / spec.file) for spec in GRAPHS}


def _ids(specs) -> list[str]:
    return [spec.file.removesuffix(".onnx") for spec in specs]


# --------------------------------------------------------------------------- structure


@pytest.mark.parametrize("spec", GRAPHS, ids=_ids(GRAPHS))
def test_graph_is_checker_clean_with_dynamic_sizes(random_model_dir: Path, spec: GraphSpec) -> None:
    model = onnx.load(str(random_model_dir / spec.file))
    onnx.checker.check_model(model, full_check=True)
    opsets = {o.domain: o.version for o in model.opset_import}
    assert opsets.get("", opsets.get("ai.onnx", 0)) >= 17 and OPSET >= 17
    assert {node.domain for node in model.graph.node} <= {"", "ai.onnx"}  # no custom ops
    (graph_input,) = model.graph.input
    (graph_output,) = model.graph.output
    assert (graph_input.name, graph_output.name) == (spec.input_name, spec.output_name)
    for value in (graph_input, graph_output):
        dims = value.type.tensor_type.shape.dim
        assert len(dims) == 4
        for axis in (0, 2, 3):  # batch, height, width are symbolic
            assert dims[axis].dim_param and not dims[axis].HasField("dim_value")
    assert graph_input.type.tensor_type.shape.dim[1].dim_value == spec.channels


def test_trimap_graph_uses_max_pool(random_model_dir: Path) -> None:
    ops = {node.op_type for node in onnx.load(str(random_model_dir / TRIMAP.file)).graph.node}
    assert "MaxPool" in ops
    assert ops.isdisjoint({"Loop", "If", "Scan"})  # a static unrolled cascade


def test_matting_graph_has_four_channel_input(random_model_dir: Path) -> None:
    model = onnx.load(str(random_model_dir / MATTING.file))
    assert model.graph.input[0].type.tensor_type.shape.dim[1].dim_value == 4
    assert MATTING.channels == 4


def test_spec_json_describes_the_graphs(random_model_dir: Path) -> None:
    spec = json.loads((random_model_dir / SPEC_NAME).read_text())
    for stage, graph in (("segmenter", SEGMENTER), ("trimap", TRIMAP), ("matting", MATTING)):
        assert spec[stage]["file"] == graph.file
        assert (random_model_dir / graph.file).is_file()
        assert spec[stage]["input"] == graph.input_name
        assert spec[stage]["output"] == graph.output_name
    assert spec["segmenter"]["size_multiple"] == spec["matting"]["size_multiple"] == 32
    assert spec["trimap"]["max_radius"] == TrimapConfig().max_radius
    assert set(spec["inference"]) == {"matting_weight", "backdrop_distance", "zoom_min_gain"}


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("size", PARITY_SIZES, ids=[f"{h}x{w}" for h, w in PARITY_SIZES])
@pytest.mark.parametrize("spec", GRAPHS, ids=_ids(GRAPHS))
def test_torch_onnx_parity(contrast_modules, contrast_sessions, spec: GraphSpec,
                           size: tuple[int, int]) -> None:
    x = _inputs(spec, 2, *size, seed=size[0] + size[1])
    expected = _torch_run(contrast_modules[spec.file], x)
    got = contrast_sessions[spec.file].run([spec.output_name], {spec.input_name: x})[0]
    assert got.shape == expected.shape == (2, 1, *size)
    assert np.abs(got - expected).max() <= TOLERANCE
    if spec is not TRIMAP:  # the parity is not measured on a near-constant output
        assert expected.std() > 0.1
    else:
        np.testing.assert_array_equal(got, expected)
        assert set(np.unique(got).tolist()) == {0.0, 0.5, 1.0}


@pytest.mark.parametrize("spec", GRAPHS, ids=_ids(GRAPHS))
def test_shipping_export_parity(random_sessions, spec: GraphSpec) -> None:
    """export_all's graphs (what models/ holds) equal the eager nets they came from."""
    segmenter, matting = random_models()  # same seed as the random_model_dir fixture
    module = {SEGMENTER.file: _Probability(segmenter), TRIMAP.file: build_trimap(TrimapConfig()),
              MATTING.file: matting}[spec.file].eval()
    x = _inputs(spec, 1, 64, 96, seed=5)
    got = random_sessions[spec.file].run(None, {spec.input_name: x})[0]
    assert np.abs(got - _torch_run(module, x)).max() <= TOLERANCE


def test_flip_averaged_segmenter_is_the_mean_of_the_image_and_its_mirror(
        contrast_modules, contrast_sessions, tmp_path) -> None:
    """`flip_average`: one graph runs the image and its mirror as one batch and averages the
    mirrored answer, flipped back, into the first, sample by sample."""
    plain = contrast_sessions[SEGMENTER.file]
    net = contrast_modules[SEGMENTER.file].net
    flipped = segmenter_graph_module(net, SegmenterConfig(flip_average=True))
    session = _session(export_graph(flipped, SEGMENTER, tmp_path / SEGMENTER.file, (64, 96)))
    x = _inputs(SEGMENTER, 3, 64, 160, seed=31)
    got = session.run(None, {SEGMENTER.input_name: x})[0]
    direct = plain.run(None, {SEGMENTER.input_name: x})[0]
    mirrored = plain.run(None, {SEGMENTER.input_name: np.ascontiguousarray(x[..., ::-1])})[0]
    assert got.shape == direct.shape == (3, 1, 64, 160)
    assert np.abs(got - (direct + mirrored[..., ::-1]) / 2).max() <= TOLERANCE
    assert np.abs(got - direct).max() > 0.05  # the mirror's answer really differs here
    assert isinstance(segmenter_graph_module(net, SegmenterConfig()), _Probability)


# --------------------------------------------------------------------------- sizes and fusion


@pytest.mark.parametrize("size", SIZES_32, ids=[f"{h}x{w}" for h, w in SIZES_32])
def test_graphs_run_at_multiples_of_32(contrast_sessions, size: tuple[int, int]) -> None:
    for spec in GRAPHS:
        x = _inputs(spec, 1, *size, seed=9)
        (out,) = contrast_sessions[spec.file].run(None, {spec.input_name: x})
        assert out.shape == (1, 1, *size), spec.file
        assert np.isfinite(out).all()


@pytest.mark.parametrize("size", PARITY_SIZES, ids=[f"{h}x{w}" for h, w in PARITY_SIZES])
def test_matting_onnx_in_unit_range_and_fused(contrast_sessions, size: tuple[int, int]) -> None:
    x = _inputs(MATTING, 2, *size, seed=11)
    alpha = contrast_sessions[MATTING.file].run(None, {MATTING.input_name: x})[0]
    trimap = x[:, 3:4]
    assert alpha.min() >= 0.0 and alpha.max() <= 1.0
    known = (trimap == 0.0) | (trimap == 1.0)
    np.testing.assert_array_equal(alpha[known], trimap[known])
    assert alpha[trimap == 0.5].std() > 0.05


def test_onnx_chain_with_padding_rule(contrast_sessions) -> None:
    """segmenter -> trimap -> matting through ONNX Runtime on an image whose sides are not
    multiples of 32: pad (replicate) up to the next multiple, run, crop back."""
    h, w = 100, 70
    image = _inputs(SEGMENTER, 1, h, w, seed=13)
    ph, pw = -h % 32, -w % 32
    padded = np.pad(image, ((0, 0), (0, 0), (0, ph), (0, pw)), mode="edge")
    assert padded.shape[2:] == (128, 96)
    mask = contrast_sessions[SEGMENTER.file].run(None, {SEGMENTER.input_name: padded})[0]
    trimap = contrast_sessions[TRIMAP.file].run(None, {TRIMAP.input_name: mask})[0]
    alpha = contrast_sessions[MATTING.file].run(
        None, {MATTING.input_name: np.concatenate([padded, trimap], axis=1)})[0]
    alpha, trimap = alpha[:, :, :h, :w], trimap[:, :, :h, :w]
    assert alpha.shape == (1, 1, h, w)
    known = trimap != 0.5
    np.testing.assert_array_equal(alpha[known], trimap[known])


# --------------------------------------------------------------------------- float16 storage


@pytest.mark.parametrize("spec", (SEGMENTER, MATTING), ids=_ids((SEGMENTER, MATTING)))
def test_float16_storage_halves_the_file_and_keeps_the_outputs(tmp_path, spec: GraphSpec) -> None:
    segmenter, matting = random_models()
    module = _Probability(segmenter) if spec is SEGMENTER else matting
    full = export_graph(module, spec, tmp_path / f"full_{spec.file}")
    half = store_weights_as_float16(export_graph(module, spec, tmp_path / f"half_{spec.file}"))
    assert half.stat().st_size < 0.55 * full.stat().st_size
    x = _inputs(spec, 1, 64, 96, seed=21)
    expected = _session(full).run(None, {spec.input_name: x})[0]
    got = _session(half).run(None, {spec.input_name: x})[0]
    assert np.abs(got - expected).max() < 5e-3
    # The Casts are folded away when the session is made: float32 weights at inference.
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.optimized_model_filepath = str(tmp_path / "optimised.onnx")
    ort.InferenceSession(str(half), options, providers=["CPUExecutionProvider"])
    optimised = onnx.load(str(tmp_path / "optimised.onnx"))
    def weight_casts(model: onnx.ModelProto) -> list[str]:
        return [
            n.name
            for n in model.graph.node
            if n.op_type == "Cast" and n.name.endswith(".to_float32")
        ]

    assert weight_casts(onnx.load(str(half)))
    assert not weight_casts(optimised)
