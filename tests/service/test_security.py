"""API keys, `image_url` and logs, through real HTTP. Only local servers: an HTTP server on
127.0.0.1 plays the outside world, and must be REFUSED unless the app was made with
`create_app(..., image_url_allow_loopback=True)` (tests only; no setting opens it)."""
from __future__ import annotations

import base64
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest
from PIL import Image
from pydantic import ValidationError

from service.config import Settings
from service.security import AddressRefused, check_address
from support.service import (
    colour_segmenter,
    colour_segmenter_settings,
    decode,
    disc_image,
    encoded,
    serving,
)

KEY = "k-alpha-3b9f1c2e"
FILE_KEY = "k-beta-77d0a5e4"
PHOTO = encoded(disc_image(160, 120), "JPEG", quality=95)
FETCH_LIMIT = 200_000
BLUE = (20, 40, 220)
BACKGROUND = encoded(Image.new("RGB", (40, 30), BLUE), "PNG")


# ---- a local "internet" --------------------------------------------------------------------------
class Origin(BaseHTTPRequestHandler):
    hits: ClassVar[list[tuple[str, str]]] = []  # (path, Host header)

    def log_message(self, *args) -> None:  # quiet
        pass

    def do_GET(self) -> None:  # http.server's name
        Origin.hits.append((self.path, self.headers.get("Host", "")))
        port = self.server.server_address[1]
        routes = {
            "/photo.jpg": lambda: self._send(200, PHOTO, "image/jpeg"),
            "/bg.png": lambda: self._send(200, BACKGROUND, "image/png"),
            "/redirect": lambda: self._redirect("/photo.jpg"),
            "/redirect-absolute": lambda: self._redirect(f"http://127.0.0.1:{port}/redirect"),
            "/to-private": lambda: self._redirect("http://10.1.2.3/photo.jpg"),
            "/to-metadata": lambda: self._redirect("http://169.254.169.254/latest/meta-data/"),
            "/to-file": lambda: self._redirect("file:///etc/passwd"),
            "/loop": lambda: self._redirect("/loop"),
            "/big": lambda: self._send(200, b"\xff" * (FETCH_LIMIT + 1), "image/jpeg"),
            "/big-chunked": self._endless,
            "/slow": self._slow,
        }
        routes.get(self.path, lambda: self._send(404, b"not here", "text/plain"))()

    def _send(self, status: int, body: bytes, kind: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", kind)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _endless(self) -> None:  # no Content-Length: only streaming can stop it
        self.send_response(200)
        self.send_header("Content-Type", "image/jpeg")
        self.end_headers()
        try:
            for _ in range(10_000):
                self.wfile.write(b"\0" * 65536)
        except OSError:
            pass

    def _slow(self) -> None:
        time.sleep(8)
        self._send(200, PHOTO, "image/jpeg")


@pytest.fixture(scope="module")
def origin():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Origin)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture(scope="module")
def guarded(random_model_dir, tmp_path_factory):
    """API keys on (one from settings, one from a file), /metrics protected, image_url enabled
    with the default address policy (loopback refused), debug logging."""
    key_file = tmp_path_factory.mktemp("keys") / "keys.txt"
    key_file.write_text(f"# cutout keys\n\n{FILE_KEY}\n")
    settings = Settings(model_dir=random_model_dir, workers=1, threads=1, warm_up=False,
                        api_keys=(KEY,), api_keys_file=key_file, metrics_require_key=True,
                        image_url_enabled=True, log_level="debug",
                        **colour_segmenter_settings(colour_segmenter(key_file.parent / "c.onnx")))
    with serving(settings) as live:
        yield live


@pytest.fixture(scope="module")
def fetching(random_model_dir, tmp_path_factory):
    """No keys (the default); image_url enabled with loopback allowed (tests only). The
    colour segmenter finds the red disc of PHOTO (remove.bg's route answers 400 when nothing is
    found)."""
    segmenter = colour_segmenter(tmp_path_factory.mktemp("seg") / "colour.onnx")
    settings = Settings(model_dir=random_model_dir, workers=1, threads=1, warm_up=False,
                        image_url_enabled=True,
                        image_url_max_bytes=FETCH_LIMIT, image_url_timeout_s=2.0,
                        image_url_max_redirects=2, **colour_segmenter_settings(segmenter))
    with serving(settings, image_url_allow_loopback=True) as live:
        yield live


# ---- API keys ------------------------------------------------------------------------------------
def test_keys_are_off_by_default(fetching):
    with fetching.client() as client:
        assert client.post("/v1/cutout", content=PHOTO).status_code == 200
        assert client.get("/metrics").status_code == 200


def test_missing_key_401_wrong_key_403_in_each_api_shape(guarded):
    with guarded.client() as client:
        response = client.post("/v1/cutout", content=PHOTO)
        assert response.status_code == 401
        assert response.json()["code"] == "api_key_missing" and response.json()["error"]
        assert "X-Api-Key" in response.headers["www-authenticate"]
        response = client.post("/v1/cutout", content=PHOTO, headers={"X-Api-Key": KEY + "x"})
        assert response.status_code == 403 and response.json()["code"] == "api_key_invalid"
        response = client.post("/v1.0/removebg", files={"image_file": ("p.jpg", PHOTO)})
        assert response.status_code == 401 and response.json()["errors"][0]["title"]
        response = client.post("/v1.0/removebg", files={"image_file": ("p.jpg", PHOTO)},
                               headers={"X-Api-Key": "nope"})
        assert response.status_code == 403 and response.json()["errors"][0]["code"] == \
            "api_key_invalid"


def test_keys_from_settings_and_file_are_accepted(guarded):
    with guarded.client() as client:
        for key in (KEY, FILE_KEY):
            response = client.post("/v1/cutout", content=PHOTO, headers={"X-Api-Key": key})
            assert response.status_code == 200, response.text
            response = client.post("/v1.0/removebg", files={"image_file": ("p.jpg", PHOTO)},
                                   headers={"X-Api-Key": key})
            assert response.status_code == 200, response.text


def test_health_open_metrics_protected(guarded):
    with guarded.client() as client:
        assert client.get("/healthz").status_code == 200
        assert client.get("/readyz").status_code == 200
        assert client.get("/metrics").status_code == 401
        assert client.get("/metrics", headers={"X-Api-Key": "bad"}).status_code == 403
        assert client.get("/metrics", headers={"X-Api-Key": KEY}).status_code == 200
        schema = client.get("/openapi.json").json()
        assert "X-Api-Key" in str(schema["components"]["securitySchemes"])


# ---- image_url: the address policy ---------------------------------------------------------------
@pytest.mark.parametrize("address", [
    "127.0.0.1", "127.1.2.3", "10.0.0.1", "172.16.5.4", "192.168.1.1", "169.254.169.254",
    "100.64.0.1", "0.0.0.0", "224.0.0.1", "239.255.255.250", "240.0.0.1", "255.255.255.255",
    "192.0.2.1", "198.18.0.1", "::1", "::", "fd00::1", "fc00::5", "fe80::1", "fe80::1%eth0",
    "::ffff:127.0.0.1", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "2002:a9fe:a9fe::1",
    "ff02::1", "2001:db8::1"])
def test_non_public_addresses_are_refused(address):
    with pytest.raises(AddressRefused):
        check_address(address)


@pytest.mark.parametrize("address", ["8.8.8.8", "1.1.1.1", "93.184.216.34",
                                     "2606:4700:4700::1111"])
def test_public_addresses_pass(address):
    assert str(check_address(address)) == address


def test_loopback_is_no_setting():
    """The test switch is an app-factory argument, never something an environment can set."""
    assert "image_url_allow_loopback" not in Settings.model_fields
    with pytest.raises(ValidationError, match="retired"):
        Settings(image_url_allow_loopback=True)


def test_loopback_only_with_the_test_switch():
    with pytest.raises(AddressRefused):
        check_address("127.0.0.1")
    assert str(check_address("127.0.0.1", allow_loopback=True)) == "127.0.0.1"
    with pytest.raises(AddressRefused):  # the test switch opens loopback, nothing else
        check_address("10.0.0.1", allow_loopback=True)


# ---- image_url through HTTP ----------------------------------------------------------------------
def fetch(live, url: str, key: str | None = None, **fields):
    headers = {"X-Api-Key": key} if key else {}
    with live.client() as client:
        return client.post("/v1.0/removebg", data={"image_url": url, **fields}, headers=headers)


def assert_refused(response, code: str = "image_url_refused") -> None:
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["code"] == code, response.text


def test_image_url_off_by_default(random_model_dir):
    assert Settings(model_dir=random_model_dir).image_url_enabled is False  # 400 when off:
    # see tests/service/test_api_cutout.py::test_removebg_errors_in_its_shape


def test_local_server_refused_by_default(guarded, origin):
    port = origin.rsplit(":", 1)[1]
    Origin.hits.clear()
    for url in (f"{origin}/photo.jpg", f"http://localhost:{port}/photo.jpg",
                f"http://2130706433:{port}/photo.jpg",  # 127.0.0.1 as one number
                f"http://0x7f.1:{port}/photo.jpg", f"http://[::ffff:127.0.0.1]:{port}/photo.jpg",
                "http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/",
                "http://[fd12::1]/", "http://[::1]/"):
        response = fetch(guarded, url, KEY)
        assert response.status_code == 400, (url, response.text)
        assert response.json()["errors"][0]["code"] in ("image_url_refused", "image_url_failed")
    assert Origin.hits == []  # refused before connecting


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg",
                                 "gopher://127.0.0.1:70/", "data:image/png;base64,AAAA",
                                 "http://user:secret@example.com/a.jpg", "not a url", "//x/y"])
def test_only_plain_http_urls(guarded, url):
    assert_refused(fetch(guarded, url, KEY))


def test_fetch_from_a_public_server(fetching, origin):
    port = origin.rsplit(":", 1)[1]
    Origin.hits.clear()
    response = fetch(fetching, f"http://localhost:{port}/photo.jpg", format="png")
    assert response.status_code == 200, response.text
    assert decode(response.content).size == (160, 120)
    # Connected to the checked address, with the original host in the Host header.
    assert Origin.hits == [("/photo.jpg", f"localhost:{port}")]


def test_redirects_are_followed_and_checked_each_time(fetching, origin):
    assert fetch(fetching, f"{origin}/redirect").status_code == 200
    assert fetch(fetching, f"{origin}/redirect-absolute").status_code == 200  # 2 hops: allowed
    Origin.hits.clear()
    for path in ("/to-private", "/to-metadata", "/to-file"):
        assert_refused(fetch(fetching, f"{origin}{path}"))
    assert [path for path, _ in Origin.hits] == ["/to-private", "/to-metadata", "/to-file"]
    assert_refused(fetch(fetching, f"{origin}/loop"), "image_url_failed")


def test_size_limit_streamed_and_time_limit(fetching, origin):
    for path in ("/big", "/big-chunked"):
        response = fetch(fetching, f"{origin}{path}")
        assert response.status_code == 413, response.text
        assert response.json()["errors"][0]["code"] == "payload_too_large"
    start = time.monotonic()
    response = fetch(fetching, f"{origin}/slow")
    assert time.monotonic() - start < 6  # the 2 s limit, not the origin's 8 s
    assert_refused(response, "image_url_failed")
    assert "2 s" in response.json()["errors"][0]["title"]
    assert_refused(fetch(fetching, f"{origin}/missing"), "image_url_failed")


def test_image_url_with_bad_options_or_two_sources_is_not_fetched(fetching, origin):
    Origin.hits.clear()
    response = fetch(fetching, f"{origin}/photo.jpg", size="gigantic")
    assert response.status_code == 400  # remove.bg's status for invalid options
    with fetching.client() as client:
        response = client.post("/v1.0/removebg", data={"image_url": f"{origin}/photo.jpg"},
                               files={"image_file": ("p.jpg", PHOTO)})
    assert response.status_code == 400
    assert Origin.hits == []


def test_bg_image_url_is_fetched_like_image_url(fetching, guarded, origin):
    response = fetch(fetching, f"{origin}/photo.jpg", bg_image_url=f"{origin}/bg.png")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/jpeg"  # format auto: opaque
    pixels = np.asarray(decode(response.content)).astype(int)
    assert np.abs(pixels[3, 3] - BLUE).max() <= 12  # the background covers the frame
    # The same address policy: where loopback is refused, so is it for the background, before
    # connecting.
    Origin.hits.clear()
    with guarded.client() as client:
        response = client.post("/v1.0/removebg", files={"image_file": ("p.jpg", PHOTO)},
                               data={"bg_image_url": f"{origin}/bg.png"},
                               headers={"X-Api-Key": KEY})
    assert_refused(response)
    assert Origin.hits == []


# ---- logs ------------------------------------------------------------------------------------
def test_logs_hold_no_keys_and_no_image_bytes(guarded, caplog, capfd):
    marker = b"IMAGE-BYTES-MARKER-5f1d"
    image = disc_image(96, 64)
    payload = encoded(image, "PNG", pnginfo=_text_chunk(marker))
    assert marker in payload
    caplog.set_level(logging.DEBUG)
    with guarded.client() as client:
        client.post("/v1/cutout", content=payload, headers={"X-Api-Key": KEY})
        client.post("/v1/cutout", content=payload[:200] + marker, headers={"X-Api-Key": KEY})
        client.post("/v1/cutout", content=payload, headers={"X-Api-Key": FILE_KEY + "-wrong"})
        client.post("/v1.0/removebg", headers={"X-Api-Key": KEY},
                    data={"image_file_b64": base64.b64encode(payload).decode(), "size": "nope"})
        client.post("/v1.0/removebg", headers={"X-Api-Key": KEY},
                    data={"image_file_b64": base64.b64encode(marker * 4).decode()})
    time.sleep(0.5)  # let the worker's log lines reach stderr
    captured = capfd.readouterr()
    text = caplog.text + captured.out + captured.err
    assert "job" in text or caplog.records  # the logs were captured at all (debug level)
    for secret in (KEY, FILE_KEY, marker.decode(), base64.b64encode(marker).decode()[:16]):
        assert secret not in text


def _text_chunk(marker: bytes):
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text("comment", marker.decode())
    return info


# ---- settings ------------------------------------------------------------------------------------
def test_key_settings_from_the_environment(monkeypatch, tmp_path, random_model_dir):
    from service.security import ApiKeys

    monkeypatch.setenv("CUTOUT_API_KEYS", "k1, k2")
    assert [k.get_secret_value() for k in Settings().api_keys] == ["k1", "k2"]
    monkeypatch.setenv("CUTOUT_API_KEYS", '["k3"]')
    settings = Settings()
    assert [k.get_secret_value() for k in settings.api_keys] == ["k3"]
    assert "k3" not in repr(settings)  # secrets stay out of logs and tracebacks
    with pytest.raises(ValidationError, match="does not exist"):
        Settings(api_keys_file=tmp_path / "missing.txt")
    keys = ApiKeys.from_settings(["a"], None)
    keys.check("a")
    assert not ApiKeys([]).enabled
