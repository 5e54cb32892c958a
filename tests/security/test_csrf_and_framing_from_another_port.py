"""Attack 5: a page on another port of the same host (same site, so SameSite=Strict cookies
are sent) posts a form to the monitor, or frames the signed-in monitor."""

from __future__ import annotations

import httpx
import pytest

from tests.api.conftest import Running


def _form_from(server: Running, origin: str | None, site: str | None) -> httpx.Response:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    if origin is not None:
        headers["origin"] = origin
    if site is not None:
        headers["sec-fetch-site"] = site
    with server.client("operator") as operator:
        return operator.post("/api/takes/stop", content=b"x=1", headers=headers)


@pytest.mark.parametrize(
    ("origin", "site"),
    [
        ("http://127.0.0.1:9999", "same-site"),  # another port: what a browser sends
        ("http://127.0.0.1:9999", None),  # an older browser without Fetch metadata
        (None, "same-site"),  # Origin stripped, Fetch metadata still there
        ("null", "cross-site"),  # a sandboxed frame
    ],
)
def test_a_page_on_another_port_cannot_change_anything(
    server: Running, origin: str | None, site: str | None
) -> None:
    r = _form_from(server, origin, site)
    assert r.status_code == 403, (r.status_code, r.text)
    assert "origin" in r.json()["detail"]


def test_the_monitor_page_itself_may_still_operate(server: Running) -> None:
    with server.client("operator") as operator:
        r = operator.post(
            "/api/control",
            json={"blend": 1.0},
            headers={"origin": server.base, "sec-fetch-site": "same-origin"},
        )
    assert r.status_code == 200, r.text


def test_the_monitor_cannot_be_framed(server: Running) -> None:
    with server.client("viewer") as viewer:
        for path in ("/", "/api/status", "/ui/monitor.js"):
            r = viewer.get(path)
            assert r.headers.get("x-frame-options") == "DENY", path
            assert "frame-ancestors 'none'" in r.headers.get("content-security-policy", ""), path
            assert r.headers.get("x-content-type-options") == "nosniff", path
            assert r.headers.get("referrer-policy") == "same-origin", path
