"""HEIC (phone photos) through real HTTP on both routes: a real HEIC made with libheif's encoder
(pillow-heif), turned by its orientation box as a phone writes it, comes back as a cutout the
way a viewer shows it. Hostile HEIC inputs are in test_hostile_input.py."""
from __future__ import annotations

import base64

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
    serving,
)


@pytest.fixture(scope="module")
def client(random_model_dir, tmp_path_factory):
    settings = Settings(**colour_server_settings(random_model_dir, tmp_path_factory.mktemp("seg"),
                                                 queue_size=4))
    with serving(settings) as live, live.client() as client:
        yield client


@pytest.fixture(scope="module")
def phone_photo() -> bytes:
    """320 x 192 as stored, a red disc near the top-left corner; orientation 6 (shown turned
    90 degrees clockwise, 192 x 320, the disc near the top-right corner)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encoded(disc_image(320, 192, centre=(70, 60), radius=40), "HEIF", quality=90,
                   exif=exif.tobytes())
    assert data[4:12] == b"ftypheic" and b"irot" in data
    return data


def assert_disc_where_a_viewer_sees_it(alpha: np.ndarray) -> None:
    assert alpha.shape == (320, 192)  # rows x columns as shown
    # Stored (x 70, y 60) -> shown (x 192 - 1 - 60, y 70).
    assert alpha[70, 131] == 255
    assert alpha[70, 60] == 0 and alpha[250, 131] == 0


def test_cutout_route(client, phone_photo):
    response = client.post("/v1/cutout", content=phone_photo,
                           headers={"Content-Type": "image/heic"})
    assert response.status_code == 200, response.text
    rgba = np.asarray(decode(response.content))
    assert response.headers["x-input-width"] == "192"
    assert_disc_where_a_viewer_sees_it(rgba[..., 3])
    assert np.abs(rgba[70, 131, :3].astype(int) - RED).max() <= 12  # HEVC keeps the colour


def test_removebg_route(client, phone_photo):
    response = client.post("/v1.0/removebg",
                           files={"image_file": ("IMG_0001.HEIC", phone_photo, "image/heic")},
                           data={"size": "auto", "format": "png"})
    assert response.status_code == 200, response.text
    assert_disc_where_a_viewer_sees_it(np.asarray(decode(response.content))[..., 3])
    response = client.post("/v1.0/removebg", json={
        "image_file_b64": base64.b64encode(phone_photo).decode(), "channels": "alpha"})
    assert response.status_code == 200, response.text
    assert_disc_where_a_viewer_sees_it(np.asarray(decode(response.content)))
