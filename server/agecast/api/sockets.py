"""What every socket shares: messages in (size- and rate-limited), pictures and status out,
refusals that say why. ``/ws/monitor``, ``/ws/control`` (:mod:`agecast.api.live`) and
``/ws/review`` (:mod:`agecast.api.review`) are built from these."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from pydantic import ValidationError

from agecast.api.auth import Link
from agecast.api.deps import AppState, app_state
from agecast.api.guard import public, socket_session
from agecast.errors import explain_fields
from agecast.media.fanout import Viewer

log = logging.getLogger(__name__)

MAX_MESSAGE = 64 * 1024  # bytes a viewer may send in one message
RATE = 20.0  # messages per second a connection may send on average …
BURST = 60.0  # … with bursts up to this many


async def texts(ws: WebSocket) -> AsyncIterator[str]:
    """Text messages from a socket, rate-limited; binary ones are answered with an error.

    A connection that keeps sending faster than :data:`RATE` is told, then closed.
    """
    allowance, last = BURST, time.monotonic()
    over = 0
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return
        now = time.monotonic()
        allowance = min(BURST, allowance + (now - last) * RATE)
        last = now
        if allowance < 1:
            over += 1
            if over > BURST:
                await ws.close(code=1008, reason="too many messages")
                return
            await ws.send_text(
                json.dumps({"type": "error", "error": "too many messages: slow down"})
            )
            continue
        allowance -= 1
        if message.get("text") is not None:
            yield str(message["text"])
        else:
            await ws.send_text(json.dumps({"type": "error", "error": "send JSON text messages"}))


async def send_pictures(ws: WebSocket, viewer: Viewer) -> None:
    try:
        while (payload := await viewer.next()) is not None:
            await ws.send_bytes(payload)
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        pass
    except Exception:
        log.exception("sending to viewer %d failed", viewer.id)


async def send_status(ws: WebSocket, viewer: Viewer, status: Callable[[], dict[str, Any]]) -> None:
    """Status every second (the session is watched by ``guard.socket_session``); a viewer the
    fan-out dropped for not reading is closed."""
    try:
        while True:
            await asyncio.sleep(1.0)
            if viewer.stalled:
                await asyncio.wait_for(ws.close(code=4408, reason="not reading: dropped"), 5)
                return
            await ws.send_text(json.dumps({"type": "status", **status()}))
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError, TimeoutError):
        pass


def parse(text: str) -> dict[str, Any]:
    if len(text) > MAX_MESSAGE:
        raise ValueError(f"message of {len(text)} bytes is over the {MAX_MESSAGE}-byte limit")
    try:
        message = json.loads(text)
    except RecursionError as exc:
        raise ValueError("message nested too deeply") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError('messages are JSON objects with a "type"')
    return message


def said(exc: Exception) -> str:
    """An error as its sender reads it; a message that did not validate says which field and
    what it must be (:func:`agecast.errors.explain_fields`), not pydantic's report."""
    return explain_fields(exc) if isinstance(exc, ValidationError) else str(exc)


def error_reply(exc: Exception, about: str = "") -> dict[str, Any]:
    """A socket's ``{"type": "error"}`` reply for ``exc``, after ``about`` (what was refused)."""
    return {"type": "error", "error": about + said(exc)}


def public_reply(reply: dict[str, Any]) -> dict[str, Any]:
    """A socket reply with its error, if any, as a client may read it (``guard.public``)."""
    if reply.get("type") == "error" and isinstance(reply.get("error"), str):
        return {**reply, "error": public(reply["error"])}
    return reply


async def refuse(ws: WebSocket, code: int, error: str) -> None:
    """Say why on the socket (the page shows it and stops retrying), then close it."""
    try:
        error = public(error)
        await ws.send_text(json.dumps({"type": "error", "error": error, "fatal": True}))
        await ws.close(code=code, reason=error[:120])
    except (WebSocketDisconnect, RuntimeError):
        pass


@asynccontextmanager
async def picture_socket(ws: WebSocket) -> AsyncIterator[tuple[AppState, Link, str] | None]:
    """Admit a picture socket (``/ws/monitor``, ``/ws/review``): its ``?codec=`` (h264 by
    default, or jpeg; anything else closes it) and a viewer's session (``guard``). Yields (app
    state, link, codec), or None where it was refused and closed."""
    codec = ws.query_params.get("codec", "h264")
    if codec not in ("h264", "jpeg"):
        await ws.close(code=1008, reason="codec must be h264 or jpeg")
        yield None
        return
    state = app_state(ws)
    async with socket_session(ws, state.auth, "viewer") as session:
        yield None if session is None else (state, session.link, codec)
