"""In the page, against the real server: switch identity, save and apply a preset, re-render a
take under review into a new version and compare it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.conftest import REPO, AgecastServer, grab_canvas, wait_painting
from tests.takes.review_media import HEIGHT, WIDTH, make_take, read_code

if TYPE_CHECKING:
    from playwright.sync_api import Page


def open_controls(page: Page, server: AgecastServer) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 3)
    page.click("button[data-action='panel']")
    page.wait_for_selector("#panel", state="visible")


def test_identity_picker_switches_the_live_identity(
    server: AgecastServer, page: Page, shots: Path
) -> None:
    demo = json.loads((REPO / "models" / "demo-aged" / "manifest.json").read_text())
    open_controls(page, server)
    page.wait_for_function("document.querySelectorAll('#c-identity option').length >= 2")
    options = page.eval_on_selector_all("#c-identity option", "os => os.map(o => o.value)")
    assert {"testpattern", "demo-aged"} <= set(options)
    assert page.input_value("#c-identity") == "testpattern"  # the one running
    try:
        page.select_option("#c-identity", "demo-aged")
        page.wait_for_function(
            "agecast.status && agecast.status.identity.id === 'demo-aged'", timeout=60_000
        )
        page.wait_for_function(
            "document.querySelector('#identity-name').textContent"
            f" === {json.dumps(demo['display_name'])}"
        )
        page.wait_for_function("document.querySelector('#c-identity-note').textContent === ''")
        assert page.input_value("#c-identity") == "demo-aged"
        page.screenshot(path=str(shots / "monitor-identity-picked.png"))
    finally:
        server.control(identity="testpattern")
    page.wait_for_function("agecast.status.identity.id === 'testpattern'")
    page.wait_for_function("document.querySelector('#c-identity').value === 'testpattern'")


def test_a_preset_saved_in_the_page_comes_back_when_applied(
    server: AgecastServer, page: Page
) -> None:
    try:
        server.control(blend=0.5)
        open_controls(page, server)
        page.wait_for_function("agecast.status && agecast.status.look.blend === 0.5")
        page.fill("#c-preset-name", "e2e-half")
        page.click("#c-preset-save")
        page.wait_for_function(
            "[...document.querySelectorAll('#c-preset option')].some(o => o.value === 'e2e-half')"
        )
        server.control(blend=1.0)
        page.wait_for_function("agecast.status.look.blend === 1")
        page.select_option("#c-preset", "e2e-half")
        page.click("#c-preset-apply")
        page.wait_for_function("agecast.status.look.blend === 0.5")
        page.wait_for_function("document.querySelector('#c-blend-value').textContent === '50%'")
        assert page.evaluate("agecast.status.preset") == "e2e-half"
    finally:
        server.control(blend=1.0)


def test_rerender_of_the_take_under_review(server: AgecastServer, page: Page, shots: Path) -> None:
    take = make_take(server.state_dir / "takes", "rr", "1", frames=20)
    page.goto(server.page_url("/"))
    wait_painting(page, 3)
    page.click("button[data-action='takes']")
    page.click(f"button.take[data-id='{take.id}']")
    page.wait_for_function("agecast.lastPainted.index === 0 && agecast.view === 'side-by-side'")
    page.click("#t-render")
    page.wait_for_selector("#render", state="visible")
    page.wait_for_function("document.querySelectorAll('#rr-identity option').length >= 2")
    page.eval_on_selector(
        "#rr-blend",
        "el => { el.value = '0.5'; el.dispatchEvent(new Event('input', {bubbles: true})); }",
    )
    page.click("#rr-go")
    page.wait_for_function(
        "document.querySelector('#rr-status').textContent.includes('V3 rendered')", timeout=60_000
    )
    page.screenshot(path=str(shots / "monitor-rerendered.png"))
    # The review now compares raw | the new version, and the pickers offer it.
    page.wait_for_function("document.querySelector('#t-b').value === 'v3'")
    page.wait_for_function(
        f"document.querySelector('#state-badge').textContent === 'REVIEW — take {take.id} V3'"
    )
    assert (take.path / "versions" / "v3").is_dir()
    render = json.loads((take.path / "versions" / "v3" / "render.json").read_text())
    assert render["settings"] == {"blend": 0.5}
    page.keyboard.press(".")
    page.wait_for_function("agecast.lastPainted.index === 1")
    picture = grab_canvas(page)
    assert picture.shape[:2] == (HEIGHT, 2 * WIDTH)
    # a re-render of the raw picture with no face in it: the same frame, both halves
    assert read_code(picture[:, :WIDTH]) == read_code(picture[:, WIDTH:]) == 1
