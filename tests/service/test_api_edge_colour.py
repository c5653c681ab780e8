"""Edge colour through real HTTP: a red object shot on green keeps no green fringe in any output
that carries colour (rgba, bg_color composites, zip, both routes), and
CUTOUT_FOREGROUND_ESTIMATION=false gives the photo's own colour back. Real servers and worker
processes (random AlphaNet weights, the colour-threshold segmenter finds the red object)."""
from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from service.config import Settings
from support.service import colour_server_settings, decode, serving

OBJECT = np.array([200, 30, 30], np.float32)
BACKDROP = np.array([40, 170, 60], np.float32)


@pytest.fixture(scope="module")
def settings(random_model_dir, tmp_path_factory) -> dict:
    return colour_server_settings(random_model_dir, tmp_path_factory.mktemp("seg"), queue_size=4)


@pytest.fixture(scope="module")
def client(settings):
    with serving(Settings(**settings)) as live, live.client() as client:
        yield client


@pytest.fixture(scope="module")
def photo() -> bytes:
    """320 x 240 PNG: a red disc whose edge fades over 8 px into a green backdrop, mixed as a
    camera mixes it (I = a F + (1 - a) B)."""
    yy, xx = np.mgrid[0:240, 0:320]
    alpha = np.clip((70 - np.hypot(xx - 160, yy - 120)) / 8 + 0.5, 0, 1)[..., None]
    pixels = (alpha * OBJECT + (1 - alpha) * BACKDROP + 0.5).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def soft_edge(alpha: np.ndarray) -> np.ndarray:
    edge = (alpha > 0) & (alpha < 255)
    assert edge.sum() > 300  # the cutout has a soft edge to look at
    return edge


def green_in_edge(rgba: np.ndarray) -> float:
    """Mean green level of the cut-out's colour in its soft edge (the object's own is 30)."""
    return float(rgba[..., 1][soft_edge(rgba[..., 3])].mean())


def test_rgba_edge_has_the_objects_colour(client, photo):
    response = client.post("/v1/cutout", content=photo)
    assert response.status_code == 200, response.text
    assert green_in_edge(np.asarray(decode(response.content))) < 70


def test_removebg_route_too(client, photo):
    response = client.post("/v1.0/removebg", files={"image_file": ("p.png", photo, "image/png")},
                           data={"format": "png"})
    assert response.status_code == 200, response.text
    assert green_in_edge(np.asarray(decode(response.content))) < 70


def test_bg_color_composite_and_zip_colour(client, photo):
    alpha = np.asarray(decode(client.post("/v1/cutout", content=photo,
                                          params={"output": "alpha"}).content))
    edge = soft_edge(alpha)
    response = client.post("/v1/cutout", content=photo, params={"bg_color": "ffffff"})
    white = np.asarray(decode(response.content)).astype(np.float32)
    a = alpha[edge].astype(np.float32)[:, None] / 255
    # On white, the edge is the object's red thinned by white: pink, never green.
    expected = a * OBJECT + (1 - a) * 255
    assert np.abs(white[edge] - expected).mean() < 15
    response = client.post("/v1/cutout", content=photo, params={"format": "zip"})
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        colour = np.asarray(decode(archive.read("color.jpg"))).astype(np.float32)
    assert colour[edge][:, 1].mean() < 80  # JPEG keeps the estimate, give or take its noise


def test_the_setting_turns_it_off(settings, photo):
    with serving(Settings(**settings, foreground_estimation=False)) as live, \
            live.client() as client:
        response = client.post("/v1/cutout", content=photo)
    assert response.status_code == 200, response.text
    rgba = np.asarray(decode(response.content))
    edge = soft_edge(rgba[..., 3])
    original = np.asarray(decode(photo))
    np.testing.assert_array_equal(rgba[..., :3][edge], original[edge])  # the photo's own mix
    assert green_in_edge(rgba) > 85  # ... and its green fringe
