"""ONNX Runtime knobs on the AlphaNet graphs: optimisation level, threads, spinning, INT8.

    python -m bench.ort_knobs --models models [--int8-dir DIR] [--runs 7]

Times the segmenter at the service's working shape (320 x 224: a 3:2 portrait at 320 px, padded
to 32) and the matting net on a batch of 4 tiles of 128 px and on one 512 x 352 frame, for each
session variant; variants are interleaved run by run so background load hits them alike.
Prints the median ms. --int8-dir holds `segmenter.int8.onnx` / `matting.int8.onnx` made with
`python -m bench.ort_knobs --quantize DIR` (onnxruntime.quantization.quantize_dynamic, QUInt8
weights).
"""
from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

from service.pipeline.sessions import OPTIMIZATION_LEVELS


def session(path: Path, threads: int, level: str = "all", spinning: bool = True,
            arena: bool = True, pattern: bool = True) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = OPTIMIZATION_LEVELS[level]
    options.enable_cpu_mem_arena = arena
    options.enable_mem_pattern = pattern
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def quantize(models: Path, out: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    out.mkdir(parents=True, exist_ok=True)
    for name in ("segmenter", "matting"):
        pre = out / f"{name}.pre.onnx"
        quant_pre_process(str(models / f"{name}.onnx"), str(pre), skip_symbolic_shape=True)
        quantize_dynamic(str(pre), str(out / f"{name}.int8.onnx"), weight_type=QuantType.QUInt8)
        pre.unlink()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=Path, default=Path("models"))
    parser.add_argument("--int8-dir", type=Path)
    parser.add_argument("--quantize", type=Path, metavar="DIR")
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args(argv)
    if args.quantize:
        quantize(args.models, args.quantize)
        return
    rng = np.random.default_rng(0)
    seg_x = rng.standard_normal((1, 3, 320, 224)).astype(np.float32)
    tri = np.full((1, 1, 128, 128), 0.5, np.float32)
    tiles_x = np.concatenate([rng.standard_normal((4, 3, 128, 128)).astype(np.float32),
                              np.repeat(tri, 4, 0)], 1)
    frame_x = np.concatenate([rng.standard_normal((1, 3, 512, 352)).astype(np.float32),
                              np.full((1, 1, 512, 352), 0.5, np.float32)], 1)
    variants = {
        "all, 2 threads": {"threads": 2},
        "extended, 2 threads": {"threads": 2, "level": "extended"},
        "basic, 2 threads": {"threads": 2, "level": "basic"},
        "disable, 2 threads": {"threads": 2, "level": "disable"},
        "all, 2 threads, no spinning": {"threads": 2, "spinning": False},
        "all, 2 threads, no arena/pattern": {"threads": 2, "arena": False, "pattern": False},
        "all, 1 thread": {"threads": 1},
    }
    graphs = {"segmenter": (args.models / "segmenter.onnx", [("320x224", seg_x)]),
              "matting": (args.models / "matting.onnx",
                          [("4x128x128", tiles_x), ("1x512x352", frame_x)])}
    for graph, (path, inputs) in graphs.items():
        sessions = {name: session(path, **kw) for name, kw in variants.items()}
        if args.int8_dir and (args.int8_dir / f"{graph}.int8.onnx").is_file():
            sessions["INT8 dynamic, all, 2 threads"] = session(
                args.int8_dir / f"{graph}.int8.onnx", 2)
        for label, x in inputs:
            times: dict[str, list[float]] = {name: [] for name in sessions}
            for sess in sessions.values():  # warm-up
                sess.run(None, {sess.get_inputs()[0].name: x})
            for _ in range(args.runs):
                for name, sess in sessions.items():
                    start = time.perf_counter()
                    sess.run(None, {sess.get_inputs()[0].name: x})
                    times[name].append((time.perf_counter() - start) * 1000)
            for name, values in times.items():
                print(f"{graph:<9} {label:<10} {name:<34} {statistics.median(values):8.1f} ms",
                      flush=True)


if __name__ == "__main__":
    main()
