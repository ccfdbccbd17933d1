"""The play page in Debian's headless Chromium (Playwright), streaming the real StreamingSession.

The default model (``relic.serve.engine.default_model``: the shipped relic-tiny, or the relic-tiny preset
with random weights while none is shipped, then the frames are not pretty). What is checked is the loop:
scene -> Start -> keys -> frames arrive and change, HUD FPS > 0, the minimap path moves, screenshot.
"""

from __future__ import annotations

import math

import pytest

from relic.serve.app import EnginePool, create_app
from relic.serve.limits import ServeConfig
from relic.video import read_video

from .browser import canvas_png, launch, save_screenshot, wait_frames
from .helpers import ServerThread

pytestmark = [pytest.mark.browser, pytest.mark.slow]


@pytest.fixture(scope="module")
def real_server():
    import torch

    from relic.serve.engine import load_engines

    # one intra-op thread: on the shared 2-core test machine, more threads oversubscribe the CPU and make
    # every block many times slower
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        engines, _ = load_engines(count=1, progress=False)   # the default model (relic-tiny)
        cfg = ServeConfig(max_sessions=1)
        with ServerThread(create_app(EnginePool(engines), cfg), cfg) as srv:
            yield srv
    finally:
        torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch(p)
        yield b
        b.close()


def test_play_page_streams_the_real_session(real_server, browser, tmp_path):
    page = browser.new_page(viewport={"width": 1000, "height": 820})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(real_server.url)
    page.wait_for_selector(".scene")
    scenes = page.locator(".scene")
    assert scenes.count() >= 4
    scenes.nth(1).click()
    assert page.input_value("#prompt")  # the scene's caption became the prompt
    page.click("#start-button")
    page.wait_for_selector("#play:not([hidden])", timeout=60_000)
    s0 = wait_frames(page, 2)
    first = canvas_png(page)
    # hold W: the camera moves forward
    page.keyboard.down("w")
    assert page.locator('.key[data-key="w"]').get_attribute("class").split() == ["key", "down"]
    s1 = wait_frames(page, 12)
    moved = canvas_png(page)
    page.keyboard.down("ArrowLeft")
    s2 = wait_frames(page, 12)
    shot = save_screenshot(page, tmp_path)   # with W and ← held (lit in the key map)
    page.keyboard.up("ArrowLeft")
    page.keyboard.up("w")
    s3 = wait_frames(page, 8)   # two blocks: the last ones generated with the keys held have played
    # frames arrive and change
    assert s3["n"] > s0["n"] + 20 and first != moved != canvas_png(page)
    # the HUD shows a positive FPS, a latency, memory tokens and the frame count
    assert s3["fps"] > 0 and float(s3["hudFps"]) > 0
    assert s3["latency"] is not None and float(s3["hudLatency"]) > 0
    assert int(s3["hudMem"]) > 0 and int(s3["hudFrames"]) == s3["n"]
    # the minimap path moves: forward while W is held, then the heading turns left (counter-clockwise)
    path = s3["path"]
    start, after_w, after_left = s0["path"][-1], s1["path"][-1], s2["path"][-1]
    assert math.dist(start[:2], after_w[:2]) > 0
    turn = (after_left[2] - after_w[2] + 180) % 360 - 180
    assert turn > 0, (after_w, after_left)
    assert len(path) >= s3["frames"] - 1
    assert shot.stat().st_size > 10_000
    # mouse look (dragging, as pointer lock may be unavailable headless): moving right pans right
    box = page.locator("#view").bounding_box()
    page.mouse.move(box["x"] + 50, box["y"] + 50)
    page.mouse.down()
    for i in range(1, 21):
        page.mouse.move(box["x"] + 50 + 15 * i, box["y"] + 50)
        page.wait_for_timeout(20)
    page.mouse.up()
    s4 = wait_frames(page, 10)
    turn = (s4["path"][-1][2] - s3["path"][-1][2] + 180) % 360 - 180
    assert turn < 0, (s3["path"][-1], s4["path"][-1])
    # Record -> Stop -> the browser downloads an H.264 mp4 of the frames
    page.click("#record-button")
    page.wait_for_selector("#rec-dot:not([hidden])")
    wait_frames(page, 8)
    with page.expect_download(timeout=60_000) as download:
        page.click("#record-button")
    video = read_video(download.value.path())
    assert video.shape[0] >= 4 and video.shape[1:] == (s4["height"], s4["width"], 3)
    assert not errors, errors
    # New scene -> back to the start panel; a non-image upload is refused with a message
    page.click("#new-button")
    page.wait_for_selector("#start:not([hidden])")
    page.set_input_files("#upload", files=[{"name": "notes.txt", "mimeType": "image/png",
                                             "buffer": b"this is not an image"}])
    page.wait_for_function("document.getElementById('status').textContent.includes('refused')")
    assert "PNG, JPEG or WebP" in page.text_content("#status")
    page.close()
