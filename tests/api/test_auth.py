"""Access control, tried the way someone without the right link would try it."""

import asyncio
import json
import ssl
import threading
import time
from pathlib import Path

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agecast.api.auth import COOKIE, Auth, LinkStore, parse_duration
from agecast.api.certs import write_selfsigned
from agecast.cli import app as cli

from .conftest import Running, free_port

CLOSED_OR_REFUSED = (InvalidStatus, ConnectionClosed)


@pytest.mark.parametrize(
    "path", ["/api/status", "/metrics", "/ui/monitor.js", "/openapi.json", "/docs"]
)
def test_everything_but_health_needs_a_session(server: Running, path: str) -> None:
    assert httpx.get(server.base + path).status_code == 401
    assert (
        httpx.get(server.base + path, cookies={COOKIE: "forged.9999999999.abc"}).status_code == 401
    )
    assert httpx.get(server.base + "/api/health").status_code == 200


def test_the_page_says_how_to_get_in(server: Running) -> None:
    r = httpx.get(server.base + "/")
    assert r.status_code == 401 and "link" in r.text
    r = httpx.get(server.base + "/?token=wrong")
    assert r.status_code == 401 and "expired, been revoked or already been used" in r.text


def test_token_link_becomes_an_httponly_cookie_once(server: Running) -> None:
    _, token = server.auth.links.create("operator", label="dop", one_time=True, expires_s=60)
    r = httpx.get(f"{server.base}/?token={token}")
    assert r.status_code == 303 and r.headers["location"] == "/"  # the token leaves the address
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    session = r.cookies[COOKIE]
    assert httpx.get(server.base + "/api/status", cookies={COOKIE: session}).status_code == 200
    assert httpx.get(f"{server.base}/?token={token}").status_code == 401  # one time only


def test_expired_and_revoked_links_are_refused(server: Running) -> None:
    link, token = server.auth.links.create("viewer", label="short", expires_s=0.5)
    session = server.auth.sessions.issue(link)[0]
    assert httpx.get(server.base + "/api/status", cookies={COOKIE: session}).status_code == 200
    time.sleep(0.7)
    assert httpx.get(server.base + "/api/status", cookies={COOKIE: session}).status_code == 401
    assert httpx.get(f"{server.base}/?token={token}").status_code == 401
    link, _ = server.auth.links.create("viewer", label="client-monitor", expires_s=3600)
    session = server.auth.sessions.issue(link)[0]
    assert httpx.get(server.base + "/api/status", cookies={COOKIE: session}).status_code == 200
    # revoked from another process (the CLI) while the server runs: refused at once
    LinkStore(server.auth.links.path.parent).revoke("client-monitor")
    assert httpx.get(server.base + "/api/status", cookies={COOKIE: session}).status_code == 401


def test_a_viewer_cannot_operate(server: Running) -> None:
    viewer = server.client("viewer")
    assert viewer.get("/api/status").status_code == 200
    r = viewer.post("/api/control", json={"bypass": True})
    assert r.status_code == 403 and "operators only" in r.json()["detail"]

    async def control_socket() -> None:
        async with connect(
            f"{server.ws}/ws/control", additional_headers=server.ws_headers("viewer")
        ) as ws:
            await ws.send(json.dumps({"type": "set", "values": {"bypass": True}}))
            await ws.recv()

    with pytest.raises(CLOSED_OR_REFUSED):
        asyncio.run(control_socket())
    assert server.client().get("/api/status").json()["look"]["bypass"] is False


def test_bearer_tokens_for_api_clients(server: Running) -> None:
    _, token = server.auth.links.create("viewer", label="prometheus", expires_s=60)
    r = httpx.get(server.base + "/metrics", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200
    _, one_time = server.auth.links.create("operator", one_time=True, expires_s=60)
    r = httpx.get(server.base + "/metrics", headers={"Authorization": f"Bearer {one_time}"})
    assert r.status_code == 401  # sign-in links are for browsers, once


def test_websockets_need_a_session_and_the_right_origin(server: Running) -> None:
    async def open_monitor(headers: dict[str, str]) -> object:
        async with connect(f"{server.ws}/ws/monitor", additional_headers=headers) as ws:
            return json.loads(await asyncio.wait_for(ws.recv(), 10))

    with pytest.raises(CLOSED_OR_REFUSED):
        asyncio.run(open_monitor({}))
    evil = {**server.ws_headers("viewer"), "Origin": "http://evil.example"}
    with pytest.raises(CLOSED_OR_REFUSED):
        asyncio.run(open_monitor(evil))
    same = {**server.ws_headers("viewer"), "Origin": server.base}
    assert asyncio.run(open_monitor(same))["type"] == "hello"  # type: ignore[index]


def test_a_flood_of_messages_is_told_then_closed(server: Running) -> None:
    async def flood() -> tuple[int, bool]:
        errors, closed = 0, False
        async with connect(f"{server.ws}/ws/control", additional_headers=server.ws_headers()) as ws:
            try:
                for _ in range(400):
                    await ws.send('{"type": "get"}')
                async with asyncio.timeout(10):
                    async for message in ws:
                        if "too many messages" in str(message):
                            errors += 1
            except ConnectionClosed:
                closed = True
            closed = closed or ws.close_code is not None
        return errors, closed

    errors, closed = asyncio.run(flood())
    assert errors > 0 and closed
    assert server.client().get("/api/status").status_code == 200  # the server carries on


def test_audit_log_records_who_did_what(server: Running) -> None:
    _, token = server.auth.links.create("operator", label="vfx-sup", one_time=True, expires_s=60)
    session = httpx.get(f"{server.base}/?token={token}").cookies[COOKIE]
    op = httpx.Client(base_url=server.base, cookies={COOKIE: session})
    assert op.post("/api/control", json={"blend": 0.9}).status_code == 200
    op.post("/api/control", json={"blend": 1.0})

    async def watch() -> None:
        headers = {"Cookie": f"{COOKIE}={session}"}
        async with connect(f"{server.ws}/ws/monitor", additional_headers=headers) as ws:
            await ws.recv()

    asyncio.run(watch())
    time.sleep(0.3)
    events = [json.loads(line) for line in server.auth.audit.path.read_text().splitlines()]
    kinds = {e["event"] for e in events}
    assert {"identity_loaded", "login", "settings", "viewer_joined", "viewer_left"} <= kinds
    assert any(e["event"] == "login" and e["label"] == "vfx-sup" for e in events)
    assert any(
        e["event"] == "settings" and e["values"] == {"blend": 0.9} and e["by"] == "vfx-sup"
        for e in events
    )
    assert any(e["event"] == "viewer_joined" and e["label"] == "vfx-sup" for e in events)


def test_links_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGECAST_STATE_DIR", str(tmp_path))
    runner = CliRunner()
    made = runner.invoke(
        cli, ["links", "create", "--role", "viewer", "--expires", "2h", "--label", "director"]
    )
    assert made.exit_code == 0, made.output
    token = made.stdout.strip().split("token=")[1].splitlines()[0]
    store = LinkStore(tmp_path)
    assert store.lookup(token) is not None and store.lookup(token).label == "director"  # type: ignore[union-attr]
    listed = runner.invoke(cli, ["links", "list"])
    assert "director" in listed.output and "active" in listed.output
    assert runner.invoke(cli, ["links", "revoke", "director"]).exit_code == 0
    assert store.lookup(token) is None
    assert runner.invoke(cli, ["links", "revoke", "nobody"]).exit_code == 2
    bad = runner.invoke(cli, ["links", "create", "--role", "admin"], env={"COLUMNS": "200"})
    assert bad.exit_code == 2 and "'admin' is not one of 'viewer', 'operator'" in bad.output
    assert runner.invoke(cli, ["links", "create", "--expires", "soon"]).exit_code == 2
    assert parse_duration("90s") == 90 and parse_duration("7d") == 7 * 86400


def test_selfsigned_certificate_serves_tls(tmp_path: Path) -> None:
    cert, key = write_selfsigned(tmp_path / "certs", ["127.0.0.1", "localhost"], days=2)
    assert key.stat().st_mode & 0o777 == 0o600
    app = FastAPI()

    @app.get("/api/health")
    def health() -> dict[str, bool]:
        return {"ok": True}

    port = free_port()
    srv = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            ssl_certfile=cert,
            ssl_keyfile=key,
            log_level="warning",
        )
    )
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    while not srv.started:
        time.sleep(0.05)
    try:
        context = ssl.create_default_context(cafile=str(cert))
        assert httpx.get(f"https://127.0.0.1:{port}/api/health", verify=context).json() == {
            "ok": True
        }
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"https://127.0.0.1:{port}/api/health")  # untrusted by default: it is TLS
    finally:
        srv.should_exit = True
        thread.join(5)


def test_secret_and_links_survive_a_restart(tmp_path: Path) -> None:
    first = Auth.at(tmp_path)
    link, _ = first.links.create("viewer", label="x", expires_s=60)
    cookie = first.sessions.issue(link)[0]
    assert Auth.at(tmp_path).sessions.verify(cookie) is not None
    assert (tmp_path / "secret").stat().st_mode & 0o777 == 0o600
