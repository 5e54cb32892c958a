"""The monitor page paints the live picture, and paints the right half in the right place."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from agecast.frames import FxState
from agecast.media.protocol import Flags, LayoutCode, PictureHeader
from agecast.sources.testpattern import read_counter
from tests.e2e.conftest import (
    HEIGHT,
    WIDTH,
    AgecastServer,
    Watched,
    expected_frame,
    grab_canvas,
    psnr,
    wait_painting,
)

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def test_page_paints_live_frames(server: AgecastServer, page: Page, shots: Path) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 10)
    first = page.evaluate("agecast.painted")
    page.wait_for_function(f"agecast.painted > {first + 10}")
    assert page.evaluate("agecast.codec") == "h264"
    assert page.evaluate("agecast.state") == "live"
    picture = grab_canvas(page)
    assert picture.shape == (HEIGHT, 2 * WIDTH, 3)  # raw | aged, at the stream's own size
    assert picture.std() > 30, "the canvas is blank"
    page.wait_for_function("document.querySelector('#m-g2g').textContent.match(/^\\d+ \\/ \\d+$/)")
    assert page.inner_text("#fx-badge") == "FX ON"
    assert "Test pattern" in page.inner_text("#identity-name")
    assert page.is_hidden("#notice")
    counts = page.evaluate("agecast.counts")
    assert counts["errors"] == 0
    glass = page.evaluate("agecast.glass")
    assert 0 < glass["p50"] < 5000
    page.screenshot(path=str(shots / "monitor-side-by-side.png"))


def _changed(raw: np.ndarray, aged: np.ndarray) -> np.ndarray:
    """Pixels where the aged half visibly differs from the raw half."""
    return np.abs(raw.astype(int) - aged.astype(int)).max(axis=2) > 40


def _fx_frame(page: Page) -> tuple[np.ndarray, int]:
    """A canvas grab whose halves show the same frame number and the effect on the face."""
    for _ in range(30):
        picture = grab_canvas(page)
        raw, aged = picture[:, :WIDTH], picture[:, WIDTH:]
        n = read_counter(raw)
        if n == read_counter(aged) and _changed(raw, aged).mean() > 0.0005:
            return picture, n
        page.wait_for_timeout(150)
    pytest.fail("no painted frame with the same counter in both halves and the effect on")


def test_raw_half_is_the_source_and_aged_half_is_the_effect(
    server: AgecastServer, page: Page
) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 10)
    picture, n = _fx_frame(page)
    raw, aged = picture[:, :WIDTH], picture[:, WIDTH:]
    source = expected_frame(n)
    # Left half: the camera picture, untouched but for H.264 loss (4:2:0 chroma at the bars'
    # edges costs most of it) ...
    assert psnr(raw, source) >= 28.0
    # ... with its colours decoded as the BT.601 they were encoded with: flat areas match
    # (decoding as BT.709 puts the saturated bars 10+ levels off).
    error = np.abs(raw.astype(int) - source.astype(int)).max(axis=2)
    assert np.percentile(error, 75) <= 4
    # Where the halves differ is the face the identity changed: some of the picture, not all.
    changed = _changed(raw, aged)
    assert changed.mean() < 0.25, f"{changed.mean():.2%} of the halves differ"
    # Outside the face the two halves are the same picture.
    assert psnr(raw[~changed], aged[~changed]) >= 30.0
    # Inside it, the left half is still the source and the right one is not: swapped halves,
    # a doubled raw half or an unpainted canvas all fail here.
    assert psnr(aged[changed], source[changed]) < psnr(raw[changed], source[changed]) - 6.0


def test_views_crop_the_picture_client_side(server: AgecastServer, page: Page, shots: Path) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 5)
    page.keyboard.press("2")
    page.wait_for_function("agecast.view === 'raw'")
    page.wait_for_timeout(300)
    raw = grab_canvas(page)
    assert raw.shape == (HEIGHT, WIDTH, 3)
    assert psnr(raw, expected_frame(read_counter(raw))) >= 28.0
    page.keyboard.press("3")
    page.wait_for_function("agecast.view === 'aged'")
    page.keyboard.press("Space")  # A/B: aged → raw
    page.wait_for_function("agecast.view === 'raw'")
    page.keyboard.press("t")  # and back
    page.wait_for_function("agecast.view === 'aged'")
    page.keyboard.press("1")
    page.wait_for_function("agecast.view === 'side-by-side'")
    page.wait_for_timeout(200)
    assert grab_canvas(page).shape == (HEIGHT, 2 * WIDTH, 3)

    # Wipe: drag the split line to a quarter of the picture with the mouse.
    page.keyboard.press("4")
    page.wait_for_function("agecast.view === 'wipe'")
    box = page.locator("#picture").bounding_box()
    assert box is not None
    y = box["y"] + box["height"] / 2
    page.mouse.move(box["x"] + box["width"] / 2, y)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.25, y, steps=5)
    page.mouse.up()
    assert page.evaluate("agecast.display.split") == pytest.approx(0.25, abs=0.02)
    assert page.is_visible("#wipe-line")
    page.keyboard.press("g")
    page.wait_for_function("agecast.display.guides.on")
    page.wait_for_timeout(300)
    page.screenshot(path=str(shots / "monitor-wipe-guides.png"))
    wiped = grab_canvas(page)
    assert wiped.shape == (HEIGHT, WIDTH, 3)
    # Button clicks drive the same views.
    page.click("button[data-view='aged']")
    assert page.evaluate("agecast.view") == "aged"
    assert page.get_attribute("button[data-view='aged']", "aria-pressed") == "true"
    page.keyboard.press("h")  # hide the overlay: the picture alone, as large as it fits
    page.wait_for_timeout(300)
    assert page.is_hidden("#top") and page.is_hidden("#bottom")
    bare = page.locator("#picture").bounding_box()
    assert bare is not None and bare["width"] >= 1400  # 16:9 in a 1440×900 window
    page.screenshot(path=str(shots / "monitor-bare.png"))


def test_malformed_messages_are_ignored(
    server: AgecastServer, browser: Browser, watched: Watched
) -> None:
    """Garbage on the socket is dropped with a warning; the page keeps painting."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = watched.attach(context.new_page())
    # Keep a handle on the page's sockets so the test can feed the real handlers.
    page.add_init_script(
        """(() => {
          const Native = window.WebSocket;
          window.__sockets = [];
          window.WebSocket = class extends Native {
            constructor(...args) { super(...args); window.__sockets.push(this); }
          };
        })();"""
    )
    try:
        page.goto(server.page_url("/"))
        wait_painting(page, 5)
        page.evaluate(
            """() => {
              const feed = (data) => {
                for (const ws of window.__sockets) {
                  if (ws.url.includes('/ws/monitor') && ws.onmessage) ws.onmessage({ data });
                }
              };
              feed('not json');
              feed('{"no": "type"}');
              feed('{"type": "hello"}');
              feed('{"type": "status", "identity": 7, "look": null}');
              feed('{"type": "mystery"}');
              feed(new ArrayBuffer(7));
              const bad = new Uint8Array(60); bad.set([65, 71, 67, 49, 1]);
              new DataView(bad.buffer).setUint32(32, 9999, true);  // length past the end
              feed(bad.buffer);
              const wrong = new Uint8Array(60); wrong.set([1, 2, 3, 4]);
              feed(wrong.buffer);
            }"""
        )
        before = page.evaluate("agecast.painted")
        page.wait_for_function(f"agecast.painted > {before + 10}")
        assert len(watched.warnings) >= 5, watched.warnings
        assert not watched.errors
    finally:
        context.close()


def test_view_geometry(server: AgecastServer, page: Page) -> None:
    """Which part of the stream picture each view draws, for every stream layout."""
    page.goto(server.page_url("/"))
    plans = page.evaluate(
        """async () => {
          const { planView } = await import('/ui/display.js');
          const parts = (p) => p.parts.map(({ src, dx }) => [src.x, src.w, dx]);
          return {
            sbs: planView('side-by-side', 'side-by-side', 1280, 360, 0.5),
            raw: planView('raw', 'side-by-side', 1280, 360, 0.5),
            aged: planView('aged', 'side-by-side', 1280, 360, 0.5),
            wipe: parts(planView('wipe', 'side-by-side', 1280, 360, 0.25)),
            wipeSize: planView('wipe', 'side-by-side', 1280, 360, 0.25).w,
            agedOnlyRaw: planView('raw', 'aged', 640, 360, 0.5),
            agedOnlyWipe: planView('wipe', 'aged', 640, 360, 0.5),
          };
        }"""
    )
    assert (plans["sbs"]["w"], plans["sbs"]["h"], len(plans["sbs"]["regions"])) == (1280, 360, 2)
    assert plans["raw"]["parts"][0]["src"] == {"x": 0, "y": 0, "w": 640, "h": 360}
    assert plans["aged"]["parts"][0]["src"] == {"x": 640, "y": 0, "w": 640, "h": 360}
    # Wipe at a quarter: raw's left quarter, then aged from the same column on.
    assert plans["wipe"] == [[0, 160, 0], [800, 480, 160]]
    assert plans["wipeSize"] == 640
    assert plans["agedOnlyRaw"]["missing"] == "raw"
    assert plans["agedOnlyWipe"]["missing"] == "raw"


def test_live_timecode_is_the_servers_time_of_day_wherever_the_browser_is(
    server: AgecastServer, browser: Browser, watched: Watched
) -> None:
    """Takes are stamped with the server's local time of day; a browser in another zone (here
    UTC+14 or UTC-11, whichever is further from the server) shows the same timecode live."""
    from datetime import datetime

    offset_h = (datetime.now().astimezone().utcoffset() or timedelta()).total_seconds() / 3600
    zone = "Pacific/Pago_Pago" if offset_h > 1 else "Pacific/Kiritimati"
    context = browser.new_context(viewport={"width": 1440, "height": 900}, timezone_id=zone)
    try:
        page = watched.attach(context.new_page())
        page.goto(server.page_url("/"))
        wait_painting(page, 5)
        assert page.evaluate("new Date().getTimezoneOffset()") != -offset_h * 60  # a real gap
        page.wait_for_function(
            "/^\\d\\d:\\d\\d:\\d\\d:\\d\\d$/.test(document.querySelector('#m-tc').textContent)"
        )
        shown = page.inner_text("#m-tc")
        now = datetime.now()  # the server's zone: this process's
        hh, mm, ss = (int(part) for part in shown.split(":")[:3])
        shown_s = hh * 3600 + mm * 60 + ss
        now_s = now.hour * 3600 + now.minute * 60 + now.second
        gap = min(abs(shown_s - now_s), 86400 - abs(shown_s - now_s))
        assert gap <= 5, f"live timecode {shown} is not the server's time of day {now:%H:%M:%S}"
    finally:
        context.close()


def test_page_names_every_fx_state_as_the_server_does(server: AgecastServer, page: Page) -> None:
    """Each FX state the server can put in a picture header reads back in the page as the same
    name, and the FX badge has its own words for it (none falls back to "FX —" unknown)."""
    page.goto(server.page_url("/"))
    headers = [
        list(PictureHeader(Flags(0), LayoutCode.RAW, fx, 7, 1, 2, 64, 32, 0).pack())
        for fx in FxState
    ]
    seen = page.evaluate(
        """async (headers) => {
          const { parsePicture } = await import('/ui/protocol.js');
          const { FX_TEXT } = await import('/ui/overlay.js');
          return headers.map((bytes) => {
            const fx = parsePicture(new Uint8Array(bytes).buffer).header.fx;
            return [fx, Object.hasOwn(FX_TEXT, fx)];
          });
        }""",
        headers,
    )
    assert seen == [[fx.value, True] for fx in FxState]
