"""Attacks 9, 11 and 12 (low): each test is named after what was done to the monitor."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import socket
import time
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agecast.api import serve
from agecast.api.auth import CHURN_PER_MINUTE, COOKIE, Auth
from agecast.errors import SettingsError
from tests.api.conftest import Running
from tests.identities.conftest import PackageFactory


def test_an_empty_secret_file_cannot_be_used_to_forge_cookies(tmp_path: Path) -> None:
    (tmp_path / "secret").write_bytes(b"")
    try:
        auth = Auth.at(tmp_path)
    except SettingsError as refused:
        assert "Delete the file" in str(refused)
        return
    link, _ = auth.links.create("operator", label="x", expires_s=60)
    payload = f"{link.id}.{int(time.time()) + 60}"
    forged = f"{payload}.{hmac.new(b'', payload.encode(), hashlib.sha256).hexdigest()}"
    assert auth.sessions.verify(forged) is None, "a cookie signed with an empty key was accepted"


def test_a_viewer_cannot_set_the_glass_to_glass_figure_everyone_sees(server: Running) -> None:
    async def lie() -> None:
        async with connect(
            f"{server.ws}/ws/monitor", additional_headers=server.ws_headers("viewer")
        ) as ws:
            for _ in range(3):
                await ws.send(json.dumps({"type": "stats", "glass_ms": [59999] * 1000}))
            await ws.send(json.dumps({"type": "ping"}))
            while True:  # the pong comes after the stats were handled
                message = await ws.recv()
                if isinstance(message, str) and json.loads(message)["type"] == "pong":
                    return

    asyncio.run(lie())
    with server.client("viewer") as viewer:
        glass = viewer.get("/api/status").json()["glass_to_glass_ms"]
    assert glass["p95"] is None or glass["p95"] < 59999, glass


def test_an_operator_cannot_load_a_folder_from_the_servers_disk(
    server: Running, make_package: PackageFactory
) -> None:
    folder = make_package("elsewhere")
    before = server.service.built.fx.identity.manifest.id
    with server.client("operator") as operator:
        r = operator.post("/api/control", json={"identity": str(folder)})
    assert r.status_code == 422, r.text
    assert server.service.built.fx.identity.manifest.id == before


def test_viewer_churn_is_cut_off_and_does_not_flood_the_audit_log(server: Running) -> None:
    cookie = server.session("viewer", label="churn")
    refused = 0

    async def churn(times: int) -> None:
        nonlocal refused
        for _ in range(times):
            try:
                async with connect(
                    f"{server.ws}/ws/monitor",
                    additional_headers={"Cookie": f"{COOKIE}={cookie}"},
                ) as ws:
                    await ws.recv()  # the hello
            except InvalidStatus:
                refused += 1

    asyncio.run(churn(CHURN_PER_MINUTE + 15))
    time.sleep(0.5)  # the last leave is written as its handler ends
    lines = [json.loads(x) for x in server.auth.audit.path.read_text().splitlines()]
    joined = [x for x in lines if x["event"] == "viewer_joined" and x.get("label") == "churn"]
    assert refused > 0  # a reconnect loop is refused after a burst …
    assert len(joined) <= CHURN_PER_MINUTE  # … and what got in is audited within the cap


def test_join_and_leave_lines_are_capped_per_link(tmp_path: Path) -> None:
    audit = Auth.at(tmp_path).audit
    for _ in range(CHURN_PER_MINUTE + 30):
        audit.write("viewer_joined", link="abc", label="churn")
    audit.write("settings", link="abc", values={"blend": 1})  # changes are never capped
    events = [json.loads(x)["event"] for x in audit.path.read_text().splitlines()]
    assert events.count("viewer_joined") == CHURN_PER_MINUTE and events[-1] == "settings"


def test_the_api_docs_page_loads_nothing_from_outside(server: Running) -> None:
    with server.client("viewer") as viewer:
        for path in ("/docs", "/redoc"):
            r = viewer.get(path)
            assert r.status_code == 404 and "cdn" not in r.text.lower(), path


def test_signing_out_ends_the_session(server: Running) -> None:
    cookie = server.session("viewer", label="leaving")
    with httpx.Client(base_url=server.base, cookies={COOKIE: cookie}) as browser:
        assert browser.get("/api/status").status_code == 200
        r = browser.post("/api/signout", headers={"origin": server.base})
        assert r.status_code == 200 and COOKIE in r.headers.get("set-cookie", "")
    # the old cookie, kept by someone, no longer works
    assert httpx.get(server.base + "/api/status", cookies={COOKIE: cookie}).status_code == 401
    events = server.auth.audit.path.read_text()
    assert '"event": "logout"' in events


def test_a_slowloris_client_is_cut_off(server: Running, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(serve, "HEAD_TIMEOUT_S", 1.0)
    host, port = server.base.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as slow:
        slow.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\n")  # …and never the blank line
        for _ in range(4):  # a header byte now and then keeps no connection alive
            time.sleep(0.4)
            try:
                slow.sendall(b"X")
            except OSError:
                break
        slow.settimeout(10)
        with contextlib.suppress(ConnectionResetError):  # closed by the server, either way
            assert slow.recv(1024) == b""
    assert httpx.get(server.base + "/api/health").status_code == 200


def test_errors_do_not_map_the_servers_disk(server: Running) -> None:
    state = str(server.service.settings.state_dir)
    with server.client("viewer") as viewer:
        missing = viewer.get("/api/takes/no_such_take")
    assert missing.status_code == 404 and "no take" in missing.json()["detail"]
    assert state not in missing.text

    async def unknown_identity() -> str:
        async with connect(
            f"{server.ws}/ws/control", additional_headers=server.ws_headers("operator")
        ) as ws:
            await ws.send(json.dumps({"type": "set", "values": {"identity": "nobody"}}))
            return str(json.loads(await ws.recv())["error"])

    error = asyncio.run(unknown_identity())
    assert "not found" in error
    for folder in server.service.settings.identities_dir:
        assert str(folder) not in error


def test_a_reconnect_flood_is_closed_as_it_is_accepted(
    server: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A client opening connections as fast as it can (reconnect loops, refused bodies) is cut
    off at accept, before any of it is parsed; the others, and it a moment later, get in. It
    connects from 127.0.0.2, another machine's address (the server's own machine has no
    budget)."""
    budget = serve.ConnectionBudget(rate=5.0, burst=20.0)
    monkeypatch.setattr(serve, "BUDGET", budget)
    host, port = server.base.removeprefix("http://").split(":")
    answered = cut = 0
    for _ in range(60):
        with socket.create_connection(
            (host, int(port)), timeout=10, source_address=("127.0.0.2", 0)
        ) as flood:
            try:
                flood.sendall(b"GET /api/health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                reply = flood.recv(64)
            except OSError:  # reset as it was accepted
                reply = b""
            if reply.startswith(b"HTTP/1.1 200"):
                answered += 1
            else:
                cut += 1
    assert 20 <= answered <= 30 and cut >= 30 and budget.refused >= 30
    time.sleep(0.5)  # a moment later it gets in again (5 a second)
    assert httpx.get(server.base + "/api/health").status_code == 200


def test_the_connection_budget_refills() -> None:
    budget = serve.ConnectionBudget(rate=10.0, burst=3.0)
    assert [budget.allow("10.0.0.9", now=100.0) for _ in range(4)] == [True, True, True, False]
    assert budget.allow("10.0.0.7", now=100.0)  # another address has its own
    assert not budget.allow("10.0.0.9", now=100.05)
    assert budget.allow("10.0.0.9", now=100.2)  # 0.1 s brings one back
    assert all(budget.allow("127.0.0.1", now=100.0) for _ in range(10))  # this machine
