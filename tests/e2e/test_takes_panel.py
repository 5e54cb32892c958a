"""The takes panel in real Chromium: list, review a take raw | aged, frame step, views, compare
versions, back to live."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from agecast.takes.store import Take
from tests.e2e.conftest import AgecastServer, grab_canvas, wait_painting
from tests.takes.review_media import HEIGHT, TINTS, WIDTH, make_take, read_code

if TYPE_CHECKING:
    from playwright.sync_api import Page


def tint_of(picture: np.ndarray) -> str:
    mean = picture[int(picture.shape[0] / 3) :].reshape(-1, 3).mean(axis=0)
    return min(TINTS, key=lambda name: float(np.abs(mean - np.array(TINTS[name])).sum()))


def halves(page: Page) -> tuple[np.ndarray, np.ndarray]:
    picture = grab_canvas(page)
    assert picture.shape[:2] == (HEIGHT, 2 * WIDTH), picture.shape
    return picture[:, :WIDTH], picture[:, WIDTH:]


def wait_frame(page: Page, index: int) -> None:
    page.wait_for_function(f"agecast.lastPainted.index === {index}")


@pytest.fixture(scope="module")
def take(server: AgecastServer) -> Take:
    return make_take(server.state_dir / "takes", "e2e", "1", frames=40)


def test_takes_panel_reviews_a_take_frame_by_frame(
    server: AgecastServer, page: Page, take: Take, shots: Path
) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 3)
    page.click("button[data-action='takes']")
    item = page.wait_for_selector(f"button.take[data-id='{take.id}']")
    assert "Scene e2e · Take 1" in item.inner_text() and "0:01.3" in item.inner_text()
    page.wait_for_function(
        f"document.querySelector(\"button.take[data-id='{take.id}'] img\").naturalWidth > 0"
    )
    page.screenshot(path=str(shots / "takes-panel.png"))

    item.click()
    page.wait_for_function("document.body.classList.contains('reviewing')")
    page.wait_for_function(
        "document.querySelector('#state-badge').textContent === 'REVIEW — take e2e_1 V1'"
    )
    wait_frame(page, 0)
    raw, aged = halves(page)
    assert read_code(raw) == read_code(aged) == 0
    assert (tint_of(raw), tint_of(aged)) == ("raw", "v1")
    assert page.inner_text("#label-a") == "RAW" and page.inner_text("#label-b") == "V1"
    assert page.inner_text("#identity-name") == "testpattern"  # the take's, not the live one
    assert page.inner_text("#identity-age") == "age 70"

    # Frame step with the keys and the buttons: the painted frame follows, both halves.
    page.click("#stage", position={"x": 20, "y": 20})
    page.keyboard.press(".")
    wait_frame(page, 1)
    page.keyboard.press(".")
    page.keyboard.press(".")
    wait_frame(page, 3)
    raw, aged = halves(page)
    assert read_code(raw) == read_code(aged) == 3
    page.keyboard.press(",")
    wait_frame(page, 2)
    assert read_code(halves(page)[0]) == 2
    page.click("#transport button[data-t='next']")
    wait_frame(page, 3)
    page.wait_for_function("document.querySelector('#t-pos').textContent.includes('01:00:00:03')")

    # Scrub to a frame, then play from there.
    page.eval_on_selector(
        "#t-scrub",
        "el => { el.value = '20'; el.dispatchEvent(new Event('input', {bubbles: true}));"
        " el.dispatchEvent(new Event('change', {bubbles: true})); }",
    )
    wait_frame(page, 20)
    assert read_code(halves(page)[1]) == 20
    page.click("#t-play")
    page.wait_for_function("agecast.lastPainted.index > 24")
    page.click("#t-play")
    page.wait_for_function("document.querySelector('#t-play').ariaPressed === 'false'")
    page.evaluate("agecast.takes.seek(24)")
    wait_frame(page, 24)

    # The live views work on the review picture — paused, so from the picture kept in the page.
    page.keyboard.press("3")
    page.wait_for_function("agecast.view === 'aged'")
    picture = grab_canvas(page)
    assert picture.shape[:2] == (HEIGHT, WIDTH)
    assert tint_of(picture) == "v1" and read_code(picture) == 24
    page.keyboard.press("4")
    page.evaluate("agecast.display.setSplit(0.5)")
    picture = grab_canvas(page)
    assert (tint_of(picture[:, : WIDTH // 2]), tint_of(picture[:, WIDTH // 2 :])) == ("raw", "v1")
    assert page.evaluate("agecast.lastPainted.index") == 24  # no new picture was needed

    # Dual screen: the second window gets the review picture too, the same frame as the main.
    with page.expect_popup() as popup:
        page.click("button[data-action='dual']")
    second = popup.value
    second.set_default_timeout(20_000)
    page.wait_for_function("agecast.displays === 2")
    page.keyboard.press(".")
    second.wait_for_function("agecast.lastPainted.index === 25")
    picture = grab_canvas(second)  # the second screen shows aged: V1
    assert read_code(picture) == 25 and tint_of(picture) == "v1"
    assert second.inner_text("#state-badge") == "REVIEW — take e2e_1 V1"
    assert page.evaluate("agecast.lastPainted.index") == 25
    second.close()
    page.keyboard.press("1")

    # Compare the live recording with its re-render: V1 | V2, each in its half, same frame.
    page.select_option("#t-a", "v1")
    page.select_option("#t-b", "v2")
    page.wait_for_function(
        "document.querySelector('#state-badge').textContent === 'REVIEW — take e2e_1 V1 | V2'"
    )
    page.keyboard.press(",")  # a frame shown after the switch
    wait_frame(page, 24)
    left, right = halves(page)
    assert (tint_of(left), tint_of(right)) == ("v1", "v2")
    assert read_code(left) == read_code(right) == 24
    page.screenshot(path=str(shots / "takes-review-v1-v2.png"))

    # Back to live: the live picture (1280×360 side by side) comes back.
    page.click("#t-live")
    page.wait_for_function("!document.body.classList.contains('reviewing')")
    page.wait_for_function("agecast.state === 'live'")
    painted = page.evaluate("agecast.painted")
    page.wait_for_function(f"agecast.painted > {painted + 5}")
    assert grab_canvas(page).shape[:2] == (360, 1280)
    assert page.inner_text("#label-b") == "AGED"
