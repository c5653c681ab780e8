"""The page at `/` and `/docs` in a real browser: Debian's chromium, headless, driven by
Playwright, against `cutout serve` on the bundled models. The browser has no network but
loopback, and every request the pages make is checked to go to the server itself.

`CUTOUT_SCREENSHOT=docs/page.png python -m pytest tests/service/test_page.py` also writes the
README's screenshot.
"""
from __future__ import annotations

import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from support.cli import cutout_serve
from support.service import REPO_ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                 "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
# Real photos with human-drawn masks (shared/data/real_masks, CC BY 4.0, see its README).
PHOTOS = REPO_ROOT.parent / "shared" / "data" / "real_masks"
ORANGES, DOG = "fruitmkk_0055", "dogcat10_0007"


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with cutout_serve(tmp_path_factory.mktemp("anywhere"), "--threads", "2",
                      "--log-level", "warning") as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).is_file(), "no chromium: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def local_only(page, server: str) -> list[str]:
    """URLs the page asked for that are neither the server nor in-page (blob:, data:)."""
    elsewhere: list[str] = []
    page.on("request", lambda request: None if request.url.startswith(
        (server + "/", "blob:", "data:")) else elsewhere.append(request.url))
    return elsewhere


def alpha_of_shown_image(page, card) -> np.ndarray:
    """The alpha channel of the cutout as the page shows it (drawn on a canvas)."""
    values = page.evaluate("""(card) => {
        const image = card.querySelector('img.cutout');
        const canvas = document.createElement('canvas');
        canvas.width = image.naturalWidth; canvas.height = image.naturalHeight;
        const context = canvas.getContext('2d');
        context.drawImage(image, 0, 0);
        const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
        const alpha = new Array(data.length / 4);
        for (let i = 0; i < alpha.length; i++) alpha[i] = data[4 * i + 3];
        return [canvas.width, canvas.height, alpha];
    }""", card)
    width, height, alpha = values
    return np.asarray(alpha, np.uint8).reshape(height, width)


def test_the_page_cuts_out_chosen_photos(server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1280, "height": 1000})
    elsewhere = local_only(page, server)
    page.goto(server + "/")
    page.wait_for_selector("#server-status:has-text('ready: models')")
    page.set_input_files("#files", [str(PHOTOS / "image" / f"{ORANGES}.jpg"),
                                    str(PHOTOS / "image" / f"{DOG}.jpg")])
    cards = page.locator("#results .card")
    page.wait_for_function("""() => {
        const cards = document.querySelectorAll('#results .card');
        return cards.length === 2 && [...cards].every((c) => c.dataset.state === 'done');
    }""", timeout=120_000)

    first = cards.nth(0)
    assert first.locator(".name").inner_text() == f"{ORANGES}.jpg"
    mask = np.asarray(Image.open(PHOTOS / "mask" / f"{ORANGES}.png").convert("L")) > 127
    shown = alpha_of_shown_image(page, first.element_handle())
    assert shown.shape == mask.shape  # the answer is at the photo's size
    # Transparent around the oranges, opaque on them (the human mask says where they are).
    assert shown[~mask].mean() < 40 and shown[mask].mean() > 215

    with page.expect_download() as download_info:
        first.locator("a.download").click()
    download = download_info.value
    assert download.suggested_filename == f"{ORANGES}.png"
    downloaded = Image.open(io.BytesIO(Path(download.path()).read_bytes()))
    assert downloaded.mode == "RGBA"
    assert np.array_equal(np.asarray(downloaded)[..., 3], shown)

    timings = first.locator(".timings").inner_text()
    for stage in ("decode", "segment", "matting", "encode", "total"):
        assert stage in timings
    assert "models " in first.locator(".model").inner_text()
    assert cards.nth(1).locator(".download").get_attribute("download") == f"{DOG}.png"

    screenshot = os.environ.get("CUTOUT_SCREENSHOT")
    page.screenshot(path=str(REPO_ROOT / screenshot if screenshot else tmp_path / "page.png"),
                    full_page=True)
    assert elsewhere == []
    page.close()


def test_the_page_sends_its_options_and_says_what_went_wrong(server, browser, tmp_path):
    page = browser.new_page()
    elsewhere = local_only(page, server)
    page.goto(server + "/")
    page.check("input[name=background][value=white]")
    page.check("#crop")
    page.select_option("#format", "jpeg")
    page.set_input_files("#files", str(PHOTOS / "image" / f"{ORANGES}.jpg"))
    page.wait_for_selector("#results .card[data-state=done]", timeout=120_000)
    with page.expect_download() as download_info:
        page.click("#results .card a.download")
    answer = Image.open(download_info.value.path())
    assert answer.format == "JPEG"  # opaque, white background
    assert answer.size[0] < 512 or answer.size[1] < 512  # cropped to the oranges
    assert np.asarray(answer.convert("L"))[0, 0] > 235  # white where the background was

    not_an_image = tmp_path / "notes.png"
    not_an_image.write_text("this is text, not a picture")
    page.uncheck("#crop")
    page.fill("#crop-margin", "lots")
    page.set_input_files("#files", str(not_an_image))
    page.wait_for_selector("#results .card[data-state=failed]", timeout=60_000)
    error = page.locator("#results .card .error").inner_text()
    assert error.startswith("Error 422") and "crop_margin" in error  # the options come first
    assert elsewhere == []
    page.close()


def test_docs_work_offline(server, browser):
    page = browser.new_page()
    elsewhere = local_only(page, server)
    page.goto(server + "/docs")
    page.wait_for_selector(".swagger-ui .info .title:has-text('cutout')", timeout=60_000)
    page.wait_for_selector(".opblock-summary-path:has-text('/v1/cutout')")
    assert elsewhere == []
    page.close()
