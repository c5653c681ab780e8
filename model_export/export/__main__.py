"""python -m model_export.export: write ONNX graphs + spec.json from trained checkpoints.

Without checkpoints (--random) it writes untrained graphs, which tests and benchmarks use.
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import onnx
import torch

from ..models import MattingConfig, SegmenterConfig, TrimapConfig, build_matting, build_segmenter
from ..onnx_import import load_onnx_weights
from ..train.travel import load_checkpoint, shipped_weights
from .onnx_writer import SPEC_NAME, export_all, random_models

STAGE_OF_CONFIG = {SegmenterConfig: "segmenter", MattingConfig: "matting"}


def _load(checkpoint: Path, build, config_cls):
    """A net from a checkpoint, a travel folder or an exported graph (with the spec.json
    beside it: how one stage is re-exported unchanged while the other is retrained)."""
    if checkpoint.suffix == ".onnx":
        return _load_graph(checkpoint, build, config_cls)
    state = load_checkpoint(checkpoint)
    config = config_cls(**state["model_config"])
    net = build(config)
    net.load_state_dict(shipped_weights(state))
    return net, config, state


def _spec_beside(graph: Path) -> dict | None:
    path = Path(graph).parent / SPEC_NAME
    return json.loads(path.read_text()) if path.exists() else None


def _load_graph(path: Path, build, config_cls):
    stage = STAGE_OF_CONFIG[config_cls]
    spec = _spec_beside(path)
    if spec is None:
        raise FileNotFoundError(f"no {SPEC_NAME} beside {path}")
    config = config_cls(**{k: v for k, v in spec[stage].items() if k in config_cls.model_fields})
    channels = onnx.load(str(path)).graph.input[0].type.tensor_type.shape.dim[1].dim_value
    # Any inputs will do: in eval mode the imported net is exactly the graph, whatever the
    # BatchNorm statistics gathered on them.
    calibration = [torch.randn(2, channels, 64, 64, generator=torch.Generator().manual_seed(0))]
    net = load_onnx_weights(build(config), path, calibration)
    return net, config, {"train_config": spec.get("training", {}).get(stage)}


def _training_record(state: dict, stage: str) -> dict | None:
    """The run's config; a run started from a shipped graph also carries that graph's own
    record, so spec.json keeps the whole lineage of the weights."""
    record = state.get("train_config")
    source = (record or {}).get("init_weights")
    previous = _spec_beside(source) if source and str(source).endswith(".onnx") else None
    if previous is not None:
        record = {**record, "initialised_from": {
            "version": previous.get("version"),
            "training": previous.get("training", {}).get(stage)}}
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--segmenter", type=Path, help="segmentation training checkpoint, travel folder or exported graph")
    parser.add_argument("--matting", type=Path, help="matting training checkpoint, travel folder or exported graph")
    parser.add_argument("--random", action="store_true", help="export untrained weights")
    parser.add_argument("--version", default="dev")
    parser.add_argument("--weights-dtype", choices=["float16", "float32"], default="float16",
                        help="how the weights are stored (float16: half the size, float32 "
                        "arithmetic; docs/architecture.md)")
    args = parser.parse_args(argv)

    trimap_config = TrimapConfig()
    extra: dict = {}
    if args.random:
        segmenter, matting = random_models()
        seg_config, mat_config = SegmenterConfig(), MattingConfig()
    else:
        if not (args.segmenter and args.matting):
            parser.error("--segmenter and --matting checkpoints are required (or --random)")
        segmenter, seg_config, seg_state = _load(args.segmenter, build_segmenter, SegmenterConfig)
        matting, mat_config, mat_state = _load(args.matting, build_matting, MattingConfig)
        extra["training"] = {
            "segmenter": _training_record(seg_state, "segmenter"),
            "matting": _training_record(mat_state, "matting"),
        }
    spec = export_all(args.out, segmenter, matting, seg_config, trimap_config, mat_config,
                      args.version, extra, weights_dtype=args.weights_dtype)
    for stage in ("segmenter", "trimap", "matting"):
        print(f"wrote {args.out / spec[stage]['file']}")


if __name__ == "__main__":
    main()
