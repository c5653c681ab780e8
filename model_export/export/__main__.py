"""python -m model_export.export: write ONNX graphs + spec.json from trained checkpoints.

Without checkpoints (--random) it writes untrained graphs, which tests and benchmarks use.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from service.pipeline.spec import InferenceSpec

from ..encoders import SEGMENTATION_ENCODERS
from ..models import MattingConfig, SegmenterConfig, TrimapConfig, build_matting, build_segmenter
from ..models.deeplabv3plus import grow_segmenter
from ..trained import load_trained, spec_beside
from .onnx_writer import export_all, random_models


def _training_record(state: dict, stage: str) -> dict | None:
    """The run's config; a run started from a shipped graph also carries that graph's own
    record, so spec.json keeps the whole lineage of the weights."""
    record = state.get("train_config")
    source = (record or {}).get("init_weights")
    previous = spec_beside(source) if source and str(source).endswith(".onnx") else None
    if previous is not None:
        record = {**record, "initialised_from": {
            "version": previous.get("version"),
            "training": previous.get("training", {}).get(stage)}}
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("models"))
    parser.add_argument(
        "--segmenter",
        type=Path,
        help="segmentation training checkpoint, travel folder or exported graph",
    )
    parser.add_argument(
        "--matting", type=Path, help="matting training checkpoint, travel folder or exported graph"
    )
    parser.add_argument("--random", action="store_true", help="export untrained weights")
    parser.add_argument("--version", default="dev")
    parser.add_argument("--weights-dtype", choices=["float16", "float32"], default="float16",
                        help="how the weights are stored (float16: half the size, float32 "
                        "arithmetic; docs/architecture.md)")
    parser.add_argument("--segmenter-input-size", type=int,
                        help="long side the service resizes to for the segmenter (default: the "
                        "trained net's); larger resolves holes and thin parts at more cost")
    parser.add_argument("--flip-average", action=argparse.BooleanOptionalAction,
                        help="segmenter graph: also segment the mirrored image and average "
                        "(default: as the segmenter's config says; off for a training run)")
    parser.add_argument("--segmenter-encoder", choices=sorted(SEGMENTATION_ENCODERS),
                        help="segmenter graph on this encoder: a trained EfficientNet-Lite0 "
                        "segmenter grown into Lite1 computes the same masks with 5 more blocks "
                        "(what a deeper encoder costs, before a run trains them); with --random, "
                        "an untrained net on it")
    defaults = TrimapConfig()
    parser.add_argument("--erode-rate", type=float, default=defaults.erode_rate,
                        help="ED layer: erosion radius as a fraction of (h + w) / 2 of the "
                        "object's box (the unknown band's inner half)")
    parser.add_argument("--dilate-rate", type=float, default=defaults.dilate_rate,
                        help="ED layer: dilation radius, same unit (the band's outer half)")
    # The spec's inference block: how the service combines these nets (measured per version).
    for name, field in InferenceSpec.model_fields.items():
        parser.add_argument(f"--{name.replace('_', '-')}", dest=name, type=float,
                            default=field.default, help=f"inference: {field.description}")
    args = parser.parse_args(argv)

    trimap_config = TrimapConfig(erode_rate=args.erode_rate, dilate_rate=args.dilate_rate)
    inference = {name: getattr(args, name) for name in InferenceSpec.model_fields}
    extra: dict = {}
    if args.random:
        segmenter, matting = random_models()
        seg_config, mat_config = SegmenterConfig(), MattingConfig()
    else:
        if not (args.segmenter and args.matting):
            parser.error("--segmenter and --matting checkpoints are required (or --random)")
        segmenter, seg_config, seg_state = load_trained(
            args.segmenter, build_segmenter, SegmenterConfig
        )
        matting, mat_config, mat_state = load_trained(args.matting, build_matting, MattingConfig)
        extra["training"] = {
            "segmenter": _training_record(seg_state, "segmenter"),
            "matting": _training_record(mat_state, "matting"),
        }
    if args.segmenter_encoder and args.segmenter_encoder != seg_config.encoder:
        seg_config = seg_config.model_copy(update={"encoder": args.segmenter_encoder})
        grown = build_segmenter(seg_config)
        if not args.random:
            grow_segmenter(segmenter, grown)
        segmenter = grown
    if args.segmenter_input_size:
        seg_config = seg_config.model_copy(update={"input_size": args.segmenter_input_size})
    if args.flip_average is not None:
        seg_config = seg_config.model_copy(update={"flip_average": args.flip_average})
    spec = export_all(args.out, segmenter, matting, seg_config, trimap_config, mat_config,
                      args.version, extra, weights_dtype=args.weights_dtype,
                      inference=inference)
    for stage in ("segmenter", "trimap", "matting"):
        print(f"wrote {args.out / spec[stage]['file']}")


if __name__ == "__main__":
    main()
