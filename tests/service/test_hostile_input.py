"""Hostile and odd inputs through real HTTP: each is answered with a cutout (200) or a clear 4xx
JSON error; afterwards a normal image still gets a good cutout, no worker has died and no
temporary file is left behind."""
from __future__ import annotations

import io
import random
import socket
import tempfile

import numpy as np
import pytest
from PIL import Image

from service.config import Settings
from support.service import (
    RED,
    colour_server_settings,
    decode,
    disc_image,
    encoded,
    heic_with_claimed_size,
    png_with_claimed_size,
    serving,
    tiff_with_compression,
)

MAX_BODY = 2 * 1024 * 1024
MAX_FRAMES = 10


@pytest.fixture(scope="module")
def spool_dir(tmp_path_factory):
    """Temporary files made while serving (multipart spooling) would land here."""
    folder = tmp_path_factory.mktemp("spool")
    previous, tempfile.tempdir = tempfile.tempdir, str(folder)
    yield folder
    tempfile.tempdir = previous


@pytest.fixture(scope="module")
def server(random_model_dir, tmp_path_factory, spool_dir):
    settings = Settings(**colour_server_settings(
        random_model_dir, tmp_path_factory.mktemp("seg"), max_body_bytes=MAX_BODY,
        max_pixels=20_000_000, max_frames=MAX_FRAMES))
    with serving(settings) as live:
        live.first_pids = live.pool.worker_pids()  # type: ignore[attr-defined]
        # What is there once the server runs (multiprocessing's own folder for the forkserver's
        # socket, when it started here); requests must add nothing.
        live.spool_before = set(spool_dir.iterdir())  # type: ignore[attr-defined]
        yield live


# ---- inputs ------------------------------------------------------------------------------------
def two_frames(fmt: str, count: int = 2) -> bytes:
    """Frame 0: red disc on the left; the others: red discs on the right (first frame wins;
    each frame differs, or the GIF writer merges them)."""
    first = disc_image(120, 80, centre=(30, 40), radius=20)
    rest = [disc_image(120, 80, centre=(90, 40), radius=10 + i % 12) for i in range(count - 1)]
    buffer = io.BytesIO()
    params = {"duration": 100, "loop": 0} if fmt in ("GIF", "WEBP") else {}
    first.save(buffer, fmt, save_all=True, append_images=rest, **params)
    return buffer.getvalue()


def half_transparent(mode: str) -> bytes:
    """The disc image with its left half already transparent, in mode LA / RGBA / P+tRNS."""
    image = disc_image(120, 80, radius=30)
    pixels = np.asarray(image.convert("RGBA")).copy()
    pixels[:, :60, 3] = 0
    rgba = Image.fromarray(pixels)
    if mode == "LA":
        return encoded(rgba.convert("LA"))
    if mode == "P":  # 0 white, 1 red, 2 the transparent slot
        index = np.where(np.asarray(image)[..., 1] < 100, 1, 0).astype(np.uint8)
        index[:, :60] = 2
        out = Image.frombytes("P", image.size, index.tobytes())
        out.putpalette([255, 255, 255, *RED, 0, 0, 0])
        return encoded(out, transparency=2)
    return encoded(rgba)


def gif_js_polyglot() -> bytes:
    """A valid GIF that is also JavaScript: `GIF89a/*<gif>*/=1;alert(1)` (width reads "/*")."""
    data = bytearray(encoded(disc_image(8, 8), "GIF"))
    data[6:8] = b"/*"  # logical screen width 0x2a2f = 10799 (frame stays 8 x 8)
    return bytes(data) + b"*/=1;alert(document.domain);//"


def bit_flipped_jpeg() -> bytes:
    data = bytearray(encoded(disc_image(160, 120), "JPEG", quality=90))
    rng = random.Random(5)
    for _ in range(60):
        data[rng.randrange(200, len(data))] ^= 0xFF
    return bytes(data)


PHOTO = encoded(disc_image(160, 120), "JPEG", quality=95)
SIXTEEN_BIT = encoded(Image.fromarray(
    np.asarray(disc_image(96, 64).convert("L")).astype(np.uint16) * 257), "PNG")
SVG = (b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" width="100" height="100">'
       b'<script>alert(1)</script><rect width="100" height="100" fill="red"/></svg>')
HTML = b"<!doctype html><html><body><img src=x onerror=alert(1)></body></html>"
HEIC_HEADER_ONLY = b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + b"\x00" * 200
HEIC = encoded(disc_image(96, 64), "HEIF", quality=90)  # libheif's encoder (pillow-heif)

# name -> (body, expected status, expected code or None); bodies are raw /v1/cutout uploads.
CASES = {
    "empty": (b"", 400, "empty_input"),
    "truncated_jpeg": (PHOTO[: len(PHOTO) // 2], 400, "undecodable_image"),
    "bomb_header_60000": (png_with_claimed_size(60000, 60000), 413, "payload_too_large"),
    "bomb_header_over_max_pixels": (png_with_claimed_size(6000, 6000), 413, "payload_too_large"),
    "one_pixel": (encoded(Image.new("RGB", (1, 1), RED)), 200, None),
    "one_by_5000": (encoded(disc_image(1, 5000)), 200, None),
    "5000_by_one": (encoded(disc_image(5000, 1), "JPEG"), 200, None),
    "cmyk_jpeg": (encoded(disc_image(96, 64).convert("CMYK"), "JPEG"), 200, None),
    "16_bit_png": (SIXTEEN_BIT, 200, None),
    "grey_jpeg": (encoded(disc_image(96, 64).convert("L"), "JPEG"), 200, None),
    "webp": (encoded(disc_image(96, 64), "WEBP"), 200, None),
    "bmp": (encoded(disc_image(96, 64), "BMP"), 200, None),
    "avif": (encoded(disc_image(96, 64), "AVIF"), 200, None),
    "heic": (HEIC, 200, None),
    "heic_header_only": (HEIC_HEADER_ONLY, 415, "unsupported_media_type"),
    "truncated_heic": (HEIC[: len(HEIC) // 2], 400, "undecodable_image"),
    "heic_header_60000": (heic_with_claimed_size(60000, 60000), 413, "payload_too_large"),
    "heic_header_over_max_pixels": (heic_with_claimed_size(6000, 6000), 413,
                                    "payload_too_large"),
    "heic_header_lies_small": (heic_with_claimed_size(640, 480), 400, "undecodable_image"),
    "svg": (SVG, 415, "unsupported_media_type"),
    "html": (HTML, 415, "unsupported_media_type"),
    "pdf": (b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n", 415, "unsupported_media_type"),
    "random_bytes": (random.Random(1).randbytes(8192), 415, "unsupported_media_type"),
    "too_many_frames": (two_frames("GIF", MAX_FRAMES + 2), 413, "payload_too_large"),
    "tiff_with_webp_codec": (tiff_with_compression(50001), 415, "unsupported_media_type"),
}
# Every 413 names the setting whose limit it is.
LIMITS = {"bomb_header_60000": "CUTOUT_MAX_PIXELS",
          "bomb_header_over_max_pixels": "CUTOUT_MAX_PIXELS",
          "heic_header_60000": "CUTOUT_MAX_PIXELS",
          "heic_header_over_max_pixels": "CUTOUT_MAX_PIXELS",
          "too_many_frames": "CUTOUT_MAX_FRAMES"}


def assert_error(response, status: int, code: str | None) -> None:
    assert response.status_code == status, response.text[:300]
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    if code:
        assert body["code"] == code, body


@pytest.mark.parametrize("name", list(CASES))
def test_raw_body_cases(client, name):
    data, status, code = CASES[name]
    response = client.post("/v1/cutout", content=data,
                           headers={"Content-Type": "application/octet-stream"})
    assert response.headers["x-content-type-options"] == "nosniff"
    if status != 200:
        assert_error(response, status, code)
        if status == 413:
            assert LIMITS[name] in response.json()["error"], response.json()
        return
    assert response.status_code == 200, response.text[:300]
    image = decode(response.content)
    assert image.mode == "RGBA" and image.size == Image.open(io.BytesIO(data)).size


def test_bit_flipped_jpeg_is_a_cutout_or_400(client):
    response = client.post("/v1/cutout", content=bit_flipped_jpeg())
    if response.status_code != 200:  # libjpeg may recover what it can
        assert_error(response, 400, "undecodable_image")


@pytest.mark.parametrize("fmt", ["GIF", "WEBP", "TIFF"])
def test_animated_and_multi_page_give_the_first_frame(client, fmt):
    response = client.post("/v1/cutout", content=two_frames(fmt, 3), params={"output": "alpha"})
    assert response.status_code == 200, response.text
    alpha = np.asarray(decode(response.content))
    assert alpha.shape == (80, 120)
    assert alpha[40, 30] >= 250 and alpha[40, 90] <= 5  # frame 0's disc, not the others'


@pytest.mark.parametrize("mode", ["LA", "RGBA", "P"])
def test_existing_transparency_is_kept(client, mode):
    response = client.post("/v1/cutout", content=half_transparent(mode))
    assert response.status_code == 200, response.text
    out = np.asarray(decode(response.content))
    assert out.shape == (80, 120, 4)
    assert (out[:, :60, 3] == 0).all()  # transparent in the input stays transparent
    if mode != "LA":  # grey + alpha loses the red the colour segmenter looks for
        assert out[40, 75, 3] == 255  # the visible part of the disc is kept


def test_gif_js_polyglot_is_only_ever_an_image(client):
    response = client.post("/v1/cutout", content=gif_js_polyglot(),
                           headers={"Content-Type": "application/javascript"})
    assert response.headers["x-content-type-options"] == "nosniff"
    if response.status_code == 200:  # a valid GIF: answered as a PNG, the script is not echoed
        assert response.headers["content-type"] == "image/png"
        assert b"alert" not in response.content
        assert decode(response.content).size == (10799, 8)
    else:
        assert_error(response, response.status_code, None)
        assert 400 <= response.status_code < 500


def test_wrong_content_types(client):
    # The bytes decide, not the label: a JPEG labelled text/plain or JSON is still a JPEG.
    for label in ("text/plain", "application/json", "image/png", "image/svg+xml"):
        response = client.post("/v1/cutout", content=PHOTO, headers={"Content-Type": label})
        assert response.status_code == 200, (label, response.text)
    # Labelled multipart but not multipart: 400, not a 500.
    response = client.post("/v1/cutout", content=PHOTO,
                           headers={"Content-Type": "multipart/form-data; boundary=xyz"})
    assert 400 <= response.status_code < 500 and response.json()["error"]
    # remove.bg with a JSON label on a JPEG body: bad JSON is a 400 in its error shape.
    response = client.post("/v1.0/removebg", content=PHOTO,
                           headers={"Content-Type": "application/json"})
    assert response.status_code == 400 and response.json()["errors"][0]["title"]


def test_multipart_without_the_field(client):
    response = client.post("/v1/cutout", files={"photo": ("p.jpg", PHOTO, "image/jpeg")})
    assert_error(response, 400, "missing_image")
    response = client.post("/v1.0/removebg", files={"photo": ("p.jpg", PHOTO, "image/jpeg")})
    assert response.status_code == 400 and response.json()["errors"][0]["title"]


@pytest.mark.parametrize("params", [{"output": "x-ray"}, {"format": "tiff"},
                                    {"bg_color": "#12"}, {"crop_margin": "-5px"},
                                    {"max_megapixels": "nan"}, {"crop": "2"}])
def test_bad_option_values(client, params):
    response = client.post("/v1/cutout", content=PHOTO, params=params)
    assert_error(response, 422, "invalid_options")


def test_oversized_body_refused_without_reading_it(server):
    """Headers announce 1 GB and no body byte is sent: the 413 comes back at once."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(b"POST /v1/cutout HTTP/1.1\r\nHost: test\r\n"
                     b"Content-Type: image/jpeg\r\nContent-Length: 1000000000\r\n\r\n")
        answer = b""
        while b"\r\n\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"payload_too_large" in answer or b"content-length" in answer.lower()


def test_oversized_multipart_and_chunked_bodies(server, client, spool_dir):
    big = random.Random(2).randbytes(MAX_BODY + 1024)
    response = client.post("/v1/cutout", files={"image": ("big.jpg", big, "image/jpeg")})
    assert_error(response, 413, "payload_too_large")
    assert "CUTOUT_MAX_BODY_BYTES" in response.json()["error"]

    def chunks():
        for start in range(0, len(big), 65536):
            yield big[start:start + 65536]

    response = client.post("/v1/cutout", content=chunks())
    assert_error(response, 413, "payload_too_large")
    # A large multipart upload under the limit is spooled to a temporary file: gone afterwards.
    upload = encoded(Image.fromarray(
        np.random.default_rng(0).integers(0, 255, (700, 700, 3), dtype=np.uint8)), "PNG")
    assert 1024 * 1024 < len(upload) < MAX_BODY
    response = client.post("/v1/cutout", files={"image": ("noise.png", upload, "image/png")},
                           data={"output": "mask"})
    assert response.status_code == 200, response.text
    assert set(spool_dir.iterdir()) == server.spool_before


def test_after_the_battery_a_normal_image_still_gets_a_good_cutout(server, client, spool_dir):
    # Runs last in this module (pytest keeps file order).
    response = client.post("/v1/cutout", content=encoded(disc_image(320, 240), "JPEG",
                                                          quality=95))
    assert response.status_code == 200, response.text
    pixels = np.asarray(decode(response.content))
    assert pixels.shape == (240, 320, 4)
    assert pixels[120, 160, 3] == 255 and pixels[5, 5, 3] == 0
    assert np.abs(pixels[120, 160, :3].astype(int) - RED).max() <= 8
    assert server.pool.worker_pids() == server.first_pids  # no worker died or was replaced
    assert all(w["restarts"] == 0 and w["state"] == "ready" for w in server.pool.status())
    assert set(spool_dir.iterdir()) == server.spool_before
