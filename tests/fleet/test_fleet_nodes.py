"""Two real nodes of one fleet (``agecast serve`` on 127.0.0.1 ports): what an operator with a
monitor on cart A sees of cart B, and how a sign-in on A carries to B and ends there."""

from __future__ import annotations

import asyncio
import html
import json
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from agecast.api.auth import COOKIE, LinkStore
from agecast.fleet.signing import FleetKey
from agecast.fleet.tickets import make_ticket
from tests.fleet.nodes import Node, fleet_nodes, peer, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def nodes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Node, Node]]:
    with fleet_nodes(tmp_path_factory.mktemp("fleet")) as pair:
        yield pair


def redeem(url: str) -> tuple[int, str]:
    """Open a ticket's address as a browser would: (status, the session cookie or the page)."""
    try:
        with urllib.request.urlopen(url, timeout=10) as res:
            cookie = SimpleCookie(res.headers.get("set-cookie", ""))
            return res.status, cookie[COOKIE].value if COOKIE in cookie else ""
    except urllib.error.HTTPError as exc:
        return exc.code, html.unescape(exc.read().decode())


def ticket_to_b(a: Node, role: str = "viewer", camera: str = "cam1") -> tuple[str, str]:
    """(A's link id, a ticket address to B) for a fresh ``role`` link signed in on A."""
    link, token = a.token(role)  # type: ignore[arg-type]
    reply = a.post("/api/fleet/ticket", {"node": "B", "camera": camera}, token=token)
    return link, reply["url"]


def test_a_shows_b_cameras_with_their_state(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    _, token = a.token("viewer")

    def b_on_air() -> dict | None:
        status = a.get("/api/status", token=token)
        b = peer(status, "B")
        on_air = b["reachable"] and b["cameras"] and b["cameras"][0]["fps_out"] > 0
        return status if on_air else None

    status = wait_for("B's camera on air in A's status", b_on_air)
    fleet = status["fleet"]
    assert fleet["node"] == "A" and fleet["via"] is None
    here = peer(status, "A")
    assert here["here"] and [c["name"] for c in here["cameras"]] == ["cam1"]
    b = peer(status, "B")
    assert b["url"].startswith("http://localhost:") and b["error"] is None
    cam = b["cameras"][0]
    assert (cam["name"], cam["state"], cam["identity"]) == ("cam1", "live", "testpattern")
    assert cam["source"] == "testpattern:320x180@15"  # B's own camera, not A's
    metrics = a.get("/metrics", token=token)
    assert 'agecast_fleet_node_up{node="B"} 1' in metrics
    assert 'agecast_fleet_camera_live{node="B",camera="cam1"} 1' in metrics


def test_a_stopped_node_shows_unreachable_and_comes_back(nodes: tuple[Node, Node]) -> None:
    """... and a ticket used on B before its restart is still refused after it."""
    a, b = nodes
    _, token = a.token("viewer")
    wait_for("B reachable", lambda: peer(a.get("/api/status", token=token), "B")["reachable"])
    _, used = ticket_to_b(a)
    assert redeem(used)[0] == 200
    b.stop()
    try:
        down = wait_for(
            "B unreachable in A's status",
            lambda: (s := peer(a.get("/api/status", token=token), "B"))["reachable"] is False and s,
            timeout_s=10,
        )
        assert "cannot be reached" in down["error"]
        assert [c["name"] for c in down["cameras"]] == ["cam1"]  # still listed, as unreachable
        assert 'agecast_fleet_node_up{node="B"} 0' in a.get("/metrics", token=token)
    finally:
        b.start()
    wait_for("B back", lambda: peer(a.get("/api/status", token=token), "B")["reachable"])
    code, page = redeem(used)  # within its 60 s, after B's restart
    assert code == 401 and "already used" in page
    assert redeem(ticket_to_b(a)[1])[0] == 200  # a fresh one signs in


def test_a_ticket_signs_in_on_b_with_the_link_role(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    _, url = ticket_to_b(a, "viewer")
    assert url.startswith(b.url + "/?fleet_ticket=") and url.endswith("&camera=cam1")
    code, cookie = redeem(url)
    assert code == 200 and cookie
    status = b.get("/api/status", cookie=cookie)
    assert status["fleet"]["node"] == "B" and status["fleet"]["via"] == "A"
    with pytest.raises(urllib.error.HTTPError) as refused:  # a viewer cannot operate on B
        b.post("/api/control", {"bypass": True}, cookie=cookie)
    assert refused.value.code == 403

    async def control_socket() -> int | None:
        ws_url = b.url.replace("http", "ws") + "/ws/control"
        async with connect(ws_url, additional_headers={"cookie": f"{COOKIE}={cookie}"}) as ws:
            await ws.wait_closed()
            return ws.close_code

    with pytest.raises(InvalidStatus):
        asyncio.run(control_socket())  # refused before it opens


def test_a_viewer_cannot_get_an_operator_ticket(nodes: tuple[Node, Node]) -> None:
    a, _ = nodes
    _, token = a.token("viewer")
    with pytest.raises(urllib.error.HTTPError) as refused:
        a.post("/api/fleet/ticket", {"node": "B", "role": "operator"}, token=token)
    assert refused.value.code == 403


def test_b_refuses_tampered_replayed_expired_and_foreign_tickets(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    _, url = ticket_to_b(a, "operator")
    base, _, rest = url.partition("fleet_ticket=")
    text = rest.split("&")[0]
    body, _, signature = text.partition(".")
    forged = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1] + "." + signature
    code, page = redeem(f"{base}fleet_ticket={forged}")
    assert code == 401 and "not signed with the fleet" in page

    assert redeem(url)[0] == 200
    code, page = redeem(url)  # the same ticket again
    assert code == 401 and "already used" in page

    key = FleetKey.load(a.state_dir / "fleet_secret")

    def ticket(key: FleetKey, issuer: str, audience: str, lifetime_s: float = 60) -> str:
        return make_ticket(
            key, issuer=issuer, audience=audience, link="x", role="operator", label="",
            burn_label=False, link_expires=None, lifetime_s=lifetime_s,
        )  # fmt: skip

    expired = ticket(key, "A", "B", lifetime_s=-1)
    code, page = redeem(f"{b.url}/?fleet_ticket={expired}")
    assert code == 401 and "expired" in page
    stranger = ticket(key, "Z", "B")
    code, page = redeem(f"{b.url}/?fleet_ticket={stranger}")
    assert code == 401 and "not in this node's fleet" in page
    for_c = ticket(key, "A", "C")
    code, page = redeem(f"{b.url}/?fleet_ticket={for_c}")
    assert code == 401 and "for node 'C'" in page
    other_key = FleetKey(b"\x01" * 32)
    forged = ticket(other_key, "A", "B")
    code, page = redeem(f"{b.url}/?fleet_ticket={forged}")
    assert code == 401 and "not signed with the fleet" in page


def test_a_link_revoked_on_a_ends_its_session_on_b(nodes: tuple[Node, Node]) -> None:
    a, b = nodes
    link, url = ticket_to_b(a, "viewer")
    code, cookie = redeem(url)
    assert code == 200

    async def watch_then_revoke() -> int | None:
        ws_url = b.url.replace("http", "ws") + "/ws/monitor"
        async with connect(
            ws_url, additional_headers={"cookie": f"{COOKIE}={cookie}"}, max_size=None
        ) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 20))
            assert hello["type"] == "hello" and hello["role"] == "viewer"
            LinkStore(a.state_dir).revoke(link)  # on A: `agecast links revoke`
            try:
                while True:  # pictures and status until B ends the session
                    await asyncio.wait_for(ws.recv(), 20)
            except ConnectionClosed:
                pass
            return ws.close_code

    assert asyncio.run(watch_then_revoke()) == 4401
    with pytest.raises(urllib.error.HTTPError) as refused:
        b.get("/api/status", cookie=cookie)
    assert refused.value.code == 401


def test_peer_routes_need_the_fleet_key(nodes: tuple[Node, Node]) -> None:
    _, b = nodes
    for headers in ({}, {"x-agecast-fleet": "v1 A B 1 n " + "0" * 64}):
        req = urllib.request.Request(b.url + "/api/peer/status", headers=headers)
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(req, timeout=10)
        assert refused.value.code == 401


def test_fleet_status_prints_each_node_as_this_one_sees_it(nodes: tuple[Node, Node]) -> None:
    import os

    a, b = nodes
    env = {**os.environ, "AGECAST_STATE_DIR": str(a.state_dir), "AGECAST_NODE_NAME": "A",
           "AGECAST_FLEET": f"B={b.url},C=http://127.0.0.1:9", "COLUMNS": "200"}  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "agecast.cli", "fleet", "status"],
        env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr  # C is down
    lines = done.stdout.splitlines()
    b_line = next(line for line in lines if " B " in line)
    assert "up" in b_line and "cam1 (live, fx on" in b_line
    c_line = next(line for line in lines if " C " in line)
    assert "down: node C" in c_line and "connection refused" in done.stdout


def _serve(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {**os.environ, "AGECAST_STATE_DIR": str(tmp / "state")}
    cmd = [sys.executable, "-m", "agecast.cli", "serve", "--source", "testpattern:64x64@5",
           "--identity", "testpattern", "--port", "1", *args]  # fmt: skip
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)


def test_a_bad_fleet_entry_stops_the_start_saying_how_to_fix_it(tmp_path: Path) -> None:
    done = _serve(tmp_path, "--fleet", "B=ftp://cart-b:8443")
    assert done.returncode == 2
    assert "fleet entry 'B=ftp://cart-b:8443'" in done.stderr
    assert "NAME=URL" in done.stderr and "https://" in done.stderr
    done = _serve(tmp_path, "--fleet", "B=http://127.0.0.1:9")  # no key on this node
    assert done.returncode == 2 and "agecast fleet init" in done.stderr
