"""The only place that knows the order of the stages.

`Pipeline.infer` works on arrays: cap the long side -> segment (with a second, closer look at a
small object, zoom.py) -> ED trimap (with the backdrop's holes marked unknown, backdrop.py) ->
matting of the trimap's unknown band at a reduced scale (band.py) -> mix with the segmenter's
probability -> rescale the matte. `Pipeline.run` is the service's wrapper around it: decode ->
infer -> compose -> encode. Each stage is timed; outputs that need fewer stages stop early (mask
after segmentation, trimap before matting). The evaluation and the contact sheet call `infer`,
the service `run`: both go through the same code.
"""
from __future__ import annotations

import dataclasses
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from PIL import Image

from ..errors import DeadlineExceeded, InvalidOptions, ServiceError
from . import backdrop, band, codec, compose, geometry, trimap, zoom
from .background import Picture
from .config import PipelineConfig
from .options import CutoutOptions, roi_box
from .sessions import MattingModel, Segmenter, TrimapModel
from .spec import InferenceSpec, ModelSpec, load_segmenter_spec, load_spec

Stage = Literal["segment", "trimap", "matting"]


@dataclass
class Inference:
    """What `Pipeline.infer` found in one image. `mask`, `trimap` and `alpha` are at the
    working size (the long side capped at max_inference_side); `matte` is the answer of the
    last stage run, uint8 at the input's size, exactly as the service serves it."""

    size: tuple[int, int]  # (width, height) of the input
    mask: np.ndarray  # the segmenter's probability, float32
    trimap: np.ndarray | None  # 0 / 0.5 / 1, float32 (None: stopped after segmenting)
    alpha: np.ndarray | None  # float32 (None: stopped before matting)
    matte: np.ndarray
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    tiles: int = 0
    band_pixels: int = 0  # unknown pixels where the matting net ran (at the matting scale)
    net_pixels: int = 0  # pixels fed to the matting net (tiles x tile area, or the dense frame)
    looked_closer: bool = False  # the segmenter took a second look at a small object (zoom.py)

    def mask_matte(self) -> np.ndarray:
        """The `mask` output: the segmenter's probability as served."""
        return _mask_matte(self.mask, self.size)

    def trimap_matte(self) -> np.ndarray:
        """The `trimap` output as served (None when it was not computed)."""
        assert self.trimap is not None, "infer stopped before the trimap"
        return _trimap_matte(self.trimap, self.size)


def _mask_matte(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return geometry.upscale_matte(geometry.to_uint8(mask), *size)


def _trimap_matte(fine: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    return geometry.upscale_nearest(trimap.to_grey(fine), *size)


@dataclass
class Result:
    body: bytes
    media_type: str
    width: int
    height: int
    input_width: int
    input_height: int
    object_box: tuple[int, int, int, int] | None
    model_version: str
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage
    tiles: int = 0
    band_pixels: int = 0
    net_pixels: int = 0
    looked_closer: bool = False


class Deadline:
    """A request's time budget inside a worker: checked between stages, and an ONNX Runtime
    RunOptions whose terminate flag a timer sets, so a long inference stops mid-graph."""

    def __init__(self, seconds: float | None) -> None:
        self.run_options = ort.RunOptions()
        self.at = None if seconds is None else time.monotonic() + max(seconds, 0.0)
        self._timer: threading.Timer | None = None
        if seconds is not None:
            self._timer = threading.Timer(max(seconds, 0.0), self._expire)
            self._timer.daemon = True
            self._timer.start()

    def _expire(self) -> None:
        self.run_options.terminate = True

    @property
    def expired(self) -> bool:
        return self.at is not None and time.monotonic() >= self.at

    def check(self, stage: str) -> None:
        if self.expired:
            raise DeadlineExceeded(f"request deadline passed before {stage}")

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()


class Pipeline:
    """The three graphs of a model folder and the stages around them. `spec`: the model
    folder's spec, changed (`ModelSpec.with_segmenter_side`, `with_inference`) to measure other
    values; default: the folder's."""

    def __init__(self, config: PipelineConfig, spec: ModelSpec | None = None) -> None:
        self.config = config
        self.spec = spec or load_spec(config.model_dir)
        runtime = config.runtime()
        model_dir = config.model_dir
        # Only the matting net's arena shrinks: its band boxes take any size up to 512 x 512.
        # The segmenter and ED graphs see few shapes; there shrinkage cost time and saved no
        # memory (bench/ort_arena.py, docs/reliability.md).
        few_shapes = dataclasses.replace(runtime, arena_shrinkage=False)
        external = (None if config.segmenter_spec is None
                    else load_segmenter_spec(config.segmenter_spec))
        if external is not None:
            self.segmenter = Segmenter(Path(external.file), external, few_shapes)
        else:
            self.segmenter = Segmenter(model_dir / self.spec.segmenter.file, self.spec.segmenter,
                                       few_shapes)
        self.trimap = TrimapModel(model_dir / self.spec.trimap.file, self.spec.trimap, few_shapes)
        self.matting = MattingModel(model_dir / self.spec.matting.file, self.spec.matting, runtime)
        self.layout = band.TILES
        self.layout.check(self.spec.matting.size_multiple)
        self.encode_config = config.encoding()
        # The ED layer's radii were set for our segmenter's working size: it always runs there,
        # whichever segmenter produced the mask.
        self.trimap_side = self.spec.segmenter.input_size

    @property
    def version(self) -> str:
        return self.spec.version

    def run(self, data: bytes, options: CutoutOptions, deadline: Deadline | None = None) -> Result:
        """The service's path: decode -> `infer` -> compose -> encode."""
        deadline = deadline or Deadline(None)
        timings: dict[str, float] = {}
        stage = _stage_timer(timings, deadline)
        with stage("decode"):
            whole = codec.decode(data, self.config.max_pixels)
            behind = self._bg_image(options.bg_image)
        image, roi = _search_region(whole, options)  # the object is searched only in the roi
        found = self.infer(image.rgb, image.alpha, until=_last_stage(options), deadline=deadline,
                           timings=timings)
        matte = found.matte
        if roi is not None:  # outside the roi is background
            matte = geometry.cut_box(matte, (-roi[0], -roi[1], whole.size[0] - roi[0],
                                             whole.size[1] - roi[1]), 0)
        with stage("compose"):
            composed = compose.compose(whole.rgb, matte, options, behind,
                                       estimate_foreground=self.config.foreground_estimation)
        with stage("encode"):
            body = codec.encode(composed.pixels, options.format, self.encode_config,
                                alpha=composed.matte)
        height, width = composed.pixels.shape[:2]
        return Result(body, codec.MEDIA_TYPES[options.format], width, height, *whole.size,
                      composed.object_box, self.version, timings, found.tiles,
                      found.band_pixels, found.net_pixels, found.looked_closer)

    def infer(self, rgb: np.ndarray, alpha: np.ndarray | None = None, *,
              until: Stage = "matting", deadline: Deadline | None = None,
              timings: dict[str, float] | None = None) -> Inference:
        """Cut out one image given as arrays: `rgb` uint8 H x W x 3, `alpha` its own alpha
        channel (uint8 H x W) if it has one (flattened over white for the nets, multiplied into
        the matte). Stops after the stage `until`. `timings` (seconds per stage) is added to."""
        deadline = deadline or Deadline(None)
        timings = {} if timings is None else timings
        stage = _stage_timer(timings, deadline)

        def guarded(predict: Callable[..., np.ndarray]) -> Callable[[np.ndarray], np.ndarray]:
            def call(tensor: np.ndarray) -> np.ndarray:
                deadline.check("inference")
                try:
                    return predict(tensor, deadline.run_options)
                except Exception as exc:
                    if deadline.run_options.terminate or deadline.expired:
                        raise DeadlineExceeded("request deadline passed during inference") from exc
                    raise
            return call

        full_h, full_w = rgb.shape[:2]
        size = (full_w, full_h)
        tiles = band_pixels = net_px = 0
        with stage("resize"):
            work_w, work_h = geometry.fit_long_side(full_w, full_h, self.config.max_inference_side,
                                                    upscale=False)
            work_rgb = geometry.resize(rgb, work_w, work_h)
            if alpha is not None:  # flattened at the working size, not the full one
                work_alpha = geometry.resize(alpha, work_w, work_h)
                work_rgb = codec.over_white(work_rgb, work_alpha)
            trimap_size = geometry.fit_long_side(work_w, work_h, self.trimap_side)

        def segment(image: np.ndarray, out_size: tuple[int, int]) -> np.ndarray:
            return guarded(lambda x, ro: self.segmenter.predict(x, out_size, ro))(image)

        inference = self.spec.inference
        with stage("segment"):
            mask = segment(work_rgb, trimap_size)
            box = zoom.zoom_box(mask, inference.zoom_min_gain)
            if box is not None:
                mask = zoom.look_closer(mask, work_rgb, box, self.trimap_side, segment)

        def found(matte: np.ndarray, fine: np.ndarray | None = None,
                  alpha_work: np.ndarray | None = None) -> Inference:
            return Inference(size, mask, fine, alpha_work, matte, timings, tiles, band_pixels,
                             net_px, looked_closer=box is not None)

        if until == "segment":
            with stage("upscale"):
                return found(_mask_matte(mask, size))
        with stage("trimap"):
            coarse = guarded(self.trimap.predict)(mask)
            fine = trimap.resize_trimap(coarse, work_w, work_h)
            keyed = backdrop.backdrop_holes(work_rgb, coarse, fine, inference.backdrop_distance)
            if keyed is not None:
                fine[keyed] = trimap.UNKNOWN
        if until == "trimap":
            with stage("upscale"):
                return found(_trimap_matte(fine, size), fine)
        run = guarded(self.matting.predict)
        region = self.matting_region(fine)
        if region is None:  # the inference size itself (or nothing to matte)
            with stage("matting"):
                band_pixels = int(trimap.unknown_region(fine).sum())
                matted, tiles, net_px = band.matte_auto(self.matting, work_rgb, fine,
                                                        self.layout, run)
        else:  # the band's box, matted at a reduced scale, then back to full size
            (left, top, right, bottom), (matte_w, matte_h) = region
            crop_rgb = work_rgb[top:bottom, left:right]
            crop_tri = fine[top:bottom, left:right]
            with stage("matting"):
                small_rgb = geometry.resize(crop_rgb, matte_w, matte_h)
                small_tri = trimap.resize_trimap(crop_tri, matte_w, matte_h)
                band_pixels = int(trimap.unknown_region(small_tri).sum())
                small, tiles, net_px = band.matte_auto(self.matting, small_rgb, small_tri,
                                                       self.layout, run)
            # Back to the inference size: part of the matte's "upscale" stage (the stage names
            # are the Server-Timing / metrics contract).
            with stage("upscale"):
                matted = fine.copy()
                matted[top:bottom, left:right] = band.upscale_band(small, small_rgb, crop_tri,
                                                                   crop_rgb)
        with stage("upscale"):
            matted = band.mix_with_mask(matted, fine, mask, inference.matting_weight,
                                        matting_only=keyed)
            matte = geometry.upscale_matte(geometry.to_uint8(matted), full_w, full_h)
            if alpha is not None:
                matte = compose.multiply_mattes(matte, alpha)
        return found(matte, fine, matted)

    def _bg_image(self, data: bytes | None) -> Picture | None:
        """The bg_image, decoded with the same limits as the image."""
        if data is None:
            return None
        try:
            decoded = codec.decode(data, self.config.max_pixels)
        except ServiceError as exc:
            raise type(exc)(f"bg_image: {exc.message}") from exc
        return Picture(decoded.rgb, decoded.alpha)

    def matting_region(self, fine: np.ndarray
                       ) -> tuple[tuple[int, int, int, int], tuple[int, int]] | None:
        """Where the reduced-scale matting runs: the box (left, top, right, bottom) around the
        trimap's unknown band (plus 2 % of the long side for context) and the size it is
        scaled to, its long side at most `matting_side`. None when matting runs at the
        inference size (matting_side 0, the box already small enough, or no band)."""
        side = self.config.matting_side
        if side <= 0:
            return None
        box = geometry.bounding_box(trimap.unknown_region(fine).view(np.uint8), 0)
        if box is None:
            return None
        height, width = fine.shape
        pad = max(8, round(0.02 * max(width, height)))
        left, top = max(box[0] - pad, 0), max(box[1] - pad, 0)
        right, bottom = min(box[2] + pad, width), min(box[3] + pad, height)
        size = geometry.fit_long_side(right - left, bottom - top, side, upscale=False)
        if size == (right - left, bottom - top):
            return None
        return (left, top, right, bottom), size

    def warm_up(self) -> None:
        """One inference per graph at the shapes requests use, then a whole small cutout."""
        layout = self.layout
        self.matting.predict(np.zeros((layout.batch, 4, layout.size, layout.size), np.float32))
        height, width = 384, 512
        yy, xx = np.mgrid[0:height, 0:width]
        rgb = np.stack([xx % 256, yy % 256, (xx + yy) % 256], axis=-1).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(rgb).save(buffer, "PNG")
        self.run(buffer.getvalue(), CutoutOptions())


def measuring_pipeline(model_dir: Path, segmenter_side: int | None = None, **fields: object
                       ) -> Pipeline:
    """A pipeline for measuring other values (`evaluate --set`, `bench.sweep --config`):
    `fields` are PipelineConfig fields or the model spec's inference fields, by name;
    `segmenter_side` replaces the model's working size."""
    inference = {k: v for k, v in fields.items() if k in InferenceSpec.model_fields}
    config = PipelineConfig(model_dir=model_dir,
                            **{k: v for k, v in fields.items() if k not in inference})
    spec = load_spec(model_dir).with_segmenter_side(segmenter_side).with_inference(**inference)
    return Pipeline(config, spec)


def _last_stage(options: CutoutOptions) -> Stage:
    """The last stage an output needs (mask stops after segmentation, trimap before matting)."""
    if not options.needs("trimap"):
        return "segment"
    return "matting" if options.needs("matting") else "trimap"


def _stage_timer(timings: dict[str, float], deadline: Deadline
                 ) -> Callable[[str], AbstractContextManager[None]]:
    """A context manager per stage: checks the deadline first, adds the stage's time."""

    @contextmanager
    def stage(name: str) -> Iterator[None]:
        deadline.check(name)
        start = time.perf_counter()
        yield
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - start

    return stage


def _search_region(image: codec.Decoded, options: CutoutOptions
                   ) -> tuple[codec.Decoded, tuple[int, int, int, int] | None]:
    """The part of the image the models see: the roi's crop (and the roi's box), or the whole
    image (and None)."""
    if options.roi is None:
        return image, None
    try:
        box = roi_box(options.roi, *image.size)
    except ValueError as exc:
        raise InvalidOptions(str(exc)) from exc
    if box is None:
        return image, None
    alpha = None if image.alpha is None else geometry.cut_box(image.alpha, box)
    return dataclasses.replace(image, rgb=geometry.cut_box(image.rgb, box), alpha=alpha), box
