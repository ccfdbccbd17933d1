"""Driving the play page in Debian's Chromium through Playwright (tests only; never downloads a browser)."""

from __future__ import annotations

import os
import time
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
REPO = Path(__file__).resolve().parents[2]


def launch(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def stats(page) -> dict:
    return page.evaluate("""() => ({frames: relicPlay.frames, fps: relicPlay.fps, n: relicPlay.lastN,
        path: relicPlay.path.map(p => p.slice()), latency: relicPlay.latency, mem: relicPlay.mem,
        playing: relicPlay.playing, width: relicPlay.info.width, height: relicPlay.info.height,
        hudFps: document.getElementById('hud-fps').textContent,
        hudLatency: document.getElementById('hud-latency').textContent,
        hudMem: document.getElementById('hud-mem').textContent,
        hudFrames: document.getElementById('hud-frames').textContent})""")


def canvas_png(page, selector: str = "#view") -> str:
    return page.evaluate(f"() => document.querySelector('{selector}').toDataURL('image/png')")


def wait_frames(page, more: int, timeout: float = 60.0) -> dict:
    """Wait until ``more`` further frames have been drawn; returns the stats."""
    start = stats(page)["frames"]
    deadline = time.monotonic() + timeout
    while True:
        s = stats(page)
        if s["frames"] >= start + more:
            return s
        if time.monotonic() > deadline:
            raise AssertionError(f"only {s['frames'] - start} of {more} frames arrived in {timeout} s: {s}")
        page.wait_for_timeout(50)


def save_screenshot(page, tmp_path: Path) -> Path:
    """Always to tmp_path/play.png; also to docs/images/play.png when RELIC_UPDATE_SCREENSHOT=1."""
    out = tmp_path / "play.png"
    page.screenshot(path=str(out), full_page=True)
    if os.environ.get("RELIC_UPDATE_SCREENSHOT") == "1":
        from relic.fileio import atomic_path

        with atomic_path(REPO / "docs" / "images" / "play.png") as tmp:
            tmp.write_bytes(out.read_bytes())
    return out
