"""Bytes in, pixels out, and back: decoding (Pillow) and encoding (OpenCV PNG/JPEG, Pillow WebP).

Decoding refuses what it should before touching the pixels: unknown formats (415), and images
whose header claims more pixels than allowed (413; decompression bombs). It then applies the
EXIF orientation, converts any mode to 8-bit RGB (keeping an input alpha apart) and converts
embedded ICC profiles to sRGB.
"""
from __future__ import annotations

import io
import logging
import zipfile
from dataclasses import dataclass

import cv2
import numpy as np
import pillow_heif
from PIL import Image, ImageCms, ImageOps, UnidentifiedImageError

from ..errors import EmptyInput, PayloadTooLarge, UndecodableImage, UnsupportedMediaType

log = logging.getLogger(__name__)

# HEIC / HEIF (phone photos) through libheif. HEIF's own orientation boxes (irot / imir, which
# viewers follow) are applied by libheif while decoding, and the EXIF orientation is then
# reported as 1, so exif_transpose below does not turn the picture twice. Thumbnails, depth and
# auxiliary images are never read.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)

# Formats worth decoding from the internet; everything else (EPS runs Ghostscript, PSD, ...) is
# refused as 415 before any decoder runs. Multi-frame formats give their first frame.
# (JPEG also opens multi-picture MPO files; AVIF only where this Pillow build has it.)
Image.init()
INPUT_FORMATS = tuple(f for f in ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "AVIF", "HEIF")
                      if f in Image.OPEN)
# The pixel limit is ours (CUTOUT_MAX_PIXELS, checked on the header in `decode`), not Pillow's
# own bomb check, which would refuse with its own figure or let through up to 179 MP.
Image.MAX_IMAGE_PIXELS = None
# TIFF compressions every libtiff build decodes. Others (WebP, ZSTD, LZMA, SGI log, ... inside a
# TIFF) depend on how libtiff was built: refused as 415 before decoding, not a 400 "corrupt".
TIFF_CODECS = frozenset({"raw", "tiff_ccitt", "group3", "group4", "tiff_lzw", "tiff_jpeg",
                         "jpeg", "tiff_adobe_deflate", "tiff_deflate", "packbits"})
MEDIA_TYPES = {"png": "image/png", "webp": "image/webp", "jpeg": "image/jpeg",
               "zip": "application/zip"}
_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class Decoded:
    """An 8-bit sRGB image, orientation applied; `alpha` is the input's own transparency."""

    rgb: np.ndarray  # H x W x 3 uint8
    alpha: np.ndarray | None  # H x W uint8, None when the input is opaque
    source_format: str

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb.shape[1], self.rgb.shape[0]


def over_white(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray:
    """RGB for the models: a transparent input composited over white (integer maths)."""
    if alpha is None:
        return rgb
    a = alpha[..., None].astype(np.uint16)
    return ((rgb * a + 255 * (255 - a) + 127) // 255).astype(np.uint8)


# One fixed row filter instead of libpng's per-row trial of all five halves the PNG encode time
# of a 1500 px cutout for a file within 3 % of the size (docs/performance.md, "Decode and encode").
PNG_FILTERS = {
    "adaptive": cv2.IMWRITE_PNG_ALL_FILTERS,
    "none": cv2.IMWRITE_PNG_FILTER_NONE,
    "sub": cv2.IMWRITE_PNG_FILTER_SUB,
    "up": cv2.IMWRITE_PNG_FILTER_UP,
    "avg": cv2.IMWRITE_PNG_FILTER_AVG,
    "paeth": cv2.IMWRITE_PNG_FILTER_PAETH,
}


@dataclass(frozen=True)
class EncodeConfig:
    """Built from the settings (`PipelineConfig.encoding`), which hold the defaults."""

    png_compression: int
    jpeg_quality: int
    webp_quality: int
    webp_method: int
    webp_lossless: bool
    png_filter: str = "up"  # a key of PNG_FILTERS; others are for bench/png_encode.py


def decode(data: bytes, max_pixels: int) -> Decoded:
    if not data:
        raise EmptyInput("empty image: send the image bytes as the body or the form field")
    try:
        image = Image.open(io.BytesIO(data), formats=INPUT_FORMATS)
    except UnidentifiedImageError as exc:
        raise UnsupportedMediaType(
            "not an image in a supported format (" + ", ".join(INPUT_FORMATS) + ")") from exc
    except Exception as exc:  # any decoder failure on untrusted bytes is the input's fault
        raise UndecodableImage(f"cannot read the image header: {exc}") from exc
    with image:
        width, height = image.size
        if width <= 0 or height <= 0:
            raise UndecodableImage(f"image has no pixels ({width} x {height})")
        if width * height > max_pixels:
            raise PayloadTooLarge(
                f"image is {width} x {height} = {width * height / 1e6:.1f} MP, over the limit of "
                f"{max_pixels / 1e6:.1f} MP (CUTOUT_MAX_PIXELS; refused before decoding)")
        source_format = image.format or "unknown"
        _check_codec(image)
        try:
            image.load()
        except OSError as exc:
            if "not available" in str(exc):  # Pillow: "decoder <name> not available"
                raise UnsupportedMediaType(
                    f"{source_format} image whose codec cannot be decoded here: {exc}") from exc
            raise UndecodableImage(
                f"cannot decode the image (truncated or corrupt?): {exc}") from exc
        except Exception as exc:
            raise UndecodableImage(
                f"cannot decode the image (truncated or corrupt?): {exc}") from exc
        return _to_srgb(_oriented(image), source_format)


def _check_codec(image: Image.Image) -> None:
    """415 for a known container whose codec this build may not decode (see TIFF_CODECS)."""
    if image.format == "TIFF":
        compression = image.info.get("compression", "raw")
        if compression not in TIFF_CODECS:
            raise UnsupportedMediaType(
                f"TIFF image with {compression} compression, which is not supported; send it "
                f"as PNG, JPEG, WebP or a TIFF with LZW, Deflate, JPEG or no compression")


def check_frames(data: bytes, max_frames: int) -> None:
    """413 when an animated or multi-page input holds more than `max_frames` frames (only the
    first is used, but counting them bounds the work a file can ask for). Counting reads the
    frame headers, not the pixels. Anything unreadable is left for `decode` to report."""
    try:
        with Image.open(io.BytesIO(data), formats=INPUT_FORMATS) as image:
            frames = _count_frames(image, max_frames)
    except Exception:  # noqa: BLE001 - decode() gives the precise error
        return
    if frames > max_frames:
        raise PayloadTooLarge(f"image has more than {max_frames} frames (CUTOUT_MAX_FRAMES; "
                              "only the first frame is used)")


def _count_frames(image: Image.Image, cap: int) -> int:
    """Frames, counted up to cap + 1 at most: GIF and TIFF must walk their frames to count them
    (a 25 MB GIF of tiny frames holds a million), WebP / PNG / AVIF say it in their header."""
    if image.format not in ("GIF", "TIFF"):
        return int(getattr(image, "n_frames", 1))
    frames = 1
    try:
        while frames <= cap:
            if image.format == "GIF":
                image._seek(frames, False)  # type: ignore[attr-defined]  # skips the pixels
            else:
                image.seek(frames)  # a TIFF seek reads the next directory only
            frames += 1
    except EOFError:
        pass
    return frames


def _oriented(image: Image.Image) -> Image.Image:
    try:
        return ImageOps.exif_transpose(image)
    except Exception as exc:  # noqa: BLE001 - a malformed EXIF block must not fail the cutout
        log.debug("ignoring unreadable EXIF orientation: %s", exc)
        return image


def _to_srgb(image: Image.Image, source_format: str) -> Decoded:
    icc = image.info.get("icc_profile")
    image = _to_8bit(image)
    has_alpha = image.mode in ("RGBA", "LA", "PA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info)
    target = "RGBA" if has_alpha else "RGB"
    converted = _apply_icc(image, icc, target) if icc else None
    if converted is None:
        try:
            converted = image.convert(target)
        except (ValueError, OSError) as exc:
            raise UnsupportedMediaType(f"unsupported pixel mode {image.mode}") from exc
    pixels = np.asarray(converted)
    if target == "RGB":
        return Decoded(np.ascontiguousarray(pixels), None, source_format)
    alpha = np.ascontiguousarray(pixels[..., 3])
    rgb = np.ascontiguousarray(pixels[..., :3])
    return Decoded(rgb, None if alpha.min() == 255 else alpha, source_format)


def _to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and float greyscale to 8 bits by scaling, not clipping (Pillow clips)."""
    if image.mode in ("I", "F") or image.mode.startswith("I;16"):
        values = np.asarray(image).astype(np.float32)
        top = float(values.max()) if values.size else 0.0
        if image.mode == "F" and top <= 1.0:
            scale = 255.0
        elif top > 255.0:
            scale = 255.0 / 65535.0 if top <= 65535.0 else 255.0 / top
        else:
            scale = 1.0
        return Image.fromarray(np.clip(values * scale + 0.5, 0, 255).astype(np.uint8), "L")
    return image


def _apply_icc(image: Image.Image, icc: bytes, target: str) -> Image.Image | None:
    """Convert from the embedded profile to sRGB; None when the profile is sRGB or unusable."""
    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if "srgb" in ImageCms.getProfileDescription(source).lower().replace(" ", ""):
            return None
        mode = image.mode
        if mode in ("P", "PA", "1"):
            image = image.convert(target)
            mode = image.mode
        elif mode in ("LA", "La", "RGBa"):
            image = image.convert("RGBA")
            mode = "RGBA"
        if target == "RGBA" and mode not in ("RGBA",):
            return None
        return ImageCms.profileToProfile(image, source, _SRGB, outputMode=target)
    except (ImageCms.PyCMSError, OSError, ValueError) as exc:
        log.debug("ignoring unusable ICC profile: %s", exc)
        return None


def encode(pixels: np.ndarray, fmt: str, config: EncodeConfig,
           alpha: np.ndarray | None = None) -> bytes:
    """H x W (grey), H x W x 3 (RGB) or H x W x 4 (RGBA) uint8 -> file bytes.

    `zip` is remove.bg's: `color.jpg` (RGB) and `alpha.png` (the matte given as `alpha`).
    """
    if fmt == "png":
        return _cv2_encode(".png", pixels, [cv2.IMWRITE_PNG_COMPRESSION, config.png_compression,
                                            cv2.IMWRITE_PNG_FILTER, PNG_FILTERS[config.png_filter]])
    if fmt == "jpeg":
        if pixels.ndim == 3 and pixels.shape[2] == 4:
            raise ValueError("JPEG has no alpha: compose onto a background first")
        return _cv2_encode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, config.jpeg_quality])
    if fmt == "webp":
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, "WEBP", quality=config.webp_quality,
                                     method=config.webp_method, lossless=config.webp_lossless)
        return buffer.getvalue()
    if fmt == "zip":
        if alpha is None:
            raise ValueError("zip needs the alpha matte")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr("color.jpg", encode(pixels[..., :3], "jpeg", config))
            archive.writestr("alpha.png", encode(alpha, "png", config))
        return buffer.getvalue()
    raise ValueError(f"unknown format {fmt!r}")


def _cv2_encode(ext: str, pixels: np.ndarray, params: list[int]) -> bytes:
    if pixels.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4 else cv2.COLOR_RGB2BGR
        pixels = cv2.cvtColor(pixels, code)
    ok, buffer = cv2.imencode(ext, pixels, params)
    if not ok:
        raise RuntimeError(f"OpenCV failed to encode {ext}")
    return buffer.tobytes()
