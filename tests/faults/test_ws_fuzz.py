"""Random, malformed and oversized WebSocket messages to /ws/monitor and /ws/control.

Every message gets an error reply or that one socket is closed; the server never crashes:
afterwards /api/health answers, a fresh viewer gets pictures and frames still flow. The
messages come from a seeded generator (the same run every time), bounded in count.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections import Counter

import httpx
import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from tests.api.conftest import Running

from .conftest import status
from .viewers import watch_sync

SEED = 20261121
PER_KIND = 12  # messages of each random kind, per endpoint
REPLY_S = 3.0
Message = str | bytes


def random_unicode(rng: random.Random, size: int) -> str:
    # any code point but the surrogates, which UTF-8 (and so a WebSocket text frame) cannot carry
    points = (rng.choice([rng.randrange(0x20, 0x7F), rng.randrange(0xA0, 0xD800),
                          rng.randrange(0xE000, 0x110000), rng.randrange(0, 0x20)])
              for _ in range(size))  # fmt: skip
    return "".join(chr(p) for p in points)


def random_json(rng: random.Random, depth: int = 0) -> object:
    kind = rng.randrange(7 if depth < 4 else 4)
    if kind == 0:
        return rng.choice([None, True, False, 0, -1, 2**70, 1e308, -0.0, ""])
    if kind == 1:
        return rng.uniform(-1e9, 1e9)
    if kind == 2:
        return random_unicode(rng, rng.randrange(0, 40))
    if kind == 3:
        return rng.choice(["set", "ping", "stats", "keyframe", "values", "glass_ms", "identity"])
    if kind == 4:
        return [random_json(rng, depth + 1) for _ in range(rng.randrange(0, 5))]
    keys = ["type", "values", "t", "glass_ms", "bypass", "blend", "layout", "identity"]
    return {rng.choice(keys): random_json(rng, depth + 1) for _ in range(rng.randrange(0, 5))}


def messages(rng: random.Random) -> list[Message]:
    out: list[Message] = []
    out += [rng.randbytes(rng.randrange(0, 4096)) for _ in range(PER_KIND)]
    out += [random_unicode(rng, rng.randrange(1, 2000)) for _ in range(PER_KIND)]
    out += [json.dumps(random_json(rng)) for _ in range(PER_KIND)]
    # structured but wrong: a known type with random values
    for _ in range(PER_KIND):
        kind = rng.choice(["set", "ping", "stats"])
        body = {"type": kind, "values": random_json(rng), "glass_ms": random_json(rng)}
        if kind == "ping":
            body["t"] = random_json(rng)
            body["glass_ms"] = "not a list"  # so that every message has a reply
        if kind == "stats":
            body["glass_ms"] = {"not": "a list"}
        out.append(json.dumps(body))
    # under the 64 KiB message limit, far deeper than the JSON parser's recursion limit
    out += ["[" * 20_000 + "]" * 20_000, '{"type":' * 6_000 + "1" + "}" * 6_000]
    out += ['{"type": "ping", "t": ' + "9" * 5000 + "}"]  # past Python's int-string limit
    out += ["x" * (1 << 20), rng.randbytes(1 << 20)]  # 1 MB text and binary
    return out


async def _reply(ws: ClientConnection) -> str:
    """The next text reply (pictures and status pushes skipped): its type, or 'timeout'."""
    deadline = time.monotonic() + REPLY_S
    while (left := deadline - time.monotonic()) > 0:
        try:
            message = await asyncio.wait_for(ws.recv(), left)
        except TimeoutError:
            break
        if isinstance(message, str):
            kind = str(json.loads(message).get("type"))
            if kind not in ("hello", "status"):
                return kind
    return "timeout"


async def _fuzz(url: str, headers: dict[str, str], batch: list[Message]) -> Counter[str]:
    outcomes: Counter[str] = Counter()
    ws: ClientConnection | None = None
    try:
        for message in batch:
            if ws is None:
                ws = await connect(url, max_size=None, compression=None, additional_headers=headers)
            try:
                await ws.send(message)
                outcomes[await _reply(ws)] += 1
            except ConnectionClosed:
                outcomes["closed"] += 1
                await ws.close()
                ws = None
            await asyncio.sleep(0.06)  # within the 20 messages/s a connection may send
    finally:
        if ws is not None:
            await ws.close()
    return outcomes


@pytest.mark.slow
@pytest.mark.timeout(240)
@pytest.mark.parametrize("path", ["/ws/monitor", "/ws/control"])
def test_garbage_gets_errors_or_a_closed_socket_and_the_server_lives(
    server: Running, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    batch = messages(random.Random(f"{SEED}{path}"))
    with caplog.at_level(logging.ERROR):
        outcomes = asyncio.run(_fuzz(f"{server.ws}{path}", server.ws_headers("operator"), batch))
    logging.getLogger(__name__).info("%s: %s", path, dict(outcomes))
    assert sum(outcomes.values()) == len(batch)
    assert set(outcomes) <= {"error", "closed", "pong", "ack"}, outcomes  # never silence
    assert outcomes["error"] >= len(batch) // 2
    escaped = [r for r in caplog.records if r.name.startswith(("uvicorn", "agecast.api"))]
    assert not escaped, [r.getMessage() for r in escaped]  # nothing escaped a handler

    assert httpx.get(f"{server.base}/api/health", timeout=5).json()["ok"] is True
    _, pictures = watch_sync(
        f"{server.ws}/ws/monitor", server.ws_headers("viewer"), seconds=10.0, limit=10
    )
    assert len(pictures) == 10  # a fresh viewer still watches
    with server.client("viewer") as client:
        shown = status(client)
    assert shown["error"] is None and server.service.built.pipeline.running
