"""Signing in from a token link in a real Chromium."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from agecast.api.auth import LinkStore

from .conftest import AgecastServer, wait_painting

if TYPE_CHECKING:
    from playwright.sync_api import Page


def test_token_link_signs_in_and_leaves_the_address(server: AgecastServer, page: Page) -> None:
    response = page.goto(server.url + "/")
    assert response is not None and response.status == 401
    assert "link" in page.inner_text("body")
    _, token = LinkStore(server.state_dir).create("viewer", label="director", expires_s=600)
    page.goto(f"{server.url}/?token={token}")
    wait_painting(page, 10)
    assert "token" not in page.url  # a screenshot or a shoulder never shows the token
    cookies = {c["name"]: c for c in page.context.cookies()}
    assert cookies["agecast_session"]["httpOnly"] is True
    assert page.evaluate("document.cookie") == ""  # scripts cannot read the session


def test_a_revoked_link_stops_the_page(server: AgecastServer, page: Page) -> None:
    store = LinkStore(server.state_dir)
    _, token = store.create("viewer", label="leaver", expires_s=600)
    page.goto(f"{server.url}/?token={token}")
    wait_painting(page, 10)
    store.revoke("leaver")
    response = page.reload()
    assert response is not None and response.status == 401


def test_revoking_a_link_signs_a_watching_page_out(
    server: AgecastServer, page: Page, shots: Path
) -> None:
    store = LinkStore(server.state_dir)
    _, token = store.create("viewer", label="temp", expires_s=600)
    page.goto(f"{server.url}/?token={token}")
    wait_painting(page, 10)
    store.revoke("temp")
    page.wait_for_function("agecast.state === 'signed out'", timeout=15_000)
    assert "SIGNED OUT" in page.inner_text("#notice")
    assert (
        page.evaluate("getComputedStyle(document.querySelector('#video')).visibility") == "hidden"
    )
    page.screenshot(path=str(shots / "signed-out.png"))


def test_sign_out_ends_the_session_in_this_browser(server: AgecastServer, page: Page) -> None:
    _, token = LinkStore(server.state_dir).create("operator", label="day-player", expires_s=600)
    page.goto(f"{server.url}/?token={token}")
    wait_painting(page, 10)
    session = {c["name"]: c["value"] for c in page.context.cookies()}["agecast_session"]
    page.click("text=Sign out")
    page.wait_for_url(f"{server.url}/")
    assert "Not signed in" in page.inner_text("body")
    assert "agecast_session" not in {c["name"] for c in page.context.cookies()}
    # the cookie, copied before signing out, no longer opens the monitor
    page.context.add_cookies([{"name": "agecast_session", "value": session, "url": server.url}])
    response = page.goto(server.url + "/")
    assert response is not None and response.status == 401
