"""The record bar: REC in the header records the take named in the operator panel; a solid red
tally with the take's running time while it records; the takes panel follows by itself."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.conftest import AgecastServer, wait_painting

if TYPE_CHECKING:
    from playwright.sync_api import Page


def parse_rgb(css: str) -> tuple[int, ...]:
    """'rgb(255, 31, 31)' → (255, 31, 31)."""
    return tuple(int(float(v)) for v in css[css.index("(") + 1 : css.index(")")].split(",")[:3])


def test_rec_and_stop_from_the_panel_record_a_take(
    server: AgecastServer, page: Page, shots: Path
) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 5)
    page.click("button[data-action='panel']")
    page.wait_for_selector("#record", state="visible")
    page.click("button[data-action='takes']")  # open during the take: it must follow by itself
    page.wait_for_selector("#takes", state="visible")
    assert page.is_hidden("#rec-badge")

    page.fill("#r-scene", "a/b")
    page.click("#r-rec")
    page.wait_for_function("document.querySelector('#r-message').textContent.includes('scene')")
    assert page.get_attribute("#r-rec", "aria-pressed") == "false"

    page.fill("#r-scene", "e2e")
    page.fill("#r-take", "1")
    page.fill("#r-camera", "A")
    page.click("#r-rec")
    page.wait_for_selector("#rec-badge", state="visible")
    assert "e2e_1_A" in page.inner_text("#rec-badge")
    # A tally: solid bright red behind white text, not a dim red outline.
    colours = page.eval_on_selector(
        "#rec-badge",
        "el => { const s = getComputedStyle(el); return [s.backgroundColor, s.color]; }",
    )
    background, text = (parse_rgb(c) for c in colours)
    assert background[0] >= 220 and max(background[1:]) <= 60, colours
    assert min(text) >= 230, colours
    assert "e2e_1_A" in page.inner_text("#m-take")
    assert page.get_attribute("#r-rec", "aria-pressed") == "true"
    assert page.is_disabled("#r-scene")
    # the tally counts wall time from the take's start (not recorded frames / fps, which runs
    # slow when the pipeline cannot keep up)
    page.wait_for_function(
        "document.querySelector('#rec-time').textContent >= '00:02'", timeout=20_000
    )
    page.wait_for_function(
        "agecast.status.recording && agecast.status.recording.frames >= 45", timeout=30_000
    )
    page.wait_for_function(
        "[...document.querySelectorAll('#takes-list .take')].some(b =>"
        " b.dataset.id === 'e2e_1_A' && b.innerText.includes('RECORDING'))"
    )
    page.screenshot(path=str(shots / "monitor-recording.png"))
    # A page opened mid-take shows the same running time (the take's own start), not zero.
    late = page.context.new_page()
    late.goto(server.page_url("/"))
    late.wait_for_selector("#rec-badge", state="visible")
    seconds = "(() => { const [m, s] = document.querySelector('#rec-time').textContent"
    seconds += ".split(':').map(Number); return 60 * m + s; })()"
    late.wait_for_function(f"{seconds} >= {page.evaluate(seconds)} - 1")
    assert "e2e_1_A" in late.inner_text("#rec-badge")
    late.close()

    page.click("#r-rec")
    page.wait_for_selector("#rec-badge", state="hidden")
    page.wait_for_function("document.querySelector('#r-message').textContent.includes('e2e_1_A')")
    assert page.input_value("#r-take") == "2"  # ready for the next take
    # The list was not reloaded by hand: the take is no longer RECORDING there.
    page.wait_for_function(
        "[...document.querySelectorAll('#takes-list .take')].some(b =>"
        " b.dataset.id === 'e2e_1_A' && !b.innerText.includes('RECORDING'))"
    )
    info = json.loads((server.state_dir / "takes" / "e2e_1_A" / "take.json").read_text())
    assert info["status"] == "complete" and info["frames"] >= 45 and info["camera"] == "A"
