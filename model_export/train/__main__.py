"""python -m model_export.train seg|matting --run-dir runs/seg [--time-budget-min 100] ...

Resumes from RUN_DIR/last.pt when present. Run it in the background:
  nohup nice -n 10 python -m model_export.train seg --run-dir runs/seg > runs/seg.out 2>&1 &
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Literal, get_args, get_origin

from ..models import SegmenterConfig
from .config import TrainConfig
from .loop import Trainer

# Fields given as two numbers (LOW HIGH) on the command line.
PAIRS = ("trimap_rate_range",)


def parse_config(argv: list[str] | None = None) -> TrainConfig:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("task", choices=["seg", "matting"])
    parser.add_argument("--run-dir", type=Path, required=True)
    parser.add_argument(
        "--encoder",
        choices=get_args(SegmenterConfig.model_fields["encoder"].annotation),
        default=None,
        help="seg: the segmenter's encoder (default resnet18, the paper's)",
    )
    for name, field in TrainConfig.model_fields.items():
        if name in ("task", "run_dir", "segmenter", "matting"):
            continue
        flag = f"--{name.replace('_', '-')}"
        if name in PAIRS:
            parser.add_argument(flag, type=float, nargs=2, metavar=("LOW", "HIGH"),
                                default=None, help=field.description)
            continue
        if get_origin(field.annotation) is Literal:
            parser.add_argument(flag, choices=get_args(field.annotation), default=None,
                                help=field.description)
            continue
        if name == "real_roots":
            parser.add_argument(flag, type=Path, nargs="+", default=None, help=field.description)
            continue
        if field.annotation is bool:
            parser.add_argument(flag, action="store_true", default=None, help=field.description)
            continue
        kind = (
            Path
            if name in ("data_cache", "ccp_root", "init_weights", "trimap_segmenter")
            else field.annotation
        )
        parser.add_argument(flag, type=kind, default=None,
                            help=field.description)
    args = parser.parse_args(argv)
    overrides = {k: v for k, v in vars(args).items()
                 if v is not None and k not in ("task", "run_dir", "encoder")}
    if args.encoder is not None:
        overrides["segmenter"] = SegmenterConfig(encoder=args.encoder)
    return TrainConfig(task=args.task, run_dir=args.run_dir, **overrides)


def main(argv: list[str] | None = None) -> None:
    Trainer(parse_config(argv)).fit()


if __name__ == "__main__":
    main()
