"""Display LUTs: a screen views the raw side, the aged side or both through a LUT the server
offers; only that screen changes, the label says so, and the choice survives a reload."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from typing import TYPE_CHECKING

import numpy as np
import pytest

from agecast.api.auth import LinkStore
from agecast.sources.testpattern import read_counter
from tests.compose.test_lut import write_cube
from tests.e2e.conftest import (
    WIDTH,
    AgecastServer,
    expected_frame,
    free_port,
    grab_canvas,
    psnr,
    wait_painting,
)

if TYPE_CHECKING:
    from playwright.sync_api import Page


def swap(rgb: np.ndarray) -> np.ndarray:
    """The test LUT, (r, g, b) → (1 − b, g, r) (0–1 or 0–255): linear, so trilinear lookup is
    exact, and every channel lands somewhere else, so a texel-order mistake shows."""
    top = 1.0 if rgb.dtype.kind == "f" else 255
    return np.stack([top - rgb[..., 2], rgb[..., 1], rgb[..., 0]], axis=-1)


def unswap(picture: np.ndarray) -> np.ndarray:
    p = picture.astype(int)
    return np.stack([p[..., 2], p[..., 1], 255 - p[..., 0]], axis=-1).astype(np.uint8)


@pytest.fixture(scope="module")
def lut_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgecastServer]:
    folder = tmp_path_factory.mktemp("agecast-luts")
    cube = write_cube(folder / "swap.cube", 17, swap)
    srv = AgecastServer(
        free_port(),
        folder / "serve.log",
        folder / "state",
        args=["--display-luts", f"Swap={cube},logc3"],
    )
    srv.start()
    yield srv
    srv.stop()


def _choose(page: Page, name: str, side: str) -> None:
    page.click("button[data-action='lut-menu']")
    page.select_option("#lut-name", name)
    page.check(f"#lut-menu input[value='{side}']")
    page.wait_for_function(
        f"agecast.display.lutOn() && agecast.display.lut.sides === '{side}' && agecast.painted > 0"
    )
    page.keyboard.press("Escape")


def _visibility(page: Page, selector: str) -> str:
    return str(page.evaluate(f"getComputedStyle(document.querySelector('{selector}')).visibility"))


def _lut_frame(page: Page, raw_through: bool) -> tuple[np.ndarray, np.ndarray, int]:
    """(raw, aged) halves of one painted picture as they would be without the LUT, and its
    frame number (both halves show the same one)."""
    page.wait_for_function(f"agecast.painted > {page.evaluate('agecast.painted') + 3}")
    for _ in range(30):
        picture = grab_canvas(page, "#video-gl")
        raw, aged = picture[:, :WIDTH], unswap(picture[:, WIDTH:])
        if raw_through:
            raw = unswap(raw)
        n = read_counter(raw)
        if n == read_counter(aged):
            return raw, aged, n
        page.wait_for_timeout(150)
    pytest.fail("no painted picture with the same frame number in both halves")


def test_the_aged_side_through_a_lut_and_nothing_else(
    lut_server: AgecastServer, page: Page
) -> None:
    page.goto(lut_server.page_url("/"))
    wait_painting(page, 5)
    options = page.eval_on_selector_all("#lut-name option", "os => os.map(o => o.value)")
    assert options == ["", "Swap", "logc3"]
    _choose(page, "Swap", "aged")
    assert _visibility(page, "#video-gl") == "visible"
    assert _visibility(page, "#video") == "hidden"
    assert page.inner_text("#label-b") == "AGED · Swap"
    assert page.inner_text("#label-a") == "RAW"
    raw, aged, n = _lut_frame(page, raw_through=False)
    # The raw half is the camera's picture as ever; the aged half, undone through the LUT's
    # inverse, is the aged picture: the raw one outside the face, the effect inside.
    assert psnr(raw, expected_frame(n)) >= 28.0
    changed = np.abs(raw.astype(int) - aged.astype(int)).max(axis=2) > 40
    assert 0.0005 < changed.mean() < 0.25
    assert psnr(raw[~changed], aged[~changed]) >= 30.0
    assert page.get_attribute("button[data-action='lut']", "aria-pressed") == "true"


def test_both_sides_then_off_with_l_and_back_after_a_reload(
    lut_server: AgecastServer, page: Page
) -> None:
    page.goto(lut_server.page_url("/"))
    wait_painting(page, 5)
    _choose(page, "Swap", "both")
    raw, _, n = _lut_frame(page, raw_through=True)
    assert psnr(raw, expected_frame(n)) >= 28.0  # the LUT's inverse gives the camera back
    assert page.inner_text("#label-a") == "RAW · Swap"

    page.keyboard.press("l")  # off: the plain picture, the plain labels
    page.wait_for_function("!agecast.display.lutOn()")
    assert page.inner_text("#label-a") == "RAW"
    page.wait_for_function(f"agecast.painted > {page.evaluate('agecast.painted') + 3}")
    plain = grab_canvas(page)
    assert psnr(plain[:, :WIDTH], expected_frame(read_counter(plain[:, :WIDTH]))) >= 28.0
    page.keyboard.press("l")  # on again: the last LUT, on the same sides
    page.wait_for_function("agecast.display.lutOn() && agecast.display.lut.sides === 'both'")

    page.reload()  # this browser remembers its choice
    wait_painting(page, 5)
    page.wait_for_function("agecast.display.lutOn() && agecast.display.lut.name === 'Swap'")


def test_luts_are_listed_for_viewers_and_an_unknown_one_is_named(
    lut_server: AgecastServer,
) -> None:
    _, token = LinkStore(lut_server.state_dir).create("viewer", label="director", expires_s=60)
    auth = {"authorization": f"Bearer {token}"}
    with urllib.request.urlopen(
        urllib.request.Request(lut_server.url + "/api/luts", headers=auth), timeout=10
    ) as res:
        assert json.loads(res.read()) == {
            "luts": [{"name": "Swap", "size": 17}, {"name": "logc3", "size": 33}]
        }
    with urllib.request.urlopen(
        urllib.request.Request(lut_server.url + "/api/luts/logc3", headers=auth), timeout=10
    ) as res:
        assert res.headers["X-Lut-Size"] == "33"
        assert len(res.read()) == 33**3 * 4
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(
            urllib.request.Request(lut_server.url + "/api/luts/Night", headers=auth), timeout=10
        )
    assert caught.value.code == 404
    assert "Swap, logc3" in caught.value.read().decode()
