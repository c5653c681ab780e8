"""Pure numpy/OpenCV building blocks of the synthetic data: backgrounds, objects, compositing
and image degradations. Images are float32 RGB in [0, 1], alphas float32 in [0, 1]; every random
choice comes from the ``np.random.Generator`` passed in, so a seed fixes the result."""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

Rng = np.random.Generator


# --------------------------------------------------------------------------- colours

def random_colour(rng: Rng, kind: str = "any") -> np.ndarray:
    """An RGB colour: 'white', 'grey' (light grey), 'pastel', 'dark' or 'any'."""
    if kind == "white":
        return np.full(3, rng.uniform(0.92, 1.0), np.float32) - rng.uniform(0, 0.02, 3).astype(
            np.float32
        )
    if kind == "grey":
        return np.full(3, rng.uniform(0.72, 0.92), np.float32) + rng.uniform(
            -0.015, 0.015, 3
        ).astype(np.float32)
    hsv = np.array([[[rng.uniform(0, 360), 0.0, 0.0]]], np.float32)
    if kind == "pastel":
        hsv[..., 1], hsv[..., 2] = rng.uniform(0.08, 0.35), rng.uniform(0.8, 1.0)
    elif kind == "dark":
        hsv[..., 1], hsv[..., 2] = rng.uniform(0.0, 0.5), rng.uniform(0.05, 0.3)
    else:
        hsv[..., 1], hsv[..., 2] = rng.uniform(0.0, 1.0), rng.uniform(0.15, 1.0)
    return np.clip(cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)[0, 0], 0, 1)


def _studio_colour(rng: Rng) -> np.ndarray:
    kind = rng.choice(["white", "grey", "pastel", "any", "dark"], p=[0.38, 0.25, 0.2, 0.1, 0.07])
    return random_colour(rng, str(kind))


# --------------------------------------------------------------------------- backgrounds

def studio_background(rng: Rng, h: int, w: int) -> tuple[np.ndarray, float]:
    """Plain studio backdrop: flat, gradient, vignette or wall-to-floor sweep.

    Returns the image and the floor line (row fraction where a 'floor' would start; objects
    standing on it get contact shadows and reflections)."""
    c1 = _studio_colour(rng)
    style = rng.choice(["flat", "linear", "radial", "sweep"], p=[0.35, 0.25, 0.2, 0.2])
    floor = float(rng.uniform(0.55, 0.9))
    if style == "flat":
        return np.broadcast_to(c1, (h, w, 3)).astype(np.float32).copy(), floor
    delta = rng.uniform(-0.18, 0.18, 3 if rng.random() < 0.3 else 1).astype(np.float32)
    c2 = np.clip(c1 + delta, 0, 1)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    yy /= max(h - 1, 1)
    xx /= max(w - 1, 1)
    if style == "linear":
        angle = rng.uniform(0, 2 * np.pi)
        t = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) + 0.5
    elif style == "radial":
        cx, cy = rng.uniform(0.3, 0.7, 2)
        t = np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2) / rng.uniform(0.5, 1.0)
    else:  # sweep: wall colour above, floor colour below, soft curve between
        softness = rng.uniform(0.03, 0.2)
        t = 1.0 / (1.0 + np.exp(-(yy - floor) / softness))
    t = np.clip(t, 0, 1)[..., None]
    return (c1 * (1 - t) + c2 * t).astype(np.float32), floor


def own_tone_backdrop(rng: Rng, rgb: np.ndarray, alpha: np.ndarray, h: int, w: int) -> np.ndarray:
    """A backdrop painted in the object's own colours, its palest most often: a top-to-bottom
    gradient between two of the object's pixels with a little low-frequency mottle. A white
    sneaker before a white sky is where the segmenter drops the object's pale parts; colour alone
    must not decide what is background."""
    pixels = rgb[alpha > 0.5] if (alpha > 0.5).sum() >= 16 else rgb.reshape(-1, 3)
    if rng.random() < 0.6:
        luminance = pixels.mean(axis=1)
        pixels = pixels[luminance >= np.quantile(luminance, 0.7)]
    top, bottom = (np.clip(pixels[int(rng.integers(len(pixels)))] + rng.normal(0, 0.03, 3), 0, 1)
                   for _ in range(2))
    t = (np.linspace(0.0, 1.0, h, dtype=np.float32) ** rng.uniform(0.5, 2.0))[:, None, None]
    backdrop = np.broadcast_to(top * (1 - t) + bottom * t, (h, w, 3)).astype(np.float32)
    noise = rng.normal(0, 1, (max(2, h // 32), max(2, w // 32), 3)).astype(np.float32)
    mottle = cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(backdrop + rng.uniform(0.0, 0.03) * mottle, 0, 1)


def synthetic_clutter(rng: Rng, h: int, w: int) -> np.ndarray:
    """A busy background made of shapes, stripes and textures, for when no photos are installed."""
    small_h, small_w = max(8, h // 2), max(8, w // 2)
    img = np.empty((small_h, small_w, 3), np.float32)
    img[:] = random_colour(rng)
    for _ in range(int(rng.integers(8, 30))):
        colour = tuple(float(c) for c in random_colour(rng))
        kind = rng.integers(0, 4)
        x, y = int(rng.integers(0, small_w)), int(rng.integers(0, small_h))
        size = int(rng.integers(4, max(5, max(small_h, small_w) // 2)))
        if kind == 0:
            cv2.rectangle(img, (x, y), (x + size, y + int(rng.integers(4, size + 5))), colour, -1)
        elif kind == 1:
            cv2.ellipse(
                img,
                (x, y),
                (size, int(rng.integers(2, size + 3))),
                float(rng.uniform(0, 180)),
                0,
                360,
                colour,
                -1,
                cv2.LINE_AA,
            )
        elif kind == 2:
            cv2.line(
                img,
                (x, y),
                (int(rng.integers(0, small_w)), int(rng.integers(0, small_h))),
                colour,
                int(rng.integers(1, 6)),
                cv2.LINE_AA,
            )
        else:
            pts = rng.integers(0, [small_w, small_h], size=(int(rng.integers(3, 7)), 2)).astype(
                np.int32
            )
            cv2.fillPoly(img, [pts], colour, cv2.LINE_AA)
    noise = rng.normal(0, 1, (max(2, small_h // 16), max(2, small_w // 16), 3)).astype(np.float32)
    img += 0.08 * cv2.resize(noise, (small_w, small_h), interpolation=cv2.INTER_CUBIC)
    if rng.random() < 0.5:
        img = cv2.GaussianBlur(img, (0, 0), float(rng.uniform(0.5, 4)))
    return np.clip(cv2.resize(img, (w, h), interpolation=cv2.INTER_LINEAR), 0, 1)


def photo_view(rng: Rng, photo: np.ndarray, h: int, w: int) -> np.ndarray:
    """A random crop of a background photo (uint8 or float) resized to h x w, float32 [0,1]."""
    ph, pw = photo.shape[:2]
    scale = rng.uniform(0.35, 1.0)
    ch = cw = 0
    target = w / h
    cw = int(min(pw, ph * target) * scale)
    ch = int(cw / target)
    cw, ch = max(cw, 8), max(min(ch, ph), 8)
    x0 = int(rng.integers(0, max(1, pw - cw + 1)))
    y0 = int(rng.integers(0, max(1, ph - ch + 1)))
    crop = photo[y0:y0 + ch, x0:x0 + cw]
    interp = cv2.INTER_AREA if cw > w else cv2.INTER_LINEAR
    out = cv2.resize(crop, (w, h), interpolation=interp)
    if out.dtype == np.uint8:
        out = out.astype(np.float32) / 255.0
    if rng.random() < 0.5:
        out = out[:, ::-1]
    if rng.random() < 0.35:  # depth of field
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(1, 6)))
    return np.ascontiguousarray(out, dtype=np.float32)


# --------------------------------------------------------------------------- objects

def procedural_object(rng: Rng, size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """A textured blob with anti-aliased edges and, sometimes, thin hair-like strands.

    Used when no true-alpha foreground library is installed, and as a small share otherwise
    (fine structures with fractional alpha)."""
    ss = 4
    big = size * ss
    alpha = np.zeros((big, big), np.float32)
    centre = np.array([big / 2, big / 2])
    n = int(rng.integers(5, 14))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = rng.uniform(0.18, 0.42, n) * big
    pts = (centre + np.stack([np.cos(angles) * radii, np.sin(angles) * radii], 1)).astype(np.int32)
    if rng.random() < 0.4:
        cv2.ellipse(alpha, (big // 2, big // 2), (int(radii.max()), int(radii.min())),
                    float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    else:
        cv2.fillPoly(alpha, [pts], 1.0)
    if rng.random() < 0.5:
        for _ in range(int(rng.integers(10, 80))):
            start = centre + rng.normal(0, big * 0.12, 2)
            direction = rng.uniform(0, 2 * np.pi)
            length = rng.uniform(0.1, 0.45) * big
            bend = rng.normal(0, 0.6)
            line = [start]
            for t in np.linspace(0, 1, 8)[1:]:
                a = direction + bend * t
                line.append(start + length * t * np.array([np.cos(a), np.sin(a)]))
            cv2.polylines(alpha, [np.array(line, np.int32)], False, float(rng.uniform(0.5, 1.0)),
                          int(rng.integers(1, 4)))
    alpha = cv2.resize(alpha, (size, size), interpolation=cv2.INTER_AREA)
    base = random_colour(rng)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    shade = (1.0 - 0.5 * np.clip(np.sqrt((xx - 0.4) ** 2 + (yy - 0.35) ** 2), 0, 1))[..., None]
    noise = cv2.resize(rng.normal(0, 1, (16, 16, 3)).astype(np.float32), (size, size))
    rgb = np.clip(base * shade + 0.06 * noise, 0, 1).astype(np.float32)
    return rgb, np.clip(alpha, 0, 1)


def colour_jitter(rng: Rng, rgb: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Brightness, contrast, saturation, hue and gamma changes (float RGB in [0,1])."""
    out = rgb
    if rng.random() < 0.8:
        b = rng.uniform(-0.12, 0.12) * strength
        c = 1 + rng.uniform(-0.25, 0.25) * strength
        out = (out - 0.5) * c + 0.5 + b
    if rng.random() < 0.6:
        out = np.clip(out, 0, 1)
        hsv = cv2.cvtColor(out.astype(np.float32), cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + rng.uniform(-18, 18) * strength) % 360
        hsv[..., 1] *= 1 + rng.uniform(-0.35, 0.35) * strength
        out = cv2.cvtColor(np.clip(hsv, 0, [360, 1, 1]).astype(np.float32), cv2.COLOR_HSV2RGB)
    if rng.random() < 0.3:
        out = np.clip(out, 0, 1) ** rng.uniform(0.75, 1.35)
    return np.clip(out, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------- compositing

def resize_rgba(
    rgb: np.ndarray, alpha: np.ndarray, w: int, h: int
) -> tuple[np.ndarray, np.ndarray]:
    """Resize a foreground in premultiplied space (no dark or coloured fringes)."""
    w, h = max(1, w), max(1, h)
    interp = cv2.INTER_AREA if w < alpha.shape[1] else cv2.INTER_LINEAR
    pre = np.dstack([rgb * alpha[..., None], alpha]).astype(np.float32)
    out = cv2.resize(pre, (w, h), interpolation=interp)
    if out.ndim == 2:
        out = out[None, None] if out.size == 1 else out[..., None]
    a = np.clip(out[..., 3], 0, 1)
    colour = out[..., :3] / np.maximum(a[..., None], 1e-4)
    return np.clip(colour, 0, 1).astype(np.float32), a.astype(np.float32)


@dataclass
class Layer:
    """A placed object on the canvas: premultiplied colour and alpha, both canvas-sized."""

    pre: np.ndarray  # [H,W,3] alpha * colour
    alpha: np.ndarray  # [H,W]
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 of the visible part


def place(rgb: np.ndarray, alpha: np.ndarray, canvas_hw: tuple[int, int], x: int, y: int) -> Layer:
    """Put an already-resized object with its top-left corner at (x, y), clipped to the canvas."""
    H, W = canvas_hw
    h, w = alpha.shape
    pre = np.zeros((H, W, 3), np.float32)
    a = np.zeros((H, W), np.float32)
    x0, y0, x1, y1 = max(0, x), max(0, y), min(W, x + w), min(H, y + h)
    if x1 > x0 and y1 > y0:
        sub_a = alpha[y0 - y:y1 - y, x0 - x:x1 - x]
        a[y0:y1, x0:x1] = sub_a
        pre[y0:y1, x0:x1] = rgb[y0 - y:y1 - y, x0 - x:x1 - x] * sub_a[..., None]
    return Layer(pre, a, (x0, y0, x1, y1))


def over(layers: list[Layer], hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Stack layers back to front; return (foreground colour [H,W,3], alpha [H,W]) such that the
    stack over any background B equals alpha * fg + (1 - alpha) * B."""
    pre = np.zeros((*hw, 3), np.float32)
    acc = np.zeros(hw, np.float32)
    for layer in layers:
        keep = 1.0 - layer.alpha
        pre = layer.pre + keep[..., None] * pre
        acc = layer.alpha + keep * acc
    fg = pre / np.maximum(acc[..., None], 1e-4)
    return np.clip(fg, 0, 1), np.clip(acc, 0, 1)


def box_of(alpha: np.ndarray) -> tuple[int, int, int, int]:
    """x0, y0, x1, y1 of the pixels with any alpha (all zeros: an empty box)."""
    ys, xs = np.nonzero(alpha > 0)
    if len(ys) == 0:
        return 0, 0, 0, 0
    return int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1


def add_shadow(rng: Rng, bg: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int],
               strength: tuple[float, float] = (0.15, 0.6)) -> np.ndarray:
    """Darken the background under an object (its canvas-sized alpha and box): a soft contact
    shadow at its base (squashed alpha) or a cast drop shadow (offset, blurred alpha). Shadows
    belong to the background; `strength` bounds how much light they take."""
    H, W = alpha.shape
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return bg
    shadow = np.zeros((H, W), np.float32)
    obj_h = y1 - y0
    if rng.random() < 0.6:  # contact shadow: alpha squashed to a thin ellipse at the base
        squash = rng.uniform(0.06, 0.25)
        sh = max(2, int(obj_h * squash))
        foot = cv2.resize(alpha[y0:y1, x0:x1], (x1 - x0, sh), interpolation=cv2.INTER_AREA)
        top = min(H - 1, y1 - sh // 2)
        bottom = min(H, top + sh)
        shadow[top:bottom, x0:x1] = np.maximum(shadow[top:bottom, x0:x1], foot[:bottom - top])
        blur = max(1.0, obj_h * rng.uniform(0.02, 0.08))
    else:  # drop shadow
        dx, dy = (rng.uniform(-0.08, 0.08, 2) * obj_h).astype(int)
        m = np.float32([[1, 0, dx], [0, 1, abs(dy)]])
        shadow = cv2.warpAffine(alpha, m, (W, H))
        blur = max(1.0, obj_h * rng.uniform(0.01, 0.06))
    shadow = cv2.GaussianBlur(shadow, (0, 0), blur)
    dark = rng.uniform(*strength)
    return (bg * (1 - dark * shadow[..., None])).astype(np.float32)


def scene_shadow(rng: Rng, bg: np.ndarray, alpha: np.ndarray, box: tuple[int, int, int, int],
                 strength: tuple[float, float]) -> np.ndarray:
    """Darken the background around an object lying in a real scene, photographed from any
    side (`add_shadow` is a studio's light from above): a dark rim hugging its outline where
    it meets the floor (ambient occlusion: the alpha blurred a little, nudged off centre), or its
    silhouette cast in any direction, up to a fifth of its size away, softer the farther it
    falls. The shoes on floors keep exactly these as part of the object."""
    H, W = alpha.shape
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        return bg
    size = ((x1 - x0) + (y1 - y0)) / 2
    angle = rng.uniform(0, 2 * np.pi)
    if rng.random() < 0.5:  # occlusion rim
        reach, blur = rng.uniform(0.01, 0.05), rng.uniform(0.02, 0.06)
    else:  # cast silhouette
        reach, blur = rng.uniform(0.04, 0.2), rng.uniform(0.01, 0.03)
        blur += 0.3 * reach  # a penumbra widens with the distance
    dx, dy = reach * size * np.cos(angle), reach * size * np.sin(angle)
    moved = cv2.warpAffine(alpha.astype(np.float32), np.float32([[1, 0, dx], [0, 1, dy]]), (W, H))
    shadow = cv2.GaussianBlur(np.maximum(moved, alpha), (0, 0), max(1.0, blur * size))
    dark = rng.uniform(*strength)
    return (bg * (1 - dark * np.clip(shadow, 0, 1)[..., None])).astype(np.float32)


def add_reflection(rng: Rng, bg: np.ndarray, layer: Layer) -> np.ndarray:
    """A faded mirror image of the object below its base (glossy studio floor)."""
    H = layer.alpha.shape[0]
    x0, y0, x1, y1 = layer.box
    if x1 <= x0 or y1 <= y0 or y1 >= H - 2:
        return bg
    length = min(H - y1, y1 - y0)
    pre = layer.pre[y1 - length:y1, x0:x1][::-1]
    a = layer.alpha[y1 - length:y1, x0:x1][::-1]
    fade = np.linspace(rng.uniform(0.15, 0.45), 0.0, length, dtype=np.float32)[
        :, None
    ] ** rng.uniform(1, 2)
    a = a * fade
    region = bg[y1:y1 + length, x0:x1]
    colour = pre / np.maximum(layer.alpha[y1 - length:y1, x0:x1][::-1, :, None], 1e-4)
    out = bg.copy()
    out[y1:y1 + length, x0:x1] = region * (1 - a[..., None]) + colour * a[..., None]
    if rng.random() < 0.5:
        out[y1:y1 + length, x0:x1] = cv2.GaussianBlur(out[y1:y1 + length, x0:x1], (0, 0), 1.2)
    return out


def spread_colours(fg: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Fill fg where alpha == 0 with nearby foreground colours (blurred premultiplied colour over
    blurred alpha), leaving every pixel with alpha > 0 untouched."""
    empty = alpha <= 0
    if not empty.any() or empty.all():
        return fg
    pre = fg * alpha[..., None]
    out = fg.copy()
    for sigma in (4.0, 16.0):
        num = cv2.GaussianBlur(pre, (0, 0), sigma)
        den = cv2.GaussianBlur(alpha, (0, 0), sigma)[..., None]
        fill = empty & (den[..., 0] > 1e-3)
        out[fill] = (num / np.maximum(den, 1e-3))[fill]
        empty = empty & ~fill
        if not empty.any():
            break
    if empty.any():
        out[empty] = (pre.sum((0, 1)) / max(float(alpha.sum()), 1e-3))
    return np.clip(out, 0, 1).astype(np.float32)


# --------------------------------------------------------------------------- degradations

def degrade(rng: Rng, img: np.ndarray, strength: float = 1.0) -> np.ndarray:
    """Camera and pipeline artefacts on a float RGB image: blur, resampling, noise, JPEG."""
    h, w = img.shape[:2]
    out = img
    if rng.random() < 0.2 * strength:
        out = cv2.GaussianBlur(out, (0, 0), float(rng.uniform(0.3, 1.5)))
    if rng.random() < 0.3 * strength:  # resizing artefacts: down then up with a random kernel
        f = rng.uniform(0.4, 0.85)
        small = cv2.resize(
            out,
            (max(8, int(w * f)), max(8, int(h * f))),
            interpolation=int(rng.choice([cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_NEAREST])),
        )
        out = cv2.resize(
            small, (w, h), interpolation=int(rng.choice([cv2.INTER_LINEAR, cv2.INTER_CUBIC]))
        )
    if rng.random() < 0.3 * strength:
        out = out + rng.normal(0, rng.uniform(0.005, 0.04), out.shape).astype(np.float32)
    out = np.clip(out, 0, 1)
    if rng.random() < 0.5 * strength:
        out = jpeg(out, int(rng.integers(30, 96)))
    return out.astype(np.float32)


def jpeg(img: np.ndarray, quality: int) -> np.ndarray:
    u8 = (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
    ok, buf = cv2.imencode(".jpg", u8[..., ::-1], [cv2.IMWRITE_JPEG_QUALITY, quality])
    assert ok
    return cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255.0


def letterbox(rng: Rng | None, img: np.ndarray, mask: np.ndarray, size: int,
              fill: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Resize so the long side is ``size`` and pad to size x size (position random when rng is
    given, centred otherwise). Padding is the ImageNet mean colour unless ``fill`` is given."""
    h, w = mask.shape
    s = size / max(h, w)
    nw, nh = max(1, round(w * s)), max(1, round(h * s))
    interp = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
    img = cv2.resize(img, (nw, nh), interpolation=interp)
    mask = cv2.resize(mask, (nw, nh), interpolation=interp)
    out = np.empty((size, size, 3), np.float32)
    out[:] = IMAGENET_MEAN if fill is None else fill
    out_m = np.zeros((size, size), np.float32)
    x = int(rng.integers(0, size - nw + 1)) if rng is not None else (size - nw) // 2
    y = int(rng.integers(0, size - nh + 1)) if rng is not None else (size - nh) // 2
    out[y:y + nh, x:x + nw] = img
    out_m[y:y + nh, x:x + nw] = mask
    return out, out_m


IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def normalise(img: np.ndarray) -> np.ndarray:
    """[H,W,3] float RGB in [0,1] -> [3,H,W] ImageNet-normalised."""
    return np.ascontiguousarray(
        ((img - IMAGENET_MEAN) / IMAGENET_STD).transpose(2, 0, 1), dtype=np.float32
    )
