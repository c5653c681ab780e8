"""Helpers for the service tests (no tests here): a real uvicorn server on 127.0.0.1 in a
thread, test images made with Pillow, a tiny colour-threshold ONNX segmenter, an ICC profile."""
from __future__ import annotations

import io
import json
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import numpy as np
import uvicorn
from PIL import Image

from service.config import Settings
from service.main import create_app

REPO_ROOT = Path(__file__).resolve().parents[2]
RED = (200, 30, 30)
WHITE = (255, 255, 255)


# ---- a live server ---------------------------------------------------------------------------
@contextmanager
def serving(settings: Settings, **app_options) -> Iterator[LiveServer]:
    """A started server with its workers ready; stopped on leaving. `app_options` go to
    `create_app` (e.g. image_url_allow_loopback=True)."""
    live = LiveServer(settings, **app_options).start()
    try:
        live.wait_ready()
        yield live
    finally:
        live.stop()


def post(url: str, data: bytes, timeout: float = 60.0) -> httpx.Response:
    """One raw-body POST to /v1/cutout on its own connection (as concurrent clients do)."""
    with httpx.Client(base_url=url, timeout=timeout) as client:
        return client.post("/v1/cutout", content=data)


def restarts(server: LiveServer, reason: str) -> float:
    """cutout_worker_restarts_total{reason} from the server's /metrics."""
    with server.client() as client:
        text = client.get("/metrics").text
    prefix = f'cutout_worker_restarts_total{{reason="{reason}"}} '
    lines = [line for line in text.splitlines() if line.startswith(prefix)]
    return float(lines[0].split()[-1]) if lines else 0.0


class LiveServer:
    """The app under uvicorn on a free port, its worker pool started by the lifespan."""

    def __init__(self, settings: Settings, **app_options) -> None:
        self.app = create_app(settings, **app_options)
        config = uvicorn.Config(self.app, host="127.0.0.1", port=0, log_level="warning",
                                lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True, name="uvicorn")
        self.url = ""

    def start(self, timeout: float = 30.0) -> LiveServer:
        self.thread.start()
        end = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > end:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def wait_ready(self, timeout: float = 180.0) -> None:
        end = time.monotonic() + timeout
        with self.client() as client:
            while time.monotonic() < end:
                if client.get("/readyz").status_code == 200:
                    return
                time.sleep(0.1)
        raise RuntimeError(f"workers not ready after {timeout} s: {self.pool.status()}")

    def wait_idle(self, timeout: float = 60.0) -> None:
        """Every worker ready and idle (a worker may finish an expired job a little after its
        client got the 504)."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if all(w["state"] == "ready" for w in self.pool.status()):
                return
            time.sleep(0.02)
        raise RuntimeError(f"workers not idle after {timeout} s: {self.pool.status()}")

    def client(self, timeout: float = 120.0) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=timeout)

    @property
    def pool(self):
        return self.app.state.pool

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


# ---- images ----------------------------------------------------------------------------------
def disc_image(width: int, height: int, centre: tuple[int, int] | None = None,
               radius: int | None = None, colour=RED, background=WHITE) -> Image.Image:
    """A product-like photo: a red disc on white (what the colour segmenter finds)."""
    yy, xx = np.mgrid[0:height, 0:width]
    cx, cy = centre or (width // 2, height // 2)
    r = radius or min(width, height) // 4
    inside = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    pixels = np.empty((height, width, 3), np.uint8)
    pixels[...] = background
    pixels[inside] = colour
    return Image.fromarray(pixels)


def encoded(image: Image.Image, fmt: str = "PNG", **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def png_with_claimed_size(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR claims width x height (a decompression bomb's header)."""
    data = bytearray(encoded(Image.new("RGB", (8, 8))))
    ihdr = 8  # after the signature: length(4) type(4) data(13) crc(4)
    data[ihdr + 8:ihdr + 16] = struct.pack(">II", width, height)
    crc = zlib.crc32(bytes(data[ihdr + 4:ihdr + 8 + 13]))
    data[ihdr + 21:ihdr + 25] = struct.pack(">I", crc)
    return bytes(data)


def heic_with_claimed_size(width: int, height: int) -> bytes:
    """A real small HEIC whose image size box (ispe) claims width x height (64 x 64 coded:
    a size off the codec's block grid would add a clean-aperture box, whose size wins)."""
    data = bytearray(encoded(Image.new("RGB", (64, 64), RED), "HEIF", quality=50))
    box = data.find(b"ispe")  # size(4) type(4) version+flags(4) width(4) height(4)
    assert box > 0 and data.find(b"ispe", box + 4) < 0 and b"clap" not in data
    data[box + 8:box + 16] = struct.pack(">II", width, height)
    return bytes(data)


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def tiff_with_compression(compression: int) -> bytes:
    """A 16 x 16 red TIFF whose compression tag says `compression` (the strip is left raw): a
    known container with a codec a libtiff build may lack (50001 WebP, 50000 ZSTD, ...)."""
    data = bytearray(encoded(Image.new("RGB", (16, 16), (200, 30, 30)), "TIFF"))
    tag = data.find(b"\x03\x01\x03\x00\x01\x00\x00\x00")  # tag 259, SHORT, count 1
    data[tag + 8:tag + 10] = compression.to_bytes(2, "little")
    return bytes(data)


# ---- a pluggable segmenter for tests ---------------------------------------------------------
def colour_segmenter(path: Path) -> Path:
    """ONNX graph: RGB in [0, 1] -> sigmoid(20 * (R - (G + B) / 2 - 0.3)): red things are
    foreground. Lets HTTP tests see real objects, trimap bands and matting with random nets."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weight = numpy_helper.from_array(
        (20.0 * np.array([1.0, -0.5, -0.5], np.float32)).reshape(1, 3, 1, 1), "w")
    bias = numpy_helper.from_array(np.array([-6.0], np.float32), "b")
    graph = helper.make_graph(
        [helper.make_node("Conv", ["image", "w", "b"], ["logit"]),
         helper.make_node("Sigmoid", ["logit"], ["mask"])],
        "colour_segmenter",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["n", 3, "h", "w"])],
        [helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["n", 1, "h", "w"])],
        initializer=[weight, bias])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def colour_segmenter_spec(path: Path, **fields) -> Path:
    """The external-segmenter spec file of the colour graph at `path` (written beside it):
    RGB / 255 unnormalised, 320 px long side; `fields` win."""
    spec = path.with_suffix(".json")
    spec.write_text(json.dumps({"file": path.name, "mean": [0.0, 0.0, 0.0],
                                "std": [1.0, 1.0, 1.0], "input_size": 320, **fields}))
    return spec


def colour_segmenter_settings(path: Path) -> dict:
    return {"segmenter_spec": colour_segmenter_spec(path)}


def colour_server_settings(model_dir: Path, folder: Path, **overrides) -> dict:
    """Settings fields of a one-worker HTTP test server whose segmenter is the colour graph
    (red things are foreground), written into `folder`; `overrides` win."""
    segmenter = colour_segmenter(folder / "colour.onnx")
    return {"model_dir": model_dir, "workers": 1, "queue_size": 8, "request_timeout_s": 120,
            **colour_segmenter_settings(segmenter), **overrides}


# ---- ICC -------------------------------------------------------------------------------------
def linear_rgb_icc() -> bytes:
    """A minimal ICC v2 display profile: sRGB primaries with gamma 1.0 ("linear RGB")."""
    def s15(v: float) -> bytes:
        return struct.pack(">i", round(v * 65536))

    def xyz(x: float, y: float, z: float) -> bytes:
        return b"XYZ " + b"\0" * 4 + s15(x) + s15(y) + s15(z)

    text = b"linear RGB test\0"
    desc = (b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 3
            + b"\0" * 67)
    curve = b"curv" + b"\0" * 4 + struct.pack(">IH", 1, 0x0100) + b"\0\0"
    tags = [(b"desc", desc), (b"wtpt", xyz(0.9642, 1.0, 0.8249)),
            (b"rXYZ", xyz(0.4361, 0.2225, 0.0139)), (b"gXYZ", xyz(0.3851, 0.7169, 0.0971)),
            (b"bXYZ", xyz(0.1431, 0.0606, 0.7141)), (b"rTRC", curve), (b"gTRC", curve),
            (b"bTRC", curve), (b"cprt", b"text" + b"\0" * 4 + b"none\0\0\0\0")]
    offset = 128 + 4 + 12 * len(tags)
    table, blobs = b"", b""
    for signature, blob in tags:
        blob += b"\0" * (-len(blob) % 4)
        table += signature + struct.pack(">II", offset + len(blobs), len(blob))
        blobs += blob
    size = offset + len(blobs)
    header = (struct.pack(">I", size) + b"\0" * 4 + struct.pack(">I", 0x02100000) + b"mntr"
              + b"RGB " + b"XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 24 + struct.pack(">I", 0)
              + s15(0.9642) + s15(1.0) + s15(0.8249) + b"\0" * 4 + b"\0" * 44)
    assert len(header) == 128, len(header)
    return header + struct.pack(">I", len(tags)) + table + blobs
