"""Trained nets back from wherever their weights live: a training checkpoint, a travel folder
(train/travel.py) or an exported graph with the spec.json beside it. The export re-exports a
stage through this, and matting training runs the shipped segmenter through it."""
from __future__ import annotations

import json
from pathlib import Path

import onnx
import torch
from torch import nn

from .export.onnx_writer import SPEC_NAME
from .models import MattingConfig, SegmenterConfig
from .onnx_import import load_onnx_weights
from .train.travel import load_checkpoint, shipped_weights

STAGE_OF_CONFIG = {SegmenterConfig: "segmenter", MattingConfig: "matting"}


def spec_beside(graph: Path) -> dict | None:
    path = Path(graph).parent / SPEC_NAME
    return json.loads(path.read_text()) if path.exists() else None


def load_trained(source: Path, build, config_cls) -> tuple[nn.Module, object, dict]:
    """(net, its config, a state dict with at least "train_config") from a checkpoint, a
    travel folder or an exported graph."""
    source = Path(source)
    if source.suffix == ".onnx":
        return _load_graph(source, build, config_cls)
    state = load_checkpoint(source)
    config = config_cls(**state["model_config"])
    net = build(config)
    net.load_state_dict(shipped_weights(state))
    return net, config, state


def _load_graph(path: Path, build, config_cls):
    stage = STAGE_OF_CONFIG[config_cls]
    spec = spec_beside(path)
    if spec is None:
        raise FileNotFoundError(f"no {SPEC_NAME} beside {path}")
    config = config_cls(**{k: v for k, v in spec[stage].items() if k in config_cls.model_fields})
    channels = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[1].dim_value
    # Any inputs will do: in eval mode the imported net is exactly the graph, whatever the
    # BatchNorm statistics gathered on them.
    calibration = [torch.randn(2, channels, 64, 64, generator=torch.Generator().manual_seed(0))]
    net = load_onnx_weights(build(config), path, calibration)
    return net, config, {"train_config": spec.get("training", {}).get(stage)}
