"""The fleet in real Chromium: cart A's monitor lists cart B's camera with its state; picking
it takes the browser to B, which paints B's own picture without a second sign-in; the picker
on B leads back to A."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from tests.e2e.conftest import wait_painting
from tests.fleet.nodes import Node, fleet_nodes

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    with fleet_nodes(tmp_path_factory.mktemp("fleet-e2e")) as pair:
        yield pair


@pytest.fixture
def fresh_page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    yield page
    context.close()
    assert not errors, f"uncaught errors in the page: {errors}"


def hello_size(page: Page) -> list[int]:
    return list(page.evaluate("[agecast.status.width, agecast.status.height]"))


def test_picking_b_camera_on_a_paints_b_picture_without_a_second_sign_in(
    nodes: tuple[Node, Node], fresh_page: Page
) -> None:
    a, b = nodes
    page = fresh_page
    _, token = a.token("viewer", label="director")
    page.goto(f"{a.url}/?token={token}")
    wait_painting(page)
    assert hello_size(page) == [640 * 2, 360]  # A's camera, side by side
    picker = page.locator("#camera-picker")
    b_cam = picker.locator('button[data-node="B"][data-camera="cam1"]')
    page.wait_for_selector('#camera-picker button[data-node="B"][data-state="on air"]')
    assert picker.is_visible()
    assert picker.locator('.fleet-node[data-fleet-node="B"] .cameras-head').inner_text() == "B"

    b_cam.click()
    page.wait_for_url(f"{b.url}/?camera=cam1")  # past the ticket's step
    wait_painting(page)
    assert hello_size(page) == [320 * 2, 180]  # B's own camera, streamed by B
    fleet = page.evaluate("agecast.status.fleet")
    assert fleet["node"] == "B" and fleet["via"] == "A"
    assert page.evaluate("document.body.dataset.access") == "viewer"  # A's role, not more
    assert "token=" not in page.url and "fleet_ticket" not in page.url

    back = page.locator("#camera-picker button[data-back]")
    assert back.inner_text().strip() == "← A"
    back.click()
    page.wait_for_url(f"{a.url}/")
    wait_painting(page)  # A's session cookie still holds on A
    assert hello_size(page) == [640 * 2, 360]


def test_a_stopped_node_is_marked_unreachable_in_the_picker(
    nodes: tuple[Node, Node], fresh_page: Page
) -> None:
    a, b = nodes
    page = fresh_page
    _, token = a.token("operator")
    page.goto(f"{a.url}/?token={token}")
    wait_painting(page)
    selector = '#camera-picker button[data-node="B"]'
    page.wait_for_selector(f'{selector}[data-state="on air"]')
    b.stop()
    try:
        page.wait_for_selector(f'{selector}[data-state="node unreachable"]')
    finally:
        b.start()
    page.wait_for_selector(f'{selector}[data-state="on air"]')
