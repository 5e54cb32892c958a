"""Dual screen: the second window is painted by the main one, in the same task: frame-locked."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest

from agecast.sources.testpattern import read_counter
from tests.e2e.conftest import AgecastServer, grab_canvas, wait_painting

if TYPE_CHECKING:
    from playwright.sync_api import Page

# Reads, in one task, both windows' last painted index and the frame number drawn in each
# canvas (the testpattern counter cells), so "same frame" is checked on the pixels too.
SAMPLE = """() => {
  const second = agecast.second;
  const counter = (canvas) => {
    const w = canvas.width, h = canvas.height, bits = 24;
    const top = Math.floor(h * 0.78), band = h - top;
    const cell = Math.floor(w / (bits + 2)), x0 = Math.floor((w - cell * bits) / 2);
    const row = canvas.getContext('2d').getImageData(0, top + Math.floor(band / 4), w, 1).data;
    let n = 0;
    for (let i = 0; i < bits; i++) {
      const x = x0 + i * cell + Math.floor(cell / 3);
      n = n * 2 + (row[4 * x] + row[4 * x + 1] + row[4 * x + 2] > 450 ? 1 : 0);
    }
    return n;
  };
  const mainCanvas = document.getElementById('video');
  const secondCanvas = second.document.getElementById('video');
  return {
    main: agecast.lastPainted.index,
    second: second.agecast.lastPainted.index,
    mainAt: agecast.lastPainted.at,
    secondAt: second.agecast.lastPainted.at,
    mainCounter: counter(mainCanvas),
    secondCounter: counter(secondCanvas),
  };
}"""


def test_second_window_is_frame_locked(server: AgecastServer, page: Page, shots: Path) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 5)
    with page.expect_popup() as popup_info:
        page.click("button[data-action='dual']")
    second = popup_info.value
    second.set_default_timeout(20_000)
    second.wait_for_function("window.agecast && window.agecast.painted > 5")
    assert page.evaluate("agecast.view") == "raw"  # main: raw …
    assert second.evaluate("agecast.view") == "aged"  # … second screen: aged
    assert second.evaluate("agecast.role") == "second"
    assert page.evaluate("agecast.displays") == 2

    samples = []
    for _ in range(60):
        samples.append(page.evaluate(SAMPLE))
        page.wait_for_timeout(37)  # lands at every phase of the ~33 ms frame period
    indexes = [s["main"] for s in samples]
    assert len(set(indexes)) > 10, "the picture did not move while sampling"
    for s in samples:
        assert s["main"] == s["second"], s
        assert s["mainAt"] == s["secondAt"], s
        assert s["mainCounter"] == s["secondCounter"], s
    # The second window's own view of itself agrees, and it moves on.
    seen = second.evaluate("agecast.lastPainted.index")
    second.wait_for_function(f"agecast.lastPainted.index !== {seen}")

    # Same frame, different pictures: main raw, second aged (the face differs).
    for _ in range(30):
        raw, aged = grab_canvas(page), grab_canvas(second)
        changed = np.abs(raw.astype(int) - aged.astype(int)).max(axis=2) > 40
        if read_counter(raw) == read_counter(aged) and changed.mean() > 0.0005:
            break
        page.wait_for_timeout(100)
    else:
        pytest.fail("the second window never showed the effect on the main window's frame")
    second.screenshot(path=str(shots / "second-screen-aged.png"))
    page.screenshot(path=str(shots / "main-screen-raw.png"))

    # Closing the second window leaves the main one painting alone.
    second.close()
    page.wait_for_function("agecast.displays === 1 && agecast.second === null")
    before = page.evaluate("agecast.painted")
    page.wait_for_function(f"agecast.painted > {before + 5}")


def test_second_window_carries_on_when_the_main_one_closes(
    server: AgecastServer, page: Page, shots: Path
) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 5)
    with page.expect_popup() as popup_info:
        page.click("button[data-action='dual']")
    second = popup_info.value
    second.set_default_timeout(20_000)
    second.wait_for_function("window.agecast && window.agecast.painted > 5")
    page.close()
    second.wait_for_selector("#notice", state="visible")
    assert second.inner_text("#notice-title") == "MAIN WINDOW CLOSED"
    # A few seconds later it runs its own stream, still showing the aged picture.
    second.wait_for_function("window.agecast && agecast.role === 'main' && agecast.painted > 5")
    assert second.evaluate("agecast.view") == "aged"
    assert second.is_hidden("#notice")
