"""Write the three AlphaNet stages as ONNX graphs plus the spec JSON the service reads."""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from ..models import (
    MattingConfig,
    SegmenterConfig,
    TrimapConfig,
    build_matting,
    build_segmenter,
    build_trimap,
)

OPSET = 17
SPEC_NAME = "spec.json"
# Weight tensors at least this large are stored as float16 by `store_weights_as_float16`;
# smaller ones (biases of tiny layers, shape constants) stay float32.
HALF_MIN_ELEMENTS = 1024


@dataclass(frozen=True)
class GraphSpec:
    file: str
    input_name: str
    output_name: str
    channels: int


SEGMENTER = GraphSpec("segmenter.onnx", "image", "mask", 3)
TRIMAP = GraphSpec("trimap.onnx", "mask", "trimap", 1)
MATTING = GraphSpec("matting.onnx", "image_trimap", "alpha", 4)


class _Probability(nn.Module):
    """The segmenter graph outputs a probability, not a logit."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.net(x))


class _FlipAveraged(nn.Module):
    """Test-time flip inside the graph: the image and its mirror go through the net as one
    batch, and the mirrored answer is flipped back and averaged in. Errors that are not
    mirror-symmetric (a stray blob, a ragged edge) half-cancel."""

    def __init__(self, net: nn.Module) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        both = self.net(torch.cat([x, x.flip(-1)]))
        return (both[:n] + both[n:].flip(-1)) * 0.5


def segmenter_graph_module(segmenter: nn.Module, config: SegmenterConfig) -> nn.Module:
    """What the segmenter graph computes: the net's probability, flip-averaged if asked."""
    module = _Probability(segmenter)
    return _FlipAveraged(module) if config.flip_average else module


def export_graph(
    module: nn.Module, spec: GraphSpec, path: Path, sample_hw: tuple[int, int] = (320, 256)
) -> Path:
    module = module.eval()
    sample = torch.rand(1, spec.channels, *sample_hw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (sample,),
            str(path),
            input_names=[spec.input_name],
            output_names=[spec.output_name],
            dynamic_axes={
                spec.input_name: {0: "batch", 2: "height", 3: "width"},
                spec.output_name: {0: "batch", 2: "height", 3: "width"},
            },
            opset_version=OPSET,
            dynamo=False,
        )
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    return path


def store_weights_as_float16(path: Path) -> Path:
    """Store the graph's weights as float16, each behind a Cast to float32: the file halves and
    the arithmetic stays float32. ONNX Runtime's constant folding (any optimisation level but
    `disable`) turns each Cast(weight) back into a float32 initializer when the session is made,
    so inference is as fast as before; outputs move by the weights' rounding (about 1e-3)."""
    model = onnx.load(str(path))
    graph = model.graph
    initializers, casts = [], []
    for tensor in graph.initializer:
        if tensor.data_type == TensorProto.FLOAT and int(np.prod(tensor.dims)) >= HALF_MIN_ELEMENTS:
            half = numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float16),
                                           f"{tensor.name}.float16")
            initializers.append(half)
            casts.append(helper.make_node("Cast", [half.name], [tensor.name], to=TensorProto.FLOAT,
                                          name=f"{tensor.name}.to_float32"))
        else:
            initializers.append(tensor)
    nodes = casts + list(graph.node)
    del graph.initializer[:]
    graph.initializer.extend(initializers)
    del graph.node[:]
    graph.node.extend(nodes)
    onnx.checker.check_model(model, full_check=True)
    onnx.save(model, str(path))
    return path


def export_all(
    out_dir: Path,
    segmenter: nn.Module,
    matting: nn.Module,
    segmenter_config: SegmenterConfig,
    trimap_config: TrimapConfig,
    matting_config: MattingConfig,
    version: str,
    extra: dict | None = None,
    weights_dtype: str = "float32",
    inference: dict | None = None,
) -> dict:
    """`weights_dtype="float16"` stores the learnt graphs' weights at half size (see
    `store_weights_as_float16`); the shipped models use it. `inference`: the spec's inference
    block (service/pipeline/spec.py: InferenceSpec, whose defaults fill what is not given)."""
    from service.pipeline.spec import InferenceSpec

    if weights_dtype not in ("float32", "float16"):
        raise ValueError(f"weights_dtype must be float32 or float16, not {weights_dtype!r}")
    out_dir.mkdir(parents=True, exist_ok=True)
    export_graph(segmenter_graph_module(segmenter, segmenter_config), SEGMENTER,
                 out_dir / SEGMENTER.file)
    export_graph(build_trimap(trimap_config), TRIMAP, out_dir / TRIMAP.file)
    export_graph(matting, MATTING, out_dir / MATTING.file)
    if weights_dtype == "float16":
        store_weights_as_float16(out_dir / SEGMENTER.file)
        store_weights_as_float16(out_dir / MATTING.file)
    spec = {
        "version": version,
        "weights_dtype": weights_dtype,
        "segmenter": {"file": SEGMENTER.file, "input": SEGMENTER.input_name,
                      "output": SEGMENTER.output_name, **segmenter_config.model_dump()},
        "trimap": {"file": TRIMAP.file, "input": TRIMAP.input_name, "output": TRIMAP.output_name,
                   **trimap_config.model_dump()},
        "matting": {"file": MATTING.file, "input": MATTING.input_name,
                    "output": MATTING.output_name, **matting_config.model_dump()},
        "inference": InferenceSpec(**(inference or {})).model_dump(),
        **(extra or {}),
    }
    (out_dir / SPEC_NAME).write_text(json.dumps(spec, indent=2) + "\n")
    return spec


def random_models(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """Untrained nets with non-trivial BatchNorm statistics (tests and benchmarks)."""
    torch.manual_seed(seed)
    segmenter = build_segmenter(SegmenterConfig())
    matting = build_matting(MattingConfig())
    for module in list(segmenter.modules()) + list(matting.modules()):
        if isinstance(module, nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 1.5)
    return segmenter, matting
