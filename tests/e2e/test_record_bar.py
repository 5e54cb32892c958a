"""The record bar: REC from the operator panel records a take; a red REC badge while it runs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.e2e.conftest import AgecastServer, wait_painting

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_rec_and_stop_from_the_panel_record_a_take(
    server: AgecastServer, page: Page, shots: Path
) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 5)
    page.click("button[data-action='panel']")
    page.wait_for_selector("#record", state="visible")
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
    assert page.get_attribute("#r-rec", "aria-pressed") == "true"
    assert page.is_disabled("#r-scene")
    # the server's status counts the take's time; the badge shows it
    page.wait_for_function(
        "document.querySelector('#rec-time').textContent >= '00:02'", timeout=20_000
    )
    page.screenshot(path=str(shots / "monitor-recording.png"))

    page.click("#r-rec")
    page.wait_for_selector("#rec-badge", state="hidden")
    page.wait_for_function("document.querySelector('#r-message').textContent.includes('e2e_1_A')")
    assert page.input_value("#r-take") == "2"  # ready for the next take
    info = json.loads((server.state_dir / "takes" / "e2e_1_A" / "take.json").read_text())
    assert info["status"] == "complete" and info["frames"] >= 45 and info["camera"] == "A"
