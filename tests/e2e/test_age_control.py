"""The shipped demo identity in the browser: the Age slider appears and ages the picture."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import AgecastServer, free_port, grab_canvas, wait_painting

if TYPE_CHECKING:
    from playwright.sync_api import Page


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AgecastServer]:
    folder = tmp_path_factory.mktemp("agecast-demo")
    srv = AgecastServer(
        free_port(), folder / "serve.log", folder / "state", source="demo", identity="demo-aged"
    )
    srv.start()
    yield srv
    srv.stop()


def _hair_saturation(page: Page) -> float:
    """Colour saturation of the aged half's upper-middle band, where the hair is."""
    picture = grab_canvas(page).astype(float)
    h, w = picture.shape[:2]
    band = picture[int(h * 0.05) : int(h * 0.3), int(w * 0.68) : int(w * 0.82)]
    return float((band.max(axis=2) - band.min(axis=2)).mean())


def _settled(page: Page, years: int) -> float:
    page.wait_for_function(f"agecast.status && agecast.status.look.age === {years}")
    page.wait_for_timeout(1500)  # frames made after the change reach the page
    return _hair_saturation(page)


def test_the_age_slider_ages_the_picture(demo_server: AgecastServer, page: Page) -> None:
    page.goto(demo_server.page_url("/"))
    wait_painting(page, 5)
    page.click("button[data-action='panel']")
    page.wait_for_selector("#c-age-row", state="visible")
    assert page.get_attribute("#c-age", "min") == "38"
    assert page.get_attribute("#c-age", "max") == "75"

    def slide(years: int) -> None:
        page.eval_on_selector(
            "#c-age",
            "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input'));"
            " el.dispatchEvent(new Event('change')); }",
            years,
        )

    slide(38)
    young = _settled(page, 38)
    slide(75)
    old = _settled(page, 75)
    assert old < 0.85 * young, f"hair saturation {young:.1f} at 38, {old:.1f} at 75"
    assert page.text_content("#c-age-value") == "75 years"


def test_local_age_keeps_the_hair_young(demo_server: AgecastServer, page: Page) -> None:
    """The re-ageing identity's Local age sliders: hair −37 years at age 75 leaves the hair's
    colour nearly as filmed while the rest ages; every viewer's status shows the offsets."""
    page.goto(demo_server.page_url("/"))
    wait_painting(page, 5)
    page.click("button[data-action='panel']")
    page.wait_for_selector("#c-regions", state="visible")
    labels = page.eval_on_selector_all("#c-regions input", "els => els.map(e => e.dataset.region)")
    assert labels == ["forehead", "eyes", "mouth", "hair"]

    def slide(selector: str, value: int) -> None:
        page.eval_on_selector(
            selector,
            "(el, v) => { el.value = String(v); el.dispatchEvent(new Event('input'));"
            " el.dispatchEvent(new Event('change')); }",
            value,
        )

    slide("#c-age", 75)
    grey = _settled(page, 75)
    slide("#c-region-hair", -30)
    page.wait_for_function("agecast.status && agecast.status.look.age_offsets[3] === -30")
    page.wait_for_timeout(1500)
    kept = _hair_saturation(page)
    assert kept > 1.1 * grey, f"hair saturation {grey:.1f} aged, {kept:.1f} with hair −30"
    assert page.text_content("#c-region-hair-value") == "−30 y"
    slide("#c-region-hair", 0)
    page.wait_for_function("agecast.status && agecast.status.look.age_offsets[3] === 0")
