"""Operator controls change what every viewer sees."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tests.e2e.conftest import WIDTH, AgecastServer, Watched, grab_canvas, wait_painting

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


def _changed_fraction(page: Page) -> float:
    """How much of the aged half visibly differs from the raw half (the face the FX changed)."""
    picture = grab_canvas(page).astype(int)
    return float((np.abs(picture[:, :WIDTH] - picture[:, WIDTH:]).max(axis=2) > 20).mean())


def _wait_halves(page: Page, *, same: bool, timeout_s: float = 10.0) -> float:
    """Poll until the aged half is the raw picture (same=True) or shows the effect."""
    value = 0.0
    for _ in range(int(timeout_s / 0.2)):
        value = _changed_fraction(page)
        if (value < 0.0003) if same else (value > 0.0015):
            return value
        page.wait_for_timeout(200)
    want = "the same" if same else "different"
    raise AssertionError(f"{value:.3%} of the halves differ; wanted them {want}")


def test_bypass_from_the_panel_reaches_every_viewer(
    server: AgecastServer, page: Page, browser: Browser, watched: Watched, shots: Path
) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 5)
    other_context = browser.new_context(viewport={"width": 1280, "height": 800})
    other = watched.attach(other_context.new_page())
    try:
        other.goto(server.page_url("/"))
        wait_painting(other, 5)
        _wait_halves(page, same=False)

        page.click("button[data-action='panel']")
        page.wait_for_selector("#panel", state="visible")
        page.click("#c-bypass")
        page.wait_for_function("agecast.status && agecast.status.look.bypass === true")
        # Bypassed: the aged half is the raw picture, for this viewer and the other one.
        _wait_halves(page, same=True)
        _wait_halves(other, same=True)
        page.wait_for_function("document.querySelector('#fx-badge').textContent.includes('BYPASS')")
        other.wait_for_function(
            "document.querySelector('#c-bypass').getAttribute('aria-pressed') === 'true'"
        )
        page.screenshot(path=str(shots / "monitor-controls-bypass.png"))

        # Key B puts the effect back.
        page.click("#stage", position={"x": 20, "y": 20})
        page.keyboard.press("b")
        page.wait_for_function("agecast.status && agecast.status.look.bypass === false")
        _wait_halves(page, same=False)
        page.wait_for_function("document.querySelector('#fx-badge').textContent === 'FX ON'")

        # A slider goes to the server and comes back in everyone's panel.
        page.eval_on_selector(
            "#c-blend",
            "el => { el.value = '0.5'; el.dispatchEvent(new Event('input', {bubbles: true}));"
            " el.dispatchEvent(new Event('change', {bubbles: true})); }",
        )
        other.wait_for_function("agecast.status && agecast.status.look.blend === 0.5")
    finally:
        server.control(blend=1.0)
        other_context.close()


def test_stream_layout_change_is_followed_by_the_decoder(
    server: AgecastServer, page: Page, shots: Path
) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 5)
    canvas_width = "document.getElementById('video').width"
    page.click("button[data-action='panel']")
    page.select_option("#c-layout", "aged")
    # The picture halves in width: the decoder is reconfigured at the server's new key frame.
    page.wait_for_function(f"{canvas_width} === {WIDTH}")
    before = page.evaluate("agecast.painted")
    page.wait_for_function(f"agecast.painted > {before + 5}")
    assert page.inner_text("#label-a") == "AGED ONLY"
    page.keyboard.press("Escape")
    page.keyboard.press("2")  # raw is not in this stream: say so rather than show a wrong label
    page.wait_for_timeout(300)
    assert "RAW NOT IN STREAM" in page.inner_text("#label-a")
    page.screenshot(path=str(shots / "monitor-aged-only-stream.png"))
    page.keyboard.press("1")
    server.control(layout="side-by-side")
    page.wait_for_function(f"{canvas_width} === {2 * WIDTH}")
    assert page.evaluate("agecast.counts")["errors"] == 0
