"""One object per ONNX graph: it owns its ONNX Runtime session, its names and its normalisation
(rembg's session pattern). Subclasses only implement `predict`."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from ..errors import ModelFolderError
from . import geometry
from .spec import MattingSpec, SegmenterSpec, TrimapSpec

OPTIMIZATION_LEVELS = {
    "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
    "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
    "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
    "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
}

# A run option: after the run, the CPU arena hands back the regions it no longer uses. Without
# it the arena keeps, for good, the buffers of every input shape it has seen (docs/reliability.md).
ARENA_SHRINKAGE = ("memory.enable_memory_arena_shrinkage", "cpu:0")


@dataclass(frozen=True)
class RuntimeConfig:
    """ONNX Runtime knobs shared by a worker's sessions. The others are fixed by measurement
    (docs/performance.md, "ONNX Runtime"): every graph optimisation, the CPU memory arena on
    (off cost 20-40 % on the matting net), intra-op spinning off (20-30 % faster on shared
    cores)."""

    threads: int
    arena_shrinkage: bool

    def session_options(self) -> ort.SessionOptions:
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.enable_cpu_mem_arena = True
        options.log_severity_level = 3
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        return options


class Normaliser:
    """(RGB / 255 - mean) / std as one multiply-add, written channels-first."""

    def __init__(self, mean: tuple[float, float, float], std: tuple[float, float, float]) -> None:
        std_array = np.asarray(std, dtype=np.float32)
        self.scale = (1.0 / (255.0 * std_array)).astype(np.float32)
        self.offset = (-np.asarray(mean, dtype=np.float32) / std_array).astype(np.float32)

    def __call__(self, rgb: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """H x W x 3 uint8 -> 3 x H x W float32 (into `out` when given)."""
        values = rgb.astype(np.float32) * self.scale + self.offset
        if out is None:
            return np.ascontiguousarray(values.transpose(2, 0, 1))
        out[...] = values.transpose(2, 0, 1)
        return out


class OnnxModel:
    def __init__(self, path: Path, input_name: str | None, output_name: str | None,
                 runtime: RuntimeConfig) -> None:
        self.path = Path(path)
        self.shrink_arena = runtime.arena_shrinkage
        try:
            self.session = ort.InferenceSession(
                str(self.path), sess_options=runtime.session_options(),
                providers=["CPUExecutionProvider"])
        except Exception as exc:  # ORT raises its own types; all mean "this graph is unusable"
            raise ModelFolderError(f"cannot load ONNX graph {self.path}: {exc}") from exc
        inputs = [i.name for i in self.session.get_inputs()]
        outputs = [o.name for o in self.session.get_outputs()]
        self.input_name = self._pick(input_name, inputs, "input")
        self.output_name = self._pick(output_name, outputs, "output")

    def _pick(self, wanted: str | None, names: list[str], kind: str) -> str:
        if wanted is None:
            return names[0]
        if wanted not in names:
            raise ModelFolderError(
                f"{self.path.name} has no {kind} named {wanted!r}; its {kind}s are {names}")
        return wanted

    def run(self, tensor: np.ndarray, run_options: ort.RunOptions | None = None) -> np.ndarray:
        if self.shrink_arena:
            run_options = with_arena_shrinkage(run_options or ort.RunOptions())
        return self.session.run([self.output_name], {self.input_name: tensor}, run_options)[0]


def with_arena_shrinkage(run_options: ort.RunOptions) -> ort.RunOptions:
    """The request's run options, set to shrink the arena (once: ORT warns when it is set again)."""
    key, value = ARENA_SHRINKAGE
    try:
        if run_options.get_run_config_entry(key) == value:
            return run_options
    except RuntimeError:  # not set yet
        pass
    run_options.add_run_config_entry(key, value)
    return run_options


class Segmenter(OnnxModel):
    """RGB image -> foreground probability at the working size the caller asks for."""

    def __init__(self, path: Path, spec: SegmenterSpec, runtime: RuntimeConfig) -> None:
        super().__init__(path, spec.input, spec.output, runtime)
        self.spec = spec
        self.normalise = Normaliser(spec.mean, spec.std)

    def predict(self, rgb: np.ndarray, out_size: tuple[int, int],
                run_options: ort.RunOptions | None = None) -> np.ndarray:
        height, width = rgb.shape[:2]
        side = self.spec.input_size
        if self.spec.resize == "square":
            net_w = net_h = side
        else:
            net_w, net_h = geometry.fit_long_side(width, height, side)
        image = geometry.resize(rgb, net_w, net_h)
        mask = self._probability(image, run_options)
        return geometry.resize(mask, *out_size)

    def _probability(self, image: np.ndarray, run_options: ort.RunOptions | None) -> np.ndarray:
        net_h, net_w = image.shape[:2]
        padded = geometry.pad_to_multiple(image, self.spec.size_multiple)
        raw = self.run(self.normalise(padded)[None], run_options)
        if raw.ndim < 2 or raw.size != raw.shape[-1] * raw.shape[-2]:
            raise ModelFolderError(
                f"{self.path.name} must output one [1, 1, H, W] map, got shape {raw.shape}")
        mask = raw.reshape(raw.shape[-2], raw.shape[-1])[:net_h, :net_w].astype(np.float32)
        return self._activate(mask)

    def _activate(self, mask: np.ndarray) -> np.ndarray:
        if self.spec.activation == "sigmoid":
            return 1.0 / (1.0 + np.exp(-np.clip(mask, -60.0, 60.0)))
        if self.spec.activation == "minmax":
            low, high = float(mask.min()), float(mask.max())
            return (mask - low) / (high - low) if high > low else np.zeros_like(mask)
        return np.clip(mask, 0.0, 1.0)


class TrimapModel(OnnxModel):
    """The ED layer graph: probability -> trimap with exact values 0 / 0.5 / 1."""

    def __init__(self, path: Path, spec: TrimapSpec, runtime: RuntimeConfig) -> None:
        super().__init__(path, spec.input, spec.output, runtime)
        self.spec = spec

    def predict(self, mask: np.ndarray, run_options: ort.RunOptions | None = None) -> np.ndarray:
        tensor = np.ascontiguousarray(mask, dtype=np.float32)[None, None]
        return self.run(tensor, run_options)[0, 0]


class MattingModel(OnnxModel):
    """[N, 4, h, w] (normalised RGB + trimap) -> alpha [N, h, w], fused with the trimap."""

    def __init__(self, path: Path, spec: MattingSpec, runtime: RuntimeConfig) -> None:
        super().__init__(path, spec.input, spec.output, runtime)
        self.spec = spec
        self.normalise = Normaliser(spec.mean, spec.std)

    def predict(self, batch: np.ndarray, run_options: ort.RunOptions | None = None) -> np.ndarray:
        return self.run(batch, run_options)[:, 0]
