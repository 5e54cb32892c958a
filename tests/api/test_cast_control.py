"""The cast's per-member controls over the API (``members``), on a live server that runs the
cast:demo clip with two enrolled leads."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.cast.conftest import IDENTITIES, enrol_leads

from .conftest import Running, running_server


@pytest.fixture(scope="module")
def cast_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    root = tmp_path_factory.mktemp("cast-api")
    cast = enrol_leads(root)  # root/state: the server's state folder, its cast.json
    with running_server(
        root, source=str(cast.clip), identity="testpattern", state_dir=cast.state_dir
    ) as srv:
        yield srv


def members_of(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {m["name"]: m for m in status["cast"]["members"]}


def controls(status: dict[str, Any]) -> dict[str, tuple[Any, ...]]:
    """Each member's controls (what an operator set), without who is in the picture now."""
    return {
        n: (m["identity"], m["age"], m["blend"], m["bypass"]) for n, m in members_of(status).items()
    }


def test_status_lists_the_cast(cast_server: Running) -> None:
    status = cast_server.client("viewer").get("/api/status").json()
    members = members_of(status)
    assert set(members) == set(IDENTITIES)
    for name, identity in IDENTITIES.items():
        assert members[name]["identity"] == identity
        assert members[name]["bypass"] is False
    assert set(status["cast"]["faces"]) == {"pending", "recognised", "unknown", "ambiguous"}


def test_a_member_change_shows_in_the_status_and_leaves_the_other(cast_server: Running) -> None:
    http = cast_server.client("operator")
    try:
        r = http.post(
            "/api/control", json={"members": {"lead-a": {"age": 40, "blend": 0.8, "bypass": True}}}
        )
        assert r.status_code == 200, r.text
        a = members_of(r.json())["lead-a"]
        assert (a["age"], a["blend"], a["bypass"]) == (40, 0.8, True)
        status = http.get("/api/status").json()
        a, b = members_of(status)["lead-a"], members_of(status)["lead-b"]
        assert (a["age"], a["blend"], a["bypass"]) == (40, 0.8, True)
        assert (b["age"], b["blend"], b["bypass"]) == (None, None, False)  # the other: untouched
        assert status["look"]["bypass"] is False  # nor the whole look
    finally:
        http.post(
            "/api/control",
            json={"members": {"lead-a": {"age": None, "blend": None, "bypass": False}}},
        )


def test_a_member_takes_another_installed_identity(cast_server: Running) -> None:
    http = cast_server.client("operator")
    try:
        r = http.post("/api/control", json={"members": {"lead-b": {"identity": "testpattern"}}})
        assert r.status_code == 200, r.text
        assert members_of(http.get("/api/status").json())["lead-b"]["identity"] == "testpattern"
        r = http.post("/api/control", json={"members": {"lead-b": {"identity": "nobody-here"}}})
        assert r.status_code == 422 and "nobody-here" in r.json()["detail"]
        assert members_of(http.get("/api/status").json())["lead-b"]["identity"] == "testpattern"
    finally:
        http.post("/api/control", json={"members": {"lead-b": {"identity": IDENTITIES["lead-b"]}}})


def test_an_unknown_member_is_refused_naming_the_cast(cast_server: Running) -> None:
    http = cast_server.client("operator")
    r = http.post("/api/control", json={"members": {"extra-7": {"bypass": True}}})
    assert r.status_code == 422
    detail = r.json()["detail"]
    assert "extra-7" in detail and "lead-a" in detail and "lead-b" in detail


@pytest.mark.parametrize(
    "change",
    [
        {"lead-a": {"colour": "red"}},  # not a member control
        {"lead-a": {"age": 200}},  # past the oldest age
        {"lead-a": {"blend": -0.1}},
        {"lead-a": {"bypass": "yes"}},  # strict: not a boolean
        {"lead-a": {"identity": "Not An Id!"}},
        {"lead-a": 40},
    ],
)
def test_a_bad_member_field_is_refused_and_changes_nothing(
    cast_server: Running, change: dict[str, Any]
) -> None:
    http = cast_server.client("operator")
    before = controls(http.get("/api/status").json())
    r = http.post("/api/control", json={"members": change})
    assert r.status_code == 422, change
    assert controls(http.get("/api/status").json()) == before


def test_a_viewer_cannot_change_a_member(cast_server: Running) -> None:
    r = cast_server.client("viewer").post("/api/control", json={"members": {"lead-a": {"age": 9}}})
    assert r.status_code == 403


def test_the_control_socket_changes_a_member(cast_server: Running) -> None:
    async def set_over_socket() -> dict[str, Any]:
        async with connect(
            f"{cast_server.ws}/ws/control", additional_headers=cast_server.ws_headers("operator")
        ) as ws:
            await ws.send(
                json.dumps({"type": "set", "values": {"members": {"lead-b": {"age": 33}}}})
            )
            return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))

    try:
        reply = asyncio.run(set_over_socket())
        assert reply["type"] == "ack", reply
        assert members_of(reply["status"])["lead-b"]["age"] == 33
    finally:
        cast_server.client("operator").post(
            "/api/control", json={"members": {"lead-b": {"age": None}}}
        )


def test_the_monitor_socket_says_who_is_where(cast_server: Running) -> None:
    """Both leads are recognised and named in the faces messages, each on their own side."""

    async def faces_messages(n: int) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        async with connect(
            f"{cast_server.ws}/ws/monitor", additional_headers=cast_server.ws_headers("viewer")
        ) as ws:
            hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
            assert hello["role"] == "viewer"
            deadline = time.monotonic() + 60
            while len(out) < n and time.monotonic() < deadline:
                message = await asyncio.wait_for(ws.recv(), 10)
                if isinstance(message, str) and json.loads(message)["type"] == "faces":
                    out.append(json.loads(message))
        return out

    messages = asyncio.run(faces_messages(60))
    named = [
        {f["name"]: f["box"] for f in m["faces"] if f["state"] == "recognised"} for m in messages
    ]
    both = [n for n in named if set(n) == set(IDENTITIES)]
    assert both, messages[-1]
    for n in both:
        # lead-a stands left, lead-b right (cast.scene)
        assert (n["lead-a"][0] + n["lead-a"][2]) / 2 < 0.5 < (n["lead-b"][0] + n["lead-b"][2]) / 2
    indices = [m["i"] for m in messages]
    assert indices == sorted(set(indices))  # one message per picture, in order
