"""Parameter counts and ONNX Runtime latency of the three AlphaNet graphs.

    python -m bench.models [MODEL_DIR] [--sizes 320 512 1024] [--runs 5] [--threads 2]

MODEL_DIR (default models/) holds the graphs and spec.json written by `python -m
model_export.export`. Without a spec.json there, untrained graphs are exported into a temporary
folder first (needs the [train] extra: torch, onnx); latency does not depend on the weights.

Each graph runs at batch 1 on square inputs of each size, on the CPU provider with
intra_op_num_threads = --threads, one inter-op thread and sequential execution; one warm-up
run, then the median (and min) of --runs timed runs. Inputs: a normalised random image for the
segmenter, a soft ellipse mask for the trimap layer, image + a trimap with an unknown band for
the matting net (the full frame: the service runs matting on unknown-band tiles only).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

STAGES = ("segmenter", "trimap", "matting")
CHANNELS = {"segmenter": 3, "trimap": 1, "matting": 4}


def make_input(stage: str, size: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    d = ((yy - 0.5) / 0.35) ** 2 + ((xx - 0.5) / 0.25) ** 2
    logit = np.clip(40.0 * (1.0 - d), -50.0, 50.0)  # soft ellipse edge
    mask = (1.0 / (1.0 + np.exp(-logit))).astype(np.float32)[None, None]
    if stage == "trimap":
        return mask
    image = rng.standard_normal((1, 3, size, size)).astype(np.float32)
    if stage == "segmenter":
        return image
    trimap = np.where(mask > 0.9, 1.0, np.where(mask < 0.1, 0.0, 0.5)).astype(np.float32)
    return np.concatenate([image, trimap], axis=1)


def make_session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def time_session(session: ort.InferenceSession, x: np.ndarray, runs: int) -> tuple[float, float]:
    """(median, min) latency in milliseconds after one warm-up run."""
    feed = {session.get_inputs()[0].name: x}
    session.run(None, feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, feed)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times), min(times)


def onnx_weight_count(path: Path) -> int | None:
    """Float weights stored in the graph (BatchNorm folded into the convolutions)."""
    try:
        import onnx
    except ImportError:
        return None
    model = onnx.load(str(path), load_external_data=False)
    return sum(int(np.prod(init.dims)) for init in model.graph.initializer
               if init.data_type == onnx.TensorProto.FLOAT)


def torch_parameter_counts(spec: dict) -> dict[str, int] | None:
    """Trainable parameters of the architectures spec.json describes (None without torch)."""
    try:
        from model_export.models import (
            MattingConfig,
            SegmenterConfig,
            build_matting,
            build_segmenter,
        )
    except ImportError:
        return None

    def config(cls, fields: dict):
        return cls(**{k: v for k, v in fields.items() if k in cls.model_fields})

    segmenter = build_segmenter(config(SegmenterConfig, spec["segmenter"]))
    matting = build_matting(config(MattingConfig, spec["matting"]))
    return {
        "segmenter": sum(p.numel() for p in segmenter.parameters()),
        "trimap": 0,
        "matting": sum(p.numel() for p in matting.parameters()),
    }


def export_random(out: Path) -> None:
    from model_export.export.__main__ import main as export_main

    with contextlib.redirect_stdout(sys.stderr):  # keep stdout for the table
        export_main(["--random", "--out", str(out), "--version", "bench-random"])


def _count(value: int | None) -> str:
    return "n/a" if value is None else f"{value:,}"


def run(model_dir: Path, sizes: list[int], runs: int, threads: int) -> str:
    spec = json.loads((model_dir / "spec.json").read_text())
    params = torch_parameter_counts(spec)
    lines = [
        f"models: {model_dir} (version {spec.get('version', '?')})",
        (f"onnxruntime {ort.__version__}, CPUExecutionProvider, intra_op_num_threads={threads}, "
         f"sequential, batch 1, median (min) of {runs} runs after 1 warm-up"),
        (f"host: {platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs, "
         f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}"),
        "",
    ]
    header = "| graph | params | ONNX weights | " + " | ".join(f"{s}x{s} ms" for s in sizes) + " |"
    lines += [header, "|" + "---|" * (3 + len(sizes))]
    for stage in STAGES:
        path = model_dir / spec[stage]["file"]
        session = make_session(path, threads)
        cells = []
        for size in sizes:
            median, fastest = time_session(session, make_input(stage, size), runs)
            cells.append(f"{median:.1f} ({fastest:.1f})")
        lines.append(
            f"| {stage} | {_count(params[stage] if params else None)} | "
            f"{_count(onnx_weight_count(path))} | " + " | ".join(cells) + " |"
        )
        del session
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model_dir", nargs="?", type=Path, default=Path("models"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[320, 512, 1024])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    if (args.model_dir / "spec.json").is_file():
        print(run(args.model_dir, args.sizes, args.runs, args.threads))
        return
    print(f"no spec.json in {args.model_dir}: exporting untrained graphs to a temporary folder",
          file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="cutout-bench-") as tmp:
        export_random(Path(tmp))
        print(run(Path(tmp), args.sizes, args.runs, args.threads))


if __name__ == "__main__":
    if __package__ in (None, ""):  # `python bench/models.py`: make the repo importable
        sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    main()
