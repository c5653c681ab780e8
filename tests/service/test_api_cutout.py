"""POST /v1/cutout and POST /v1.0/removebg through real HTTP: a uvicorn server on 127.0.0.1,
spawned workers with real ONNX Runtime sessions (random AlphaNet weights from the fixture, and a
colour-threshold segmenter plugged in so images have an object, a trimap band and matting)."""
from __future__ import annotations

import base64
import io
import zipfile

import numpy as np
import pytest
from PIL import Image, ImageOps

from service.config import Settings
from support.service import (
    RED,
    colour_server_settings,
    decode,
    disc_image,
    encoded,
    png_with_claimed_size,
    serving,
)

MAX_BODY = 3 * 1024 * 1024


@pytest.fixture(scope="module")
def server(random_model_dir, tmp_path_factory):
    settings = Settings(**colour_server_settings(
        random_model_dir, tmp_path_factory.mktemp("seg"), max_body_bytes=MAX_BODY,
        max_pixels=20_000_000))
    with serving(settings) as live:
        yield live


@pytest.fixture(scope="module")
def photo() -> bytes:
    """320 x 240 JPEG, red disc of radius 60 centred at (160, 120)."""
    return encoded(disc_image(320, 240), "JPEG", quality=95)


def post(client, data: bytes, **params):
    return client.post("/v1/cutout", content=data, params=params,
                       headers={"Content-Type": "image/jpeg"})


# ---- outputs ---------------------------------------------------------------------------------
def test_rgba_png_default_is_the_cutout_at_full_size(client, photo):
    response = post(client, photo)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    image = decode(response.content)
    assert image.mode == "RGBA" and image.size == (320, 240)
    pixels = np.asarray(image)
    assert pixels[120, 160, 3] == 255 and pixels[5, 5, 3] == 0  # object kept, background gone
    assert np.abs(pixels[120, 160, :3].astype(int) - RED).max() <= 8
    assert (pixels[pixels[..., 3] == 0][:, :3] == 0).all()  # invisible colour zeroed
    # Per-stage Server-Timing and the model version.
    timing = response.headers["server-timing"]
    for stage in ("queue", "decode", "segment", "trimap", "matting", "upscale", "encode", "total"):
        assert f"{stage};dur=" in timing
    assert response.headers["x-model-version"] == "test-random"
    assert response.headers["x-width"] == "320" and response.headers["x-height"] == "240"


def test_curl_data_binary_default_content_type_is_the_image(client, photo):
    # `curl --data-binary @photo.jpg` sends application/x-www-form-urlencoded.
    response = client.post("/v1/cutout", content=photo,
                           headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 200, response.text
    response = client.post("/v1/cutout?output=mask", content=photo)  # no content type at all
    assert response.status_code == 200 and decode(response.content).mode == "L"


def test_multipart_upload_with_form_options(client, photo):
    response = client.post("/v1/cutout", files={"image": ("p.jpg", photo, "image/jpeg")},
                           data={"output": "alpha"})
    assert response.status_code == 200, response.text
    assert decode(response.content).mode == "L"


@pytest.mark.parametrize("output", ["alpha", "mask", "trimap"])
def test_single_channel_outputs(client, photo, output):
    response = post(client, photo, output=output)
    assert response.status_code == 200, response.text
    image = decode(response.content)
    assert image.mode == "L" and image.size == (320, 240)
    values = np.asarray(image)
    assert values[120, 160] >= 250 and values[5, 5] <= 5
    if output == "trimap":
        assert set(np.unique(values)) == {0, 128, 255}
        assert "matting;dur" not in response.headers["server-timing"]
    if output == "mask":
        assert "trimap;dur" not in response.headers["server-timing"]


def test_webp_output(client, photo):
    response = post(client, photo, format="webp")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/webp"
    assert response.content[:4] == b"RIFF" and response.content[8:12] == b"WEBP"
    image = decode(response.content)
    assert image.mode == "RGBA" and image.size == (320, 240)


def test_jpeg_output_is_opaque_on_white(client, photo):
    response = post(client, photo, format="jpeg")
    assert response.status_code == 200, response.text
    image = decode(response.content)
    assert image.format == "JPEG" and image.mode == "RGB"
    assert np.asarray(image)[5, 5].min() >= 245


def test_bg_color_gives_an_opaque_image(client, photo):
    response = post(client, photo, bg_color="0000ff")
    assert response.status_code == 200, response.text
    image = decode(response.content)
    assert image.mode == "RGB"
    assert tuple(np.asarray(image)[5, 5]) == (0, 0, 255)


def test_translucent_bg_color_keeps_alpha(client, photo):
    response = post(client, photo, bg_color="#00ff0080")
    image = decode(response.content)
    assert image.mode == "RGBA"
    assert tuple(np.asarray(image)[5, 5]) == (0, 255, 0, 128)
    assert np.asarray(image)[120, 160, 3] == 255


def test_crop_with_margin(client, photo):
    plain = post(client, photo, crop="true")
    assert plain.status_code == 200, plain.text
    width, height = decode(plain.content).size
    assert 110 <= width <= 135 and 110 <= height <= 135  # the disc's box (diameter ~121)
    margin = post(client, photo, crop="true", crop_margin="10px")
    assert decode(margin.content).size == (width + 20, height + 20)
    percent = post(client, photo, crop="true", crop_margin="10%")
    w2, h2 = decode(percent.content).size
    assert abs(w2 - width * 1.2) <= 2 and abs(h2 - height * 1.2) <= 2


def test_max_megapixels_scales_the_result(client, photo):
    response = post(client, photo, max_megapixels="0.02")
    width, height = decode(response.content).size
    assert width * height <= 20_000 and abs(width / height - 320 / 240) < 0.05


def test_zip_holds_colour_and_alpha(client, photo):
    response = post(client, photo, format="zip")
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
        assert decode(archive.read("alpha.png")).mode == "L"
        assert decode(archive.read("color.jpg")).size == (320, 240)


# ---- inputs ----------------------------------------------------------------------------------
def test_exif_orientation_is_applied(client):
    stored = disc_image(300, 200, centre=(60, 60), radius=40)  # object top-left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90 degrees clockwise
    data = encoded(stored, "JPEG", quality=95, exif=exif)
    shown = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))))
    response = post(client, data, output="alpha")
    alpha = np.asarray(decode(response.content))
    assert alpha.shape == shown.shape[:2] == (300, 200)
    red = (shown[..., 0] > 150) & (shown[..., 1] < 100)
    found = alpha > 128
    assert (found & red).sum() / (found | red).sum() > 0.85  # where the viewer sees it
    assert alpha[60, 139] == 255 and alpha[60, 60] == 0  # (60, 60) rotated clockwise


def test_png_with_transparency_keeps_its_own_alpha(client):
    image = disc_image(200, 160, radius=50).convert("RGBA")
    pixels = np.asarray(image).copy()
    pixels[:, :100, 3] = 0  # left half already transparent
    response = post(client, encoded(Image.fromarray(pixels)))
    out = np.asarray(decode(response.content))
    assert (out[:, :100, 3] == 0).all() and out[80, 120, 3] == 255


def test_3000px_input_answered_at_full_size(client):
    data = encoded(disc_image(3000, 2000, radius=300), "JPEG", quality=90)
    response = post(client, data)
    assert response.status_code == 200, response.text
    image = decode(response.content)
    assert image.size == (3000, 2000) and image.mode == "RGBA"
    alpha = np.asarray(image)[..., 3]
    assert alpha[1000, 1500] == 255 and alpha[10, 10] == 0
    assert response.headers["x-input-width"] == "3000"
    # The matte was computed at 1500 px and rescaled smoothly, not with nearest neighbour.
    edge = alpha[1000, 1500 + 280:1500 + 320]
    assert ((edge > 0) & (edge < 255)).any()


# ---- errors ----------------------------------------------------------------------------------
def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["error"], str) and body["error"]
    if code:
        assert body["code"] == code
    return body


def test_400_undecodable(client, photo):
    assert_error(post(client, photo[: len(photo) // 2]), 400, "undecodable_image")
    assert_error(post(client, b""), 400, "empty_input")


def test_400_multipart_without_the_image_field(client):
    response = client.post("/v1/cutout", files={"picture": ("p.jpg", b"xx", "image/jpeg")})
    assert_error(response, 400, "missing_image")


def test_413_body_over_the_limit(client):
    response = post(client, b"\xff" * (MAX_BODY + 1))
    assert_error(response, 413, "payload_too_large")


def test_413_chunked_body_over_the_limit(client):
    def chunks():  # no Content-Length: the limit is enforced while streaming
        for _ in range(MAX_BODY // 65536 + 2):
            yield b"\0" * 65536

    response = client.post("/v1/cutout", content=chunks(),
                           headers={"Content-Type": "image/png"})
    assert_error(response, 413, "payload_too_large")
    multipart = client.post("/v1/cutout", files={"image": ("big.png", b"\0" * (MAX_BODY + 1))})
    assert_error(multipart, 413, "payload_too_large")


def test_413_pixel_bomb_refused_from_its_header(client):
    response = post(client, png_with_claimed_size(60000, 60000))
    assert_error(response, 413, "payload_too_large")
    response = post(client, png_with_claimed_size(5000, 5000))  # over max_pixels (20 MP)
    body = assert_error(response, 413, "payload_too_large")
    assert "before decoding" in body["error"]


@pytest.mark.parametrize("data", [b"<html><body>hi</body></html>", bytes(range(256)) * 4,
                                  b"%PDF-1.4\n"])
def test_415_not_an_image(client, data):
    assert_error(post(client, data), 415, "unsupported_media_type")


@pytest.mark.parametrize("params", [{"output": "sepia"}, {"format": "gif"},
                                    {"bg_color": "notacolour"}, {"crop_margin": "ten"},
                                    {"max_megapixels": "-1"}, {"crop": "maybe"},
                                    {"unknown_option": "1"}, {"format": "zip", "output": "alpha"}])
def test_422_bad_options(client, photo, params):
    body = assert_error(post(client, photo, **params), 422, "invalid_options")
    assert body["detail"]


def test_404_is_json(client):
    assert_error(client.get("/v1/nothing"), 404)


# ---- remove.bg compatibility -----------------------------------------------------------------
def test_removebg_multipart_like_its_clients(client, photo):
    # What the remove.bg Python client and CarveKit send: files + data + X-Api-Key.
    response = client.post("/v1.0/removebg", files={"image_file": ("p.jpg", photo, "image/jpeg")},
                           data={"size": "auto", "type": "product", "format": "png"},
                           headers={"X-Api-Key": "anything"})
    assert response.status_code == 200, response.text
    image = decode(response.content)
    assert image.mode == "RGBA" and image.size == (320, 240)
    assert response.headers["x-width"] == "320" and response.headers["x-credits-charged"] == "0"
    assert int(response.headers["x-foreground-width"]) > 100


def test_removebg_base64_json_and_json_answer(client, photo):
    payload = {"image_file_b64": base64.b64encode(photo).decode(), "size": "preview",
               "channels": "alpha"}
    response = client.post("/v1.0/removebg", json=payload, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    image = decode(base64.b64decode(data["result_b64"]))
    assert image.mode == "L" and image.size[0] * image.size[1] <= 250_000
    box = {"foreground_top", "foreground_left", "foreground_width", "foreground_height"}
    assert box <= set(data)


def test_removebg_urlencoded_b64_with_bg_colour_gives_jpeg(client, photo):
    response = client.post("/v1.0/removebg", data={
        "image_file_b64": base64.b64encode(photo).decode(), "bg_color": "81d4fa",
        "format": "auto", "crop": "true", "crop_margin": "5%"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"
    assert decode(response.content).size[0] < 320


def test_removebg_zip(client, photo):
    response = client.post("/v1.0/removebg", files={"image_file": ("p.jpg", photo)},
                           data={"format": "zip"})
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        assert set(archive.namelist()) == {"color.jpg", "alpha.png"}


def assert_removebg_error(response, status: int) -> str:
    assert response.status_code == status, response.text
    errors = response.json()["errors"]
    assert isinstance(errors, list) and errors[0]["title"]
    return errors[0]["title"]


def test_removebg_errors_in_its_shape(client, photo):
    assert_removebg_error(client.post("/v1.0/removebg", data={"size": "auto"}), 400)
    assert_removebg_error(client.post("/v1.0/removebg", files={"image_file": ("p", b"garbage!")}),
                          415)
    # Invalid options are 400 there, as on remove.bg (422 on /v1/cutout).
    assert_removebg_error(client.post("/v1.0/removebg", files={"image_file": ("p.jpg", photo)},
                                      data={"size": "gigantic"}), 400)
    title = assert_removebg_error(client.post("/v1.0/removebg",
                                              data={"image_url": "http://169.254.169.254/"}), 400)
    assert "image_url" in title
    assert_removebg_error(client.post("/v1.0/removebg", data={"image_file_b64": "***"}), 400)
    assert_removebg_error(client.post("/v1.0/removebg", content=b"x" * (MAX_BODY + 10),
                                      headers={"Content-Type": "application/octet-stream"}), 413)


# ---- docs and metrics ------------------------------------------------------------------------
def test_openapi_documents_both_apis(client):
    schema = client.get("/openapi.json").json()
    paths = {"/v1/cutout", "/v1.0/removebg", "/healthz", "/readyz", "/metrics"}
    assert paths <= set(schema["paths"])
    params = {p["name"] for p in schema["paths"]["/v1/cutout"]["post"]["parameters"]}
    assert {"output", "format", "bg_color", "crop", "crop_margin"} <= params
    assert client.get("/docs").status_code == 200


def test_metrics_exposed_with_histograms(client, photo):
    post(client, photo)
    post(client, b"not an image")
    text = client.get("/metrics").text
    assert 'cutout_requests_total{method="POST",route="/v1/cutout",status="200"}' in text
    assert 'cutout_requests_total{method="POST",route="/v1/cutout",status="415"}' in text
    for histogram in ("cutout_request_duration_seconds", "cutout_stage_duration_seconds",
                      "cutout_input_megapixels", "cutout_matting_tiles"):
        assert f"# TYPE {histogram} histogram" in text
        assert f"{histogram}_bucket" in text
    for stage in ("queue", "decode", "segment", "trimap", "matting", "encode"):
        assert f'cutout_stage_duration_seconds_count{{stage="{stage}"}}' in text
    for gauge in ("cutout_queue_depth", "cutout_workers_busy", "cutout_workers_ready"):
        assert f"# TYPE {gauge} gauge" in text
    assert "# TYPE cutout_worker_restarts_total counter" in text
    assert 'cutout_build_info{model_version="test-random"' in text
