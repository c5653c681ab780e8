"""Write the three AlphaNet stages as ONNX graphs plus the spec JSON the service reads."""
from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
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


def export_graph(module: nn.Module, spec: GraphSpec, path: Path, sample_hw: tuple[int, int] = (320, 256)) -> Path:
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


def export_all(
    out_dir: Path,
    segmenter: nn.Module,
    matting: nn.Module,
    segmenter_config: SegmenterConfig,
    trimap_config: TrimapConfig,
    matting_config: MattingConfig,
    version: str,
    extra: dict | None = None,
) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    export_graph(_Probability(segmenter), SEGMENTER, out_dir / SEGMENTER.file)
    export_graph(build_trimap(trimap_config), TRIMAP, out_dir / TRIMAP.file)
    export_graph(matting, MATTING, out_dir / MATTING.file)
    spec = {
        "version": version,
        "segmenter": {"file": SEGMENTER.file, "input": SEGMENTER.input_name,
                      "output": SEGMENTER.output_name, **segmenter_config.model_dump()},
        "trimap": {"file": TRIMAP.file, "input": TRIMAP.input_name, "output": TRIMAP.output_name,
                   **trimap_config.model_dump()},
        "matting": {"file": MATTING.file, "input": MATTING.input_name,
                    "output": MATTING.output_name, **matting_config.model_dump()},
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
