"""Peer models that users compare us with, for benchmarks and as an optional training teacher.

ISNet as ``@imgly/background-removal`` (1.4.x) runs it: the image stretched to 1024 x 1024
(bilinear, aspect not kept), ``(rgb - 128) / 256`` per channel, graph output ``output`` already
in [0, 1] (sigmoid inside), resized back bilinearly to the image size.

The weights come from npm ``@imgly/background-removal-data`` (AGPL-3.0): they are assembled into
``.cache/peers/`` (gitignored) and must never be committed, shipped or loaded by the service.
No torch import here: this module runs with the serving dependencies.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
IMGLY_DATA = REPO / ".cache" / "npm" / "node_modules" / "@imgly" / "background-removal-data"
ISNET_PATH = REPO / ".cache" / "peers" / "isnet.onnx"

# resources.json keys, best first. 1.4.x ships 'medium' (ISNet fp16, the library's default) and
# 'small' (ISNet quint8); later layouts name them isnet / isnet_fp16 / isnet_quint8.
ISNET_KEYS = (
    ("/models/isnet", "fp32"),
    ("/models/isnet_fp16", "fp16"),
    ("/models/medium", "fp16"),
    ("/models/isnet_quint8", "quint8"),
    ("/models/small", "quint8"),
)


def _fp16_to_fp32(model_bytes: bytes) -> bytes:
    """Same graph with float16 weights, constants and casts widened to float32.

    ONNX Runtime's CPU provider has few float16 kernels; the widened graph computes the same
    network (weights exactly as stored) without the casts. Needs the ``onnx`` package."""
    import onnx
    from onnx import TensorProto, numpy_helper

    model = onnx.load_from_string(model_bytes)
    graph = model.graph
    for i, init in enumerate(graph.initializer):
        if init.data_type == TensorProto.FLOAT16:
            widened = numpy_helper.from_array(
                numpy_helper.to_array(init).astype(np.float32), init.name
            )
            graph.initializer[i].CopyFrom(widened)
    for node in graph.node:
        for attr in node.attribute:
            if node.op_type == "Cast" and attr.name == "to" and attr.i == TensorProto.FLOAT16:
                attr.i = TensorProto.FLOAT
            if attr.type == onnx.AttributeProto.TENSOR and attr.t.data_type == TensorProto.FLOAT16:
                attr.t.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(attr.t).astype(np.float32)))
    for info in [*graph.value_info, *graph.input, *graph.output]:
        if info.type.tensor_type.elem_type == TensorProto.FLOAT16:
            info.type.tensor_type.elem_type = TensorProto.FLOAT
    return model.SerializeToString()


def ensure_isnet(
    path: Path = ISNET_PATH, package: Path = IMGLY_DATA, widen_fp16: bool = True
) -> Path:
    """Assemble the ISNet ONNX from the npm package's chunks (listed in dist/resources.json).

    Picks the fp32 model when the package has one, else the fp16 one (widened to fp32 for the
    CPU unless ``widen_fp16`` is False), else the quint8 one. Writes ``<path>.json`` saying
    which."""
    path = Path(path)
    if path.exists():
        return path
    resources_file = package / "dist" / "resources.json"
    if not resources_file.exists():
        raise FileNotFoundError(
            f"{resources_file} missing: run `python -m model_export.data fetch` "
            "(npm install --prefix .cache/npm @imgly/background-removal-data)"
        )
    resources = json.loads(resources_file.read_text())
    key, precision = next(((k, p) for k, p in ISNET_KEYS if k in resources), (None, None))
    if key is None:
        raise KeyError(f"no ISNet model in {resources_file}: keys are {sorted(resources)}")
    entry = resources[key]
    parts = []
    for chunk in entry["chunks"]:
        data = (package / "dist" / chunk["hash"]).read_bytes()
        start, end = chunk["offsets"]
        if len(data) != end - start:
            raise ValueError(
                f"chunk {chunk['hash']} of {key}: {len(data)} bytes, expected {end - start}"
            )
        if hashlib.sha256(data).hexdigest() != chunk["hash"]:
            raise ValueError(f"chunk {chunk['hash']} of {key}: sha256 mismatch")
        parts.append(data)
    model = b"".join(parts)
    if len(model) != entry["size"]:
        raise ValueError(f"{key}: assembled {len(model)} bytes, expected {entry['size']}")
    widened = precision == "fp16" and widen_fp16
    if widened:
        model = _fp16_to_fp32(model)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(model)
    tmp.replace(path)
    version = json.loads((package / "package.json").read_text()).get("version")
    info = {
        "package": f"@imgly/background-removal-data@{version}",
        "key": key,
        "precision": precision,
        "widened_to_fp32": widened,
        "bytes": path.stat().st_size,
        "licence": "AGPL-3.0: never commit",
    }
    path.with_suffix(".json").write_text(json.dumps(info, indent=2))
    return path


class IsnetPeer:
    """ISNet mask predictor with imgly's preprocessing; ``predict(rgb uint8) -> float32 HxW``."""

    size = 1024
    mean = 128.0
    std = 256.0

    def __init__(self, path: str | Path = ".cache/peers/isnet.onnx", threads: int = 2) -> None:
        import onnxruntime as ort

        path = Path(path)
        if not path.is_absolute() and not path.exists():
            path = REPO / path
        if not path.exists():
            raise FileNotFoundError(f"{path} missing: call bench.peers.ensure_isnet() first")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        outputs = [o.name for o in self.session.get_outputs()]
        self.output_name = "output" if "output" in outputs else outputs[0]

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
            raise ValueError(f"expected RGB uint8 HxWx3, got {rgb.dtype} {rgb.shape}")
        resized = cv2.resize(rgb, (self.size, self.size), interpolation=cv2.INTER_LINEAR)
        x = (resized.astype(np.float32) - self.mean) / self.std
        return np.ascontiguousarray(x.transpose(2, 0, 1)[None])

    def predict(self, rgb: np.ndarray) -> np.ndarray:
        h, w = rgb.shape[:2]
        (mask,) = self.session.run([self.output_name], {self.input_name: self.preprocess(rgb)})
        mask = np.clip(mask.reshape(self.size, self.size).astype(np.float32), 0.0, 1.0)
        return cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)


def main() -> None:
    """python -m bench.peers [N]: assemble ISNet, then IoU vs CCP masks and latency on N val
    images."""
    import sys
    import time

    from PIL import Image

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 8
    path = ensure_isnet()
    print(json.loads(path.with_suffix(".json").read_text()))
    peer = IsnetPeer(path, threads=2)
    from model_export.data.ccp import DEFAULT_ROOT as root
    from model_export.data.ccp import ccp_split  # plain numpy/PIL module: no torch

    val = ccp_split("val", root)
    ious, times = [], []
    peer.predict(np.zeros((64, 64, 3), np.uint8))  # warm-up
    for item in val[:n]:
        rgb = np.asarray(Image.open(root / "image" / f"{item}.jpg").convert("RGB"))
        gt = np.asarray(Image.open(root / "alpha" / f"{item}.png").convert("L")) > 127
        start = time.perf_counter()
        pred = peer.predict(rgb) > 0.5
        times.append(time.perf_counter() - start)
        iou = (pred & gt).sum() / max((pred | gt).sum(), 1)
        ious.append(iou)
        print(f"{item}: IoU {iou:.3f}  {times[-1] * 1000:.0f} ms")
    print(f"mean IoU {np.mean(ious):.3f} on {len(ious)} CCP val images; "
          f"median latency {np.median(times) * 1000:.0f} ms at 1024 on 2 threads")


if __name__ == "__main__":
    main()
