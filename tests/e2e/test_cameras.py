"""Several cameras in real Chromium: the picker lists them and picking one shows its picture."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import AgecastServer, Watched, free_port, grab_canvas, wait_painting

if TYPE_CHECKING:
    from playwright.sync_api import Page

A_SIZE, B_SIZE = (640, 240), (512, 192)  # raw | aged of 320×240 and 256×192


@pytest.fixture(scope="module")
def cameras_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgecastServer]:
    folder = tmp_path_factory.mktemp("agecast-cameras")
    config = folder / "agecast.toml"
    config.write_text('cameras = ["A=testpattern:320x240@30", "B=testpattern:256x192@30"]\n')
    srv = AgecastServer(
        free_port(), folder / "serve.log", folder / "state", args=["--config", str(config)]
    )
    srv.start()
    yield srv
    srv.stop()


def _canvas_size(page: Page) -> tuple[int, int]:
    size = page.eval_on_selector("#video", "c => [c.width, c.height]")
    return int(size[0]), int(size[1])


def test_picker_lists_the_cameras_and_picking_b_shows_b(
    cameras_server: AgecastServer, page: Page, shots: Path
) -> None:
    page.goto(cameras_server.page_url("/"))
    wait_painting(page, 5)
    picker = page.locator("#camera-picker")
    assert picker.is_visible()
    buttons = picker.locator("button[data-camera]")
    assert buttons.all_inner_texts() == ["A", "B"]
    a, b = buttons.nth(0), buttons.nth(1)
    assert a.get_attribute("aria-pressed") == "true" and b.get_attribute("aria-pressed") == "false"
    assert _canvas_size(page) == A_SIZE
    # every camera's state on its dot, from the status the monitor socket sends each second
    page.wait_for_function(
        "[...document.querySelectorAll('#camera-picker .dot')].every(d => d.dataset.tone === 'ok')"
    )

    painted = page.evaluate("agecast.painted")
    b.click()
    page.wait_for_function(f"agecast.painted > {painted + 5} && agecast.camera === 'B'")
    page.wait_for_function(f"document.querySelector('#video').width === {B_SIZE[0]}")
    picture = grab_canvas(page)
    assert picture.shape == (B_SIZE[1], B_SIZE[0], 3)  # B's own picture, at its size
    assert picture.std() > 30, "the canvas is blank"
    assert b.get_attribute("aria-pressed") == "true" and a.get_attribute("aria-pressed") == "false"
    page.wait_for_function("agecast.status && agecast.status.camera === 'B'")
    assert page.evaluate("agecast.status.source.uri") == "testpattern:256x192@30"
    assert "camera=B" in page.url  # a reload keeps watching B
    assert page.evaluate("agecast.state") == "live"
    page.screenshot(path=str(shots / "monitor-cameras-b.png"))

    # the controls follow the camera on screen: bypass here changes B only
    page.evaluate("agecast.control({bypass: true})")
    try:
        page.wait_for_function("agecast.status.look.bypass === true")
        a_status = cameras_server.control()  # no camera: the first one's status
        assert a_status["camera"] == "A" and a_status["look"]["bypass"] is False
    finally:
        cameras_server.control(camera="B", bypass=False)


def test_one_camera_shows_no_picker(server: AgecastServer, page: Page) -> None:
    page.goto(server.page_url("/"))
    wait_painting(page, 3)
    assert page.locator("#camera-picker").is_hidden()
    assert page.evaluate("agecast.cameras") == ["cam1"]


def test_an_unknown_camera_in_the_address_falls_back_to_the_first(
    cameras_server: AgecastServer, page: Page, watched: Watched
) -> None:
    page.goto(cameras_server.page_url("/?camera=Z"))
    page.wait_for_function("agecast.camera === 'A' && agecast.painted > 3")
    assert _canvas_size(page) == A_SIZE
    assert "camera=" not in page.url
    assert any("no camera 'Z' here" in w for w in watched.warnings)
