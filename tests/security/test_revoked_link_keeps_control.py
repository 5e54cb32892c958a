"""Attack 1: open /ws/control, have the link revoked, keep operating."""

from __future__ import annotations

import asyncio
import json

from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agecast.api.auth import COOKIE
from tests.api.conftest import Running


async def _operate_after_revocation(server: Running, revoke: str, wait_s: float) -> list[str]:
    """What the socket answers to set/record/stop sent after the link was revoked."""
    link, _ = server.auth.links.create("operator", label=revoke, expires_s=3600)
    cookie = server.auth.sessions.issue(link)[0]
    answers: list[str] = []
    async with connect(
        f"{server.ws}/ws/control", additional_headers={"Cookie": f"{COOKIE}={cookie}"}
    ) as ws:
        server.auth.links.revoke(revoke)
        await asyncio.sleep(wait_s)
        for message in (
            {"type": "set", "values": {"bypass": True, "blend": 0.3}},
            {"type": "record", "scene": "revoked", "take": "1"},
            {"type": "stop"},
        ):
            try:
                await ws.send(json.dumps(message))
                answers.append(json.loads(await asyncio.wait_for(ws.recv(), 5))["type"])
            except ConnectionClosed as closed:
                answers.append(f"closed {closed.rcvd.code if closed.rcvd else None}")
                break
    return answers


def test_a_revoked_link_cannot_set_record_or_stop_on_an_open_control_socket(
    server: Running,
) -> None:
    answers = asyncio.run(_operate_after_revocation(server, "fired-dit", 0.0))
    assert "ack" not in answers and "take_started" not in answers, answers
    assert server.service.built.fx.look.bypass is False
    assert server.service.recorder is None or not server.service.recorder.active


def test_the_control_socket_of_a_revoked_link_is_closed_within_seconds(server: Running) -> None:
    answers = asyncio.run(_operate_after_revocation(server, "fired-dop", 2.5))
    assert answers == ["closed 4401"], answers
