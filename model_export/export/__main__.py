"""python -m model_export.export: write ONNX graphs + spec.json from trained checkpoints.

Without checkpoints (--random) it writes untrained graphs, which tests and benchmarks use.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from ..models import MattingConfig, SegmenterConfig, TrimapConfig, build_matting, build_segmenter
from ..train.travel import load_checkpoint, shipped_weights
from .onnx_writer import export_all, random_models


def _load(checkpoint: Path, build, config_cls):
    state = load_checkpoint(checkpoint)
    config = config_cls(**state["model_config"])
    net = build(config)
    net.load_state_dict(shipped_weights(state))
    return net, config, state


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument("--segmenter", type=Path, help="segmentation training checkpoint (or travel folder)")
    parser.add_argument("--matting", type=Path, help="matting training checkpoint (or travel folder)")
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
            "segmenter": seg_state.get("train_config"),
            "matting": mat_state.get("train_config"),
        }
    spec = export_all(args.out, segmenter, matting, seg_config, trimap_config, mat_config,
                      args.version, extra, weights_dtype=args.weights_dtype)
    for stage in ("segmenter", "trimap", "matting"):
        print(f"wrote {args.out / spec[stage]['file']}")


if __name__ == "__main__":
    main()
