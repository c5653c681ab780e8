"""python -m model_export.soup: a net between two fine-tunings of one net, by its weights.

Weight-space ensembling (WiSE-FT, Wortsman et al., 2022): a net fine-tuned from another lies in
the same basin, so the straight line between their weights holds nets that keep what each end
does well. It costs nothing at serve time (one net, same graph). Here a segmenter fine-tuned on
objects with see-through holes learnt to open them but also opened pale surfaces (a clock's
face, a white glove); halfway back to the shipped one kept most of the first and little of the
second (docs/training.md, "Weight-space ensembles").

BatchNorm makes raw weights incomparable: a net imported from a graph and the same net after a
run can hold the same function with other running statistics and affines. Both nets are first
folded (each BatchNorm into the conv before it, leaving an identity norm that carries the bias),
so what is interpolated is the function's own weights.

    python -m model_export.soup seg models/segmenter.onnx runs/segA/best.pt --weight 0.5 \\
        --out runs/soup/seg.pt
    python -m model_export.export --segmenter runs/soup/seg.pt --matting models/matting.onnx ...

A run grown from a shallower segmenter (train `--encoder efficientnet_lite1` from a Lite0 graph)
soups with that graph: its end is grown the same way first (`grow_segmenter`).

The result is a checkpoint the export reads. To train on from it, export it first and start from
the graph (`--init-weights DIR/segmenter.onnx`): its norms are folded, so batch statistics would
not match them.
"""
from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import torch
from torch import nn

from .layers import set_shift_only
from .models import MattingConfig, SegmenterConfig, build_matting, build_segmenter
from .models.deeplabv3plus import grow_segmenter
from .trained import load_trained, spec_beside

NETS = {"seg": (build_segmenter, SegmenterConfig), "matting": (build_matting, MattingConfig)}


@torch.no_grad()
def fold_batchnorms(net: nn.Module) -> nn.Module:
    """Fold every BatchNorm that directly follows a conv (ConvNormAct) into that conv, in place.
    The norm stays as an identity (mean 0, variance 1 - eps, scale 1) whose shift is the folded
    bias, so the module tree and the state dict keys are unchanged. Eval-mode function kept."""
    for module in net.modules():
        children = list(module.children())
        for conv, norm in itertools.pairwise(children):
            if not (isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d)):
                continue
            scale = norm.weight / torch.sqrt(norm.running_var + norm.eps)
            conv.weight.mul_(scale.view(-1, 1, 1, 1))
            shift = norm.bias - norm.running_mean * scale
            if conv.bias is not None:
                shift += conv.bias * scale
                conv.bias.zero_()
            set_shift_only(norm, shift)
    return net


def interpolate(a: nn.Module, b: nn.Module, weight: float) -> dict[str, torch.Tensor]:
    """(1 - weight) x a + weight x b, both folded first (in place); integer buffers are b's."""
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"weight must lie in [0, 1], got {weight}")
    sa = fold_batchnorms(a.eval()).state_dict()
    sb = fold_batchnorms(b.eval()).state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ValueError("the two nets differ in structure: a soup needs one architecture")
    return {k: torch.lerp(sa[k], sb[k], weight) if sa[k].is_floating_point() else sb[k]
            for k in sa}


def _same_net(config_a, config_b) -> bool:
    """Equal but for the serving choices, which are not part of the net (a shipped graph
    records 448 px, the run that trained it 320)."""
    serving = {"input_size", "flip_average"}
    return config_a.model_dump(exclude=serving) == config_b.model_dump(exclude=serving)


def _ingredient(source: Path, state: dict) -> dict:
    """What a soup was made of, beyond its path (models/segmenter.onnx names another file once
    the soup ships): a graph's model version, a checkpoint's step, and the ingredient's own
    soup record when it was one, so the whole lineage travels in spec.json."""
    entry: dict = {"path": str(source)}
    if Path(source).suffix == ".onnx":
        entry["version"] = (spec_beside(Path(source)) or {}).get("version")
    elif "step" in state:
        entry["step"] = state["step"]
    earlier = (state.get("train_config") or {}).get("soup")
    if earlier:
        entry["soup"] = earlier
    return entry


def _grows_into(config_a, config_b) -> bool:
    """Segmenters alike but for b's encoder, which may be a deeper EfficientNet-Lite (whether
    it is, `grow_segmenter` decides and refuses otherwise)."""
    if not isinstance(config_a, SegmenterConfig) or config_a.encoder == config_b.encoder:
        return False
    return _same_net(config_a.model_copy(update={"encoder": config_b.encoder}), config_b)


def soup(task: str, source_a: Path, source_b: Path, weight: float) -> dict:
    """A checkpoint-like state (what `load_trained` and the export read) of the interpolated net,
    recording both sources, what they were, and the weight in its training record."""
    build, config_cls = NETS[task]
    net_a, config_a, state_a = load_trained(source_a, build, config_cls)
    net_b, config_b, state_b = load_trained(source_b, build, config_cls)
    ingredient_a = _ingredient(source_a, state_a)
    if _grows_into(config_a, config_b):
        # A run grown from a shallower segmenter (train --encoder efficientnet_lite1 from a
        # Lite0 graph) soups with its own start: the start, grown the same way.
        grown = build(config_b)
        grow_segmenter(net_a, grown)
        ingredient_a["grown_from"] = config_a.encoder
        net_a, config_a = grown, config_b
    if not _same_net(config_a, config_b):
        raise ValueError(f"the two nets have different configs: {config_a} / {config_b}")
    weights = interpolate(net_a, net_b, weight)
    record = dict(state_b.get("train_config") or {})
    record["soup"] = {"of": [str(source_a), str(source_b)], "weights": [1.0 - weight, weight],
                      "ingredients": [ingredient_a, _ingredient(source_b, state_b)]}
    return {"ema": weights, "model_config": config_b.model_dump(), "train_config": record}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("task", choices=sorted(NETS))
    parser.add_argument("a", type=Path, help="one end: checkpoint, travel folder or graph")
    parser.add_argument("b", type=Path, help="the other end (its training record is kept)")
    parser.add_argument("--weight", type=float, default=0.5, help="share of b (0: a, 1: b)")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(soup(args.task, args.a, args.b, args.weight), args.out)
    print(f"wrote {args.out}: {1 - args.weight:g} x {args.a} + {args.weight:g} x {args.b}")


if __name__ == "__main__":
    main()
