"""Joining mid-stream, the server going away and coming back, and the JPEG fallback."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

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


def test_join_mid_stream_waits_for_the_key_frame(
    server: AgecastServer, page: Page, browser: Browser, watched: Watched
) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 30)  # well into the stream: the next viewer joins between key frames
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    late = watched.attach(context.new_page())
    try:
        late.goto(server.page_url("/"))
        late.wait_for_function("agecast.painted > 0", timeout=10_000)
        # The server forces an IDR for a joining viewer: the first picture comes at once,
        # and the decoder never saw a delta frame before a key frame.
        assert late.evaluate("agecast.firstPaintMs") < 2500
        assert late.evaluate("agecast.counts")["errors"] == 0
        late.wait_for_function("agecast.painted > 10")
        # The first viewer was not disturbed.
        before = page.evaluate("agecast.painted")
        page.wait_for_function(f"agecast.painted > {before + 5}")
        assert page.evaluate("agecast.counts")["errors"] == 0
    finally:
        context.close()


def test_server_restart_shows_reconnecting_then_paints_again(
    server: AgecastServer, page: Page, shots: Path
) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 5)
    server.stop()
    try:
        page.wait_for_function("agecast.state === 'reconnecting'", timeout=10_000)
        page.wait_for_selector("#notice", state="visible")
        assert page.inner_text("#notice-title") == "RECONNECTING"
        assert page.inner_text("#state-badge") == "RECONNECTING"
        page.wait_for_timeout(1200)  # let the dimmed picture and notice settle for the shot
        page.screenshot(path=str(shots / "monitor-reconnecting.png"))
    finally:
        server.start()
    before = page.evaluate("agecast.painted")
    # Backoff is capped at 2 s: the page is back within a few seconds of the server.
    page.wait_for_function(f"agecast.painted > {before + 10}", timeout=15_000)
    page.wait_for_function("agecast.state === 'live'")
    assert page.is_hidden("#notice")


def test_jpeg_fallback_paints(server: AgecastServer, page: Page, shots: Path) -> None:
    page.goto(server.page_url("/?codec=jpeg"))
    wait_painting(page, 10)
    assert page.evaluate("agecast.codec") == "jpeg"
    assert page.inner_text("#m-format").startswith("JPEG")
    picture = grab_canvas(page)
    assert picture.shape == (HEIGHT, 2 * WIDTH, 3)
    raw = picture[:, :WIDTH]
    assert psnr(raw, expected_frame(read_counter(raw))) >= 28.0
    # Stale decodes are dropped, never painted: the painted index only goes forward.
    indexes = []
    for _ in range(20):
        indexes.append(page.evaluate("agecast.lastPainted.index"))
        page.wait_for_timeout(50)
    assert indexes == sorted(indexes)
    page.screenshot(path=str(shots / "monitor-jpeg.png"))


def test_undecodable_codec_falls_back_to_jpeg(
    server: AgecastServer, browser: Browser, watched: Watched
) -> None:
    """A browser that cannot decode the server's codec asks for JPEG instead of going dark."""
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    page = watched.attach(context.new_page())
    # Make the hello name a codec no browser has.
    page.add_init_script(
        """(() => {
          const Native = window.WebSocket;
          window.WebSocket = class extends Native {
            set onmessage(fn) {
              super.onmessage = (event) => {
                if (typeof event.data === 'string' && event.data.includes('"hello"')) {
                  const hello = JSON.parse(event.data);
                  hello.codec = 'avc1.FFFFFF';
                  return fn({ data: JSON.stringify(hello) });
                }
                return fn(event);
              };
            }
            get onmessage() { return super.onmessage; }
          };
        })();"""
    )
    try:
        page.goto(server.page_url("/"))
        page.wait_for_function("agecast.codec === 'jpeg' && agecast.painted > 5")
        assert page.inner_text("#m-format").startswith("JPEG")
    finally:
        context.close()
