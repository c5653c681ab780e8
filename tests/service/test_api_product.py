"""Product-ready outputs through real HTTP, on both APIs: the object placed on a canvas
(/v1/cutout's canvas / fill / position, remove.bg's scale / position), a background image, a
contact shadow, a region of interest, nothing to cut out, and the rest of remove.bg's contract
(its options, sizes, statuses and GET /v1.0/account). Real ONNX sessions (random AlphaNet
weights plus the colour-threshold segmenter of tests/service/test_api_cutout.py: red things are the
object), real images; the full-queue 429 is in tests/service/test_faults.py."""
from __future__ import annotations

import base64

import numpy as np
import pytest

from service.config import Settings
from support.service import (
    RED,
    colour_server_settings,
    decode,
    disc_image,
    encoded,
    serving,
)

BLUE = (20, 40, 220)


@pytest.fixture(scope="module")
def server(random_model_dir, tmp_path_factory):
    settings = Settings(**colour_server_settings(random_model_dir, tmp_path_factory.mktemp("seg")))
    with serving(settings) as live:
        yield live


@pytest.fixture(scope="module")
def photo() -> bytes:
    """320 x 240, a red disc of radius 40 at (80, 70): off-centre, box (40, 30, 120, 110)."""
    return encoded(disc_image(320, 240, centre=(80, 70), radius=40), "PNG")


@pytest.fixture(scope="module")
def two_discs() -> bytes:
    """320 x 240, red discs of radius 30 at (70, 120) and (250, 120)."""
    left = np.asarray(disc_image(320, 240, centre=(70, 120), radius=30))
    right = np.asarray(disc_image(320, 240, centre=(250, 120), radius=30))
    return encoded(_image(np.minimum(left, right)), "PNG")


@pytest.fixture(scope="module")
def nothing() -> bytes:
    """A grey photo with no red in it: nothing for the segmenter to find."""
    return encoded(_image(np.full((240, 320, 3), 128, np.uint8)), "PNG")


@pytest.fixture(scope="module")
def blue_background() -> bytes:
    return encoded(_image(np.full((40, 50, 3), BLUE, np.uint8)), "PNG")


def _image(pixels: np.ndarray):
    from PIL import Image

    return Image.fromarray(pixels)


def cutout(client, data: bytes, files: dict | None = None, **options):
    """POST /v1/cutout: multipart (the image plus any extra files), options as form fields."""
    return client.post("/v1/cutout", files={"image": ("p.png", data, "image/png"), **(files or {})},
                       data={k: str(v) for k, v in options.items()})


def removebg(client, data: bytes, files: dict | None = None, **fields):
    return client.post("/v1.0/removebg",
                       files={"image_file": ("p.png", data, "image/png"), **(files or {})},
                       data={k: str(v) for k, v in fields.items()})


def box(response) -> tuple[int, int, int, int]:
    """The object's box from the answer's headers: (left, top, right, bottom)."""
    h = response.headers
    left, top = int(h["x-foreground-left"]), int(h["x-foreground-top"])
    return left, top, left + int(h["x-foreground-width"]), top + int(h["x-foreground-height"])


def alpha_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    rows = np.flatnonzero((pixels > 127).any(axis=1))
    cols = np.flatnonzero((pixels > 127).any(axis=0))
    return int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1


def near(actual: tuple, expected: tuple, tolerance: float) -> bool:
    return all(abs(a - e) <= tolerance for a, e in zip(actual, expected, strict=True))


# ---- /v1/cutout: canvas, fill, position ------------------------------------------------------
def test_canvas_centres_the_object_at_85_percent_on_white(client, photo):
    response = cutout(client, photo, canvas="1000x1000", bg_color="ffffff", format="jpeg")
    assert response.status_code == 200, response.text
    image = decode(response.content)
    assert image.size == (1000, 1000) and image.mode == "RGB"
    pixels = np.asarray(image).astype(int)
    for corner in (pixels[5, 5], pixels[5, -5], pixels[-5, 5], pixels[-5, -5]):
        assert (corner >= 250).all()  # pure white around (JPEG rounding aside)
    assert np.abs(pixels[500, 500] - RED).max() <= 12  # the object, in the middle
    # The 80 px disc enlarged 10.6x: its box is 85 % of the side (850 px, plus the soft edge
    # that bilinear enlarging spreads over a few px), centred.
    left, top, right, bottom = box(response)
    assert 845 <= right - left <= 866 and 845 <= bottom - top <= 866
    assert abs((left + right) / 2 - 500) <= 2 and abs((top + bottom) / 2 - 500) <= 2
    assert response.headers["x-foreground-found"] == "true"


def test_canvas_with_fill_and_position_on_transparency(client, photo):
    response = cutout(client, photo, canvas="1600x1000", fill=0.5, position="0% 100%")
    assert response.status_code == 200, response.text
    image = decode(response.content)
    assert image.size == (1600, 1000) and image.mode == "RGBA"
    alpha = np.asarray(image)[..., 3]
    # fill 0.5 of the 1000 px height: a 500 px box, at the left edge and the bottom (the box
    # placed holds the soft edge, alpha > 12; half of it, enlarged 6x, is under alpha 128).
    left, top, right, bottom = alpha_box(alpha)
    assert near((left, bottom, bottom - top, right - left), (0, 1000, 500, 500), 12)
    assert alpha[5, -5] == 0 and alpha[-5, -5] == 0  # transparent canvas


def test_position_and_fill_without_canvas_use_the_image_frame(client, photo):
    moved = cutout(client, photo, position="100% 0%")  # original size, top right
    assert moved.status_code == 200, moved.text
    assert decode(moved.content).size == (320, 240)
    assert near(alpha_box(np.asarray(decode(moved.content))[..., 3]), (240, 0, 320, 80), 2)
    scaled = cutout(client, photo, fill=0.5)  # 50 % of the 240 px height, centred
    assert near(alpha_box(np.asarray(decode(scaled.content))[..., 3]), (100, 60, 220, 180), 3)


def test_canvas_alpha_output_and_size_cap(client, photo):
    response = cutout(client, photo, canvas="2000x2000", output="alpha", max_megapixels=1)
    image = decode(response.content)
    assert image.mode == "L" and image.size[0] == image.size[1] <= 1000
    left, _, right, _ = alpha_box(np.asarray(image))
    assert abs((right - left) / image.size[0] - 0.85) <= 0.03  # the soft edge, as above


@pytest.mark.parametrize("options", [
    {"canvas": "1000"}, {"canvas": "0x100"}, {"canvas": "20000x20000"}, {"fill": "0"},
    {"fill": "1.5"}, {"position": "left"}, {"position": "120% 0%"},
    {"canvas": "1000x1000", "crop": "true"}, {"canvas": "1000x1000", "output": "trimap"},
    {"roi": "0 0 10 10"}, {"roi": "50% 0% 10% 100%"}, {"shadow": "true", "output": "alpha"},
    {"shadow": "true", "format": "zip"}, {"bg_image": "not a file"},
])
def test_422_bad_placement_options(client, photo, options):
    response = cutout(client, photo, **options)
    assert response.status_code == 422, response.text
    assert response.json()["code"] == "invalid_options"


# ---- backgrounds and shadow, on both APIs ------------------------------------------------------
def test_bg_image_covers_the_output(client, photo, blue_background):
    files = {"bg_image": ("bg.png", blue_background, "image/png")}
    response = cutout(client, photo, files=files)
    assert response.status_code == 200, response.text
    pixels = np.asarray(decode(response.content)).astype(int)
    assert pixels.shape == (240, 320, 3)  # opaque: the background covers everything
    assert np.abs(pixels[230, 310] - BLUE).max() <= 2 and np.abs(pixels[5, 5] - BLUE).max() <= 2
    assert np.abs(pixels[70, 80] - RED).max() <= 8
    # remove.bg's bg_image_file: the same picture, JPEG (format auto: opaque).
    same = removebg(client, photo, files={"bg_image_file": ("bg.png", blue_background)},
                    size="full")
    assert same.status_code == 200, same.text
    assert same.headers["content-type"] == "image/jpeg"
    jpeg = np.asarray(decode(same.content)).astype(int)
    assert np.abs(jpeg[230, 310] - BLUE).max() <= 12 and np.abs(jpeg[70, 80] - RED).max() <= 12


def test_bg_image_that_is_not_an_image_is_refused(client, photo):
    response = cutout(client, photo, files={"bg_image": ("bg.png", b"garbage", "image/png")})
    assert response.status_code == 415 and "bg_image" in response.json()["error"]
    response = removebg(client, photo, files={"bg_image_file": ("bg.png", b"garbage")})
    assert response.status_code == 415 and "bg_image" in response.json()["errors"][0]["title"]


def below_the_object(pixels: np.ndarray, distance: int) -> np.ndarray:
    """The pixel `distance` px under the disc's bottom (y 110), in its column."""
    return pixels[110 + distance, 80].astype(int)


def test_contact_shadow_darkens_the_ground_under_the_object(client, photo):
    plain = np.asarray(decode(cutout(client, photo, bg_color="white").content))
    shaded = np.asarray(decode(cutout(client, photo, bg_color="white", shadow="true").content))
    assert (below_the_object(plain, 3) >= 250).all()
    assert (below_the_object(shaded, 3) <= 235).all()  # a visible shadow right below
    assert (shaded[5, 300] >= 250).all()  # and none far away
    assert np.abs(shaded[70, 80].astype(int) - RED).max() <= 8  # the object on top of it
    # On transparency the shadow is translucent black.
    rgba = np.asarray(decode(cutout(client, photo, shadow="true").content))
    assert 0 < below_the_object(rgba, 3)[3] < 200 and (below_the_object(rgba, 3)[:3] == 0).all()
    # remove.bg's add_shadow gives the same picture.
    remote = removebg(client, photo, bg_color="ffffff", add_shadow="true", size="full",
                      format="png")
    assert remote.status_code == 200, remote.text
    assert np.array_equal(np.asarray(decode(remote.content)), shaded)


# ---- region of interest, on both APIs ----------------------------------------------------------
def test_roi_searches_only_there(client, two_discs):
    whole = np.asarray(decode(cutout(client, two_discs, output="alpha").content))
    assert whole[120, 70] == 255 and whole[120, 250] == 255
    left_only = cutout(client, two_discs, output="alpha", roi="0% 0% 50% 100%")
    alpha = np.asarray(decode(left_only.content))
    assert alpha.shape == (240, 320)  # the whole image comes back
    assert alpha[120, 70] == 255 and alpha[:, 160:].max() == 0
    assert box(left_only)[2] <= 160
    pixels = removebg(client, two_discs, roi="160px 0px 320px 240px", channels="alpha",
                      size="full")
    assert pixels.status_code == 200, pixels.text
    alpha = np.asarray(decode(pixels.content))
    assert alpha[120, 250] == 255 and alpha[:, :160].max() == 0


# ---- nothing to cut out ------------------------------------------------------------------------
def test_nothing_to_cut_out(client, nothing, two_discs):
    # /v1/cutout: the empty cutout, flagged by a header.
    response = cutout(client, nothing)
    assert response.status_code == 200, response.text
    assert response.headers["x-foreground-found"] == "false"
    assert "x-foreground-left" not in response.headers
    assert np.asarray(decode(response.content))[..., 3].max() == 0
    # remove.bg's route: 400 unknown_foreground, as remove.bg answers it.
    for answer in (removebg(client, nothing),
                   removebg(client, two_discs, roi="40% 0% 60% 100%")):  # between the discs
        assert answer.status_code == 400, answer.text
        error = answer.json()["errors"][0]
        assert error["code"] == "unknown_foreground" and "foreground" in error["title"]


# ---- remove.bg: scale and position -------------------------------------------------------------
def test_removebg_scale_implies_centring(client, photo):
    response = removebg(client, photo, scale="50%", size="full")
    assert response.status_code == 200, response.text
    assert decode(response.content).size == (320, 240)
    # The 80 px box scaled to 50 % of the frame (120 px of 240), centred.
    assert near(alpha_box(np.asarray(decode(response.content))[..., 3]), (100, 60, 220, 180), 3)
    corner = removebg(client, photo, scale="50%", position="0% 0%", size="full")
    assert near(alpha_box(np.asarray(decode(corner.content))[..., 3]), (0, 0, 120, 120), 3)


def test_removebg_position_alone_and_the_defaults(client, photo):
    moved = removebg(client, photo, position="100%", size="full")  # one value: both axes
    assert near(alpha_box(np.asarray(decode(moved.content))[..., 3]), (240, 160, 320, 240), 2)
    centred = removebg(client, photo, position="center", size="full")
    assert near(alpha_box(np.asarray(decode(centred.content))[..., 3]), (120, 80, 200, 160), 2)
    # scale=original and position=original (remove.bg's defaults) leave the object in place.
    default = removebg(client, photo, size="full")
    explicit = removebg(client, photo, size="full", scale="original", position="original")
    assert near(alpha_box(np.asarray(decode(default.content))[..., 3]), (40, 30, 120, 110), 2)
    assert default.content == explicit.content


# ---- remove.bg: accepted, refused, unknown -----------------------------------------------------
def test_removebg_accepts_what_changes_nothing_here(client, photo):
    plain = removebg(client, photo, size="full")
    for fields in ({"semitransparency": "false"}, {"type_level": "2"}, {"type": "product"},
                   {"type_level": "latest", "semitransparency": "true"}):
        response = removebg(client, photo, size="full", **fields)
        assert response.status_code == 200, (fields, response.text)
        assert response.content == plain.content, fields
    assert "x-type" not in plain.headers  # no classifier: no detected kind to report
    assert plain.headers["x-foreground-found"] == "true"


@pytest.mark.parametrize("fields", [
    {"shadow_type": "drop"}, {"unknown_option": "1"}, {"size": "gigantic"}, {"scale": "5%"},
    {"scale": "150%"}, {"scale": "half"}, {"position": "top"}, {"roi": "0 0 100 100"},
    {"type_level": "3"}, {"type": "spaceship"}, {"crop": "true", "scale": "50%"},
    {"bg_color": "ffffff", "bg_image_url": "http://example.com/bg.jpg"},
    {"bg_image_url": "http://example.com/bg.jpg"},  # disabled on this server, like image_url
    {"add_shadow": "true", "channels": "alpha"}, {"roi": "400px 0px 500px 100px"},
])
def test_removebg_refuses_with_400_in_its_shape(client, photo, fields):
    response = removebg(client, photo, **fields)
    assert response.status_code == 400, response.text
    errors = response.json()["errors"]
    assert errors[0]["title"] and errors[0]["code"] in ("invalid_options",)


def test_removebg_bg_color_and_bg_image_file_together_are_refused(client, photo,
                                                                  blue_background):
    response = removebg(client, photo, files={"bg_image_file": ("bg.png", blue_background)},
                        bg_color="red")
    assert response.status_code == 400, response.text
    assert "not both" in response.json()["errors"][0]["title"]


# ---- remove.bg: sizes --------------------------------------------------------------------------
def test_removebg_size_caps_and_default(client):
    big = encoded(disc_image(1600, 1200), "JPEG", quality=90)  # 1.92 MP
    expected = {None: 0.25, "preview": 0.25, "small": 0.25, "regular": 0.25, "medium": 1.5,
                "hd": 1.92, "full": 1.92, "4k": 1.92, "50MP": 1.92, "auto": 1.92}
    for size, megapixels in expected.items():
        fields = {"channels": "alpha"} if size is None else {"size": size, "channels": "alpha"}
        response = client.post("/v1.0/removebg", files={"image_file": ("p.jpg", big)},
                               data=fields)
        assert response.status_code == 200, (size, response.text)
        width, height = decode(response.content).size
        assert megapixels * 0.99 <= width * height / 1e6 <= megapixels, size
        assert abs(width / height - 4 / 3) < 0.01


# ---- remove.bg: account ------------------------------------------------------------------------
def test_account_in_removebg_shape(client):
    response = client.get("/v1.0/account", headers={"X-Api-Key": "any"})
    assert response.status_code == 200, response.text
    attributes = response.json()["data"]["attributes"]
    credits = attributes["credits"]
    assert {"total", "subscription", "payg", "enterprise"} <= set(credits)
    assert all(isinstance(v, int) for v in credits.values()) and credits["total"] >= 10**9
    assert attributes["api"]["free_calls"] >= 10**9 and attributes["api"]["sizes"] == "all"


def test_removebg_json_answer_places_the_box(client, photo):
    payload = {"image_file_b64": base64.b64encode(photo).decode(), "scale": "50%",
               "size": "full", "bg_color": "white"}
    response = client.post("/v1.0/removebg", json=payload, headers={"Accept": "application/json"})
    assert response.status_code == 200, response.text
    data = response.json()["data"]
    assert near((data["foreground_left"], data["foreground_top"], data["foreground_width"]),
                (100, 60, 120), 4)
    image = decode(base64.b64decode(data["result_b64"]))
    assert image.format == "JPEG" and image.size == (320, 240)
    assert (np.asarray(image)[2, 2] >= 250).all()  # white where the object was not
