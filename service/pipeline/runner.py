"""The only place that knows the order of the stages.

decode -> cap the long side -> segment -> ED trimap -> band-only matting -> rescale the matte ->
compose -> encode, each timed. Outputs that need fewer stages stop early (mask after
segmentation, trimap before matting).
"""
from __future__ import annotations

import dataclasses
import io
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field

from ..errors import DeadlineExceeded, InvalidOptions, ServiceError
from . import backdrop, band, codec, compose, geometry, trimap, zoom
from .background import Picture
from .options import CutoutOptions, roi_box
from .sessions import MattingModel, RuntimeConfig, Segmenter, TrimapModel
from .spec import SegmenterSpec, load_spec


class PipelineConfig(BaseModel):
    """Everything a pipeline needs; built from the service settings (or by the CLI)."""

    model_config = ConfigDict(frozen=True)

    model_dir: Path
    external_segmenter: SegmenterSpec | None = Field(
        None, description="another segmenter graph; its `file` is a path")
    segmenter_side: int | None = Field(
        None, ge=64, description="long side the bundled segmenter and the ED layer work at "
        "(default: spec.json's)")
    segmenter_flip: bool = Field(
        False, description="also segment the mirror image and average the two (twice the "
        "segmenter's cost); measured in docs/performance.md")
    threads: int = Field(1, ge=1)
    mem_arena: bool = True
    arena_shrinkage: bool = Field(
        True, description="the matting net's arena gives back what a run no longer uses, after "
        "every run: a ceiling on the worker's memory whatever sizes come (docs/reliability.md)")
    spinning: bool = False
    max_pixels: int = Field(50_000_000, gt=0)
    max_inference_side: int = Field(1500, ge=64)
    zoom_min_gain: float = Field(
        1.15, ge=0.0, description="segment an object again, cut from the frame, when that "
        "enlarges it at least this much (0: never); measured in docs/performance.md")
    zoom_margin: float = Field(0.3, ge=0.0, description="context around the object's box for "
                               "that second pass, as a fraction of the box's long side")
    zoom_blend: float = Field(0.5, ge=0.0, le=1.0, description="weight of the second pass "
                              "inside the box (the rest is the first pass)")
    matting: Literal["band", "dense", "auto"] = "auto"
    matting_side: int = Field(512, ge=0, description="long side at which the band is matted "
                              "(0: the inference size); the matte is brought back up")
    matting_weight: float = Field(
        0.5, ge=0.0, le=1.0, description="weight of the matting net's alpha in the unknown "
        "band; the rest is the segmenter's probability (1: the matting net alone); measured "
        "in docs/performance.md")
    backdrop_distance: float = Field(
        6.0, ge=0.0, description="known-foreground pixels within this CIELAB distance of the "
        "backdrop's colour go to the matting net as unknown (0: off); opens see-through holes "
        "on plain backdrops; the shipped matting net is trained for 6, docs/training.md")
    matting_flip: bool = Field(
        False, description="also matte the mirrored band and average the two (twice the "
        "matting net's cost); measured in docs/performance.md")
    matting_refine: Literal["none", "guided"] = "guided"
    foreground_estimation: bool = Field(
        True, description="give the soft edge the object's estimated colour instead of the "
        "photo's (which holds the old backdrop's); measured in docs/performance.md")
    guided_radius: int = Field(2, ge=1)
    guided_eps: float = Field(1e-3, gt=0)
    tile_size: int = Field(128, gt=0)
    tile_margin: int = Field(16, ge=0)
    tile_batch: int = Field(4, ge=1)
    tile_placement: Literal["grid", "band"] = "band"
    graph_optimization: Literal["disable", "basic", "extended", "all"] = "all"
    png_compression: int = Field(1, ge=0, le=9)
    png_filter: Literal["adaptive", "none", "sub", "up", "avg", "paeth"] = "up"
    jpeg_quality: int = Field(90, ge=1, le=100)
    webp_quality: int = Field(90, ge=1, le=100)
    webp_method: int = Field(2, ge=0, le=6)
    webp_lossless: bool = False


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
    band_pixels: int = 0  # unknown pixels where the matting net ran (at the matting scale)
    net_pixels: int = 0  # pixels fed to the matting net (tiles x tile area, or the dense frame)
    looked_closer: bool = False  # the segmenter took a second look at a small object (zoom.py)


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
    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.spec = load_spec(config.model_dir)
        if config.segmenter_side is not None:
            segmenter = self.spec.segmenter.model_copy(update={"input_size": config.segmenter_side})
            self.spec = self.spec.model_copy(update={"segmenter": segmenter})
        runtime = RuntimeConfig(config.threads, config.mem_arena, config.spinning,
                                config.graph_optimization, config.arena_shrinkage)
        # Only the matting net's arena shrinks: its band boxes take any size up to 512 x 512.
        # The segmenter and ED graphs see few shapes; there shrinkage cost time and saved no
        # memory (bench/ort_arena.py, docs/reliability.md).
        few_shapes = dataclasses.replace(runtime, arena_shrinkage=False)
        model_dir = Path(config.model_dir)
        if config.external_segmenter is not None:
            self.segmenter = Segmenter(Path(config.external_segmenter.file),
                                       config.external_segmenter, few_shapes,
                                       flip=config.segmenter_flip)
        else:
            self.segmenter = Segmenter(model_dir / self.spec.segmenter.file, self.spec.segmenter,
                                       few_shapes, flip=config.segmenter_flip)
        self.trimap = TrimapModel(model_dir / self.spec.trimap.file, self.spec.trimap, few_shapes)
        self.matting = MattingModel(model_dir / self.spec.matting.file, self.spec.matting, runtime,
                                    flip=config.matting_flip)
        self.layout = band.TileLayout(config.tile_size, config.tile_margin, config.tile_batch,
                                      config.tile_placement)
        self.layout.check(self.spec.matting.size_multiple)
        self.encode_config = codec.EncodeConfig(
            config.png_compression, config.png_filter, config.jpeg_quality, config.webp_quality,
            config.webp_method, config.webp_lossless)
        # The ED layer's radii were set for our segmenter's working size: it always runs there,
        # whichever segmenter produced the mask.
        self.trimap_side = self.spec.segmenter.input_size

    @property
    def version(self) -> str:
        return self.spec.version

    def run(self, data: bytes, options: CutoutOptions, deadline: Deadline | None = None) -> Result:
        deadline = deadline or Deadline(None)
        timings: dict[str, float] = {}

        @contextmanager
        def stage(name: str) -> Iterator[None]:
            deadline.check(name)
            start = time.perf_counter()
            yield
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - start

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

        with stage("decode"):
            whole = codec.decode(data, self.config.max_pixels)
            behind = self._bg_image(options.bg_image)
        image, roi = _search_region(whole, options)  # the object is searched only in the roi
        full_w, full_h = image.size
        tiles = band_pixels = net_px = 0
        with stage("resize"):
            work_w, work_h = geometry.fit_long_side(full_w, full_h, self.config.max_inference_side,
                                                    upscale=False)
            work_rgb = geometry.resize(image.rgb, work_w, work_h)
            if image.alpha is not None:  # flattened at the working size, not the full one
                work_alpha = geometry.resize(image.alpha, work_w, work_h)
                work_rgb = codec.over_white(work_rgb, work_alpha)
            trimap_size = geometry.fit_long_side(work_w, work_h, self.trimap_side)
        def segment(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
            return guarded(lambda x, ro: self.segmenter.predict(x, size, ro))(rgb)

        with stage("segment"):
            mask = segment(work_rgb, trimap_size)
            box = zoom.zoom_box(mask, self.config.zoom_margin, self.config.zoom_min_gain)
            if box is not None:
                mask = zoom.look_closer(mask, work_rgb, box, self.trimap_side, segment,
                                        self.config.zoom_blend)

        if not options.needs("trimap"):
            with stage("upscale"):
                matte = geometry.upscale_matte(geometry.to_uint8(mask), full_w, full_h)
        else:
            with stage("trimap"):
                coarse = guarded(self.trimap.predict)(mask)
                fine = trimap.resize_trimap(coarse, work_w, work_h)
                keyed = backdrop.backdrop_holes(work_rgb, coarse, fine,
                                                self.config.backdrop_distance)
                if keyed is not None:
                    fine[keyed] = trimap.UNKNOWN
            if not options.needs("matting"):
                with stage("upscale"):
                    matte = geometry.upscale_nearest(trimap.to_grey(fine), full_w, full_h)
            else:
                run = guarded(self.matting.predict)
                region = self.matting_region(fine)
                if region is None:  # the inference size itself (or nothing to matte)
                    with stage("matting"):
                        band_pixels = int(trimap.unknown_region(fine).sum())
                        alpha, tiles, net_px = self._matte(work_rgb, fine, run)
                else:  # the band's box, matted at a reduced scale, then back to full size
                    (left, top, right, bottom), (matte_w, matte_h) = region
                    crop_rgb = work_rgb[top:bottom, left:right]
                    crop_tri = fine[top:bottom, left:right]
                    with stage("matting"):
                        small_rgb = geometry.resize(crop_rgb, matte_w, matte_h)
                        small_tri = trimap.resize_trimap(crop_tri, matte_w, matte_h)
                        band_pixels = int(trimap.unknown_region(small_tri).sum())
                        small, tiles, net_px = self._matte(small_rgb, small_tri, run)
                    # Back to the inference size: part of the matte's "upscale" stage (the
                    # stage names are the Server-Timing / metrics contract).
                    with stage("upscale"):
                        alpha = fine.copy()
                        alpha[top:bottom, left:right] = band.upscale_band(
                            small, small_rgb, crop_tri, crop_rgb, self.config.matting_refine,
                            self.config.guided_radius, self.config.guided_eps)
                with stage("upscale"):
                    alpha = band.mix_with_mask(alpha, fine, mask, self.config.matting_weight,
                                               matting_only=keyed)
                    matte = geometry.upscale_matte(geometry.to_uint8(alpha), full_w, full_h)
                    if image.alpha is not None:
                        matte = compose.multiply_mattes(matte, image.alpha)
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
                      composed.object_box, self.version, timings, tiles, band_pixels, net_px,
                      looked_closer=box is not None)

    def _bg_image(self, data: bytes | None) -> Picture | None:
        """The bg_image, decoded with the same limits as the image."""
        if data is None:
            return None
        try:
            decoded = codec.decode(data, self.config.max_pixels)
        except ServiceError as exc:
            raise type(exc)(f"bg_image: {exc.message}") from exc
        return Picture(decoded.rgb, decoded.alpha)

    def _matte(self, rgb: np.ndarray, tri: np.ndarray, run: Callable[[np.ndarray], np.ndarray]
               ) -> tuple[np.ndarray, int, int]:
        """(alpha, tiles run, pixels fed to the net)."""
        multiple = self.matting.spec.size_multiple
        mode = self.config.matting
        if mode == "auto":
            if not trimap.unknown_region(tri).any():
                return tri.copy(), 0, 0
            mode = band.choose_mode(tri, self.layout, multiple)
        if mode == "dense":
            alpha, tiles = band.matte_dense(self.matting, rgb, tri, run)
            return alpha, tiles, band.net_pixels("dense", tri, self.layout, multiple)
        alpha, tiles = band.matte_band(self.matting, rgb, tri, self.layout, run)
        return alpha, tiles, tiles * self.layout.size ** 2

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
