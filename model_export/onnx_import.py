"""Trained weights back out of an exported graph, so training can go on from the shipped models.

Checkpoints live in the git-ignored `runs/` and vanish with the machine; the graphs in `models/`
do not. The export folds every BatchNorm into the conv before it and names most folded weights
`onnx::Conv_N`, so names cannot be matched. Instead:

- torch's convs, in the order they run, pair with the graph's Conv nodes, in graph order (the
  exporter writes nodes in execution order); shapes are checked pair by pair;
- GroupNorm's affine comes from the Mul/Add after each InstanceNormalization, in order;
- a folded conv `W' x + b'` is unfolded into conv `W'` and a BatchNorm whose running statistics
  are those of `W' x` on calibration batches and whose affine undoes them
  (gamma = sqrt(var + eps), beta = mean + b'). In eval mode that is exactly the graph's
  function; in training mode batch statistics stay close to it, so fine-tuning starts where
  the shipped model is instead of re-learning its scales.
"""
from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np
import onnx
import torch
from onnx import numpy_helper
from torch import nn

from .layers import set_shift_only


def _graph_weights(graph: onnx.GraphProto) -> dict[str, np.ndarray]:
    """Initializer values by the name nodes use: float16 storage behind a Cast resolves to
    the float32 the Cast produces, and a tensor the exporter shared between equal weights (a
    grown encoder's copied blocks) to the Identity node's output each user reads."""
    values = {i.name: numpy_helper.to_array(i) for i in graph.initializer}
    for node in graph.node:  # topological order: a Cast behind an Identity resolves too
        if node.op_type in ("Cast", "Identity") and node.input[0] in values:
            values[node.output[0]] = values[node.input[0]].astype(np.float32)
    return values


def _consumers(graph: onnx.GraphProto) -> dict[str, list[onnx.NodeProto]]:
    uses: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            uses.setdefault(name, []).append(node)
    return uses


def _execution_order(model: nn.Module, example: torch.Tensor) -> tuple[list[nn.Conv2d], dict]:
    """Convs in the order they run, and for each conv the BatchNorm that normalises its output."""
    convs: list[nn.Conv2d] = []
    produced_by: dict[int, nn.Conv2d] = {}
    norm_of: dict[nn.Conv2d, nn.BatchNorm2d] = {}

    def on_conv(module, inputs, output):
        convs.append(module)
        produced_by[id(output)] = module

    def on_norm(module, inputs, output):
        conv = produced_by.get(id(inputs[0]))
        if conv is not None:
            norm_of[conv] = module

    hooks = [m.register_forward_hook(on_conv) for m in model.modules() if isinstance(m, nn.Conv2d)]
    hooks += [
        m.register_forward_hook(on_norm) for m in model.modules() if isinstance(m, nn.BatchNorm2d)
    ]
    try:
        with torch.no_grad():
            model.eval()(example)
    finally:
        for hook in hooks:
            hook.remove()
    return convs, norm_of


@torch.no_grad()
def load_onnx_weights(
    model: nn.Module, onnx_path: Path, calibration: Iterable[torch.Tensor]
) -> nn.Module:
    """Fill `model` (same architecture as the graph) with the graph's weights; returns it in
    eval mode. `calibration` yields input batches for the unfolded BatchNorm statistics."""
    graph = onnx.load(str(onnx_path)).graph
    values = _graph_weights(graph)
    uses = _consumers(graph)
    batches = iter(calibration)
    first = next(batches)
    convs, norm_of = _execution_order(model, first[:1])
    graph_convs = [n for n in graph.node if n.op_type == "Conv"]
    if len(graph_convs) != len(convs):
        raise ValueError(
            f"{onnx_path}: {len(graph_convs)} Conv nodes, model has {len(convs)} convs"
        )

    folded_bias: dict[nn.BatchNorm2d, torch.Tensor] = {}
    for conv, node in zip(convs, graph_convs, strict=True):
        weight = torch.from_numpy(values[node.input[1]].copy())
        if weight.shape != conv.weight.shape:
            raise ValueError(
                f"{node.name}: weight {tuple(weight.shape)} != {tuple(conv.weight.shape)}"
            )
        bias = torch.from_numpy(values[node.input[2]].copy()) if len(node.input) > 2 else None
        conv.weight.copy_(weight)
        norm = norm_of.get(conv)
        if norm is not None:
            # For now a norm that adds b' and nothing else: the net computes the graph's
            # function while the statistics of W'x are gathered below.
            folded_bias[norm] = bias if bias is not None else torch.zeros_like(norm.bias)
            set_shift_only(norm, folded_bias[norm])
        elif conv.bias is not None:
            conv.bias.copy_(bias)
        elif bias is not None:
            raise ValueError(f"{node.name}: the graph has a bias the model's conv lacks")

    group_norms = [m for m in model.modules() if isinstance(m, nn.GroupNorm)]
    instance_norms = [n for n in graph.node if n.op_type == "InstanceNormalization"]
    if len(group_norms) != len(instance_norms):
        raise ValueError(
            f"{len(instance_norms)} InstanceNormalization nodes, {len(group_norms)} GroupNorms"
        )
    for norm, node in zip(group_norms, instance_norms, strict=True):
        reshape = uses[node.output[0]][0]
        scale = next(n for n in uses[reshape.output[0]] if n.op_type == "Mul")
        shift = next(n for n in uses[scale.output[0]] if n.op_type == "Add")
        norm.weight.copy_(torch.from_numpy(_constant_input(scale, values)).reshape(-1))
        norm.bias.copy_(torch.from_numpy(_constant_input(shift, values)).reshape(-1))

    _calibrate(model, folded_bias, [first, *batches])
    return model.eval()


def _constant_input(node: onnx.NodeProto, values: dict[str, np.ndarray]) -> np.ndarray:
    return next(values[name] for name in node.input if name in values).astype(np.float32)


def _calibrate(model: nn.Module, folded_bias: dict[nn.BatchNorm2d, torch.Tensor], batches) -> None:
    """Per-channel mean and variance of each unfolded norm's input, accumulated over batches
    with the net computing exactly the graph's function; then the affine that cancels them."""
    sums: dict[nn.BatchNorm2d, list] = {norm: [0.0, 0.0, 0] for norm in folded_bias}

    def record(module, inputs, output):
        x = inputs[0].double().transpose(0, 1).reshape(inputs[0].shape[1], -1)
        acc = sums[module]
        acc[0] = acc[0] + x.sum(1)
        acc[1] = acc[1] + (x * x).sum(1)
        acc[2] += x.shape[1]

    hooks = [norm.register_forward_hook(record) for norm in folded_bias]
    try:
        model.eval()
        for batch in batches:
            model(batch)
    finally:
        for hook in hooks:
            hook.remove()
    for norm, (total, squares, count) in sums.items():
        mean = total / count
        var = (squares / count - mean * mean).clamp_min(1e-6)
        norm.running_mean.copy_(mean.float())
        norm.running_var.copy_(var.float())
        norm.weight.copy_((var + norm.eps).sqrt().float())
        norm.bias.copy_(mean.float() + folded_bias[norm].to(mean.device))
