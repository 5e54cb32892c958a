"""The live camera's routes: health, status, metrics, operator controls (REST and
``/ws/control``) and the monitor's picture socket ``/ws/monitor``.

With several cameras (:mod:`agecast.api.cameras`) requests pick one with ``?camera=NAME``; an
unknown name gets a 404 (a socket: an error message, then close 4404).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Any

from fastapi import APIRouter, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import PlainTextResponse
from pydantic import ValidationError

from agecast import __version__
from agecast.api.auth import Link
from agecast.api.cameras import LiveCameras
from agecast.api.deps import AppState, Operator, State, app_state
from agecast.api.deps import Viewer as SignedIn
from agecast.api.fleet import fleet_view, with_fleet
from agecast.api.guard import socket_session
from agecast.api.metrics import fleet_metrics, render_metrics
from agecast.api.sockets import (
    error_reply,
    parse,
    picture_socket,
    public_reply,
    refuse,
    said,
    send_pictures,
    send_status,
    texts,
)
from agecast.api.takes import control_message as takes_control
from agecast.errors import AgecastError, UnknownCamera
from agecast.live.service import LiveService
from agecast.live.status import Status
from agecast.media.fanout import Viewer
from agecast.pipeline.controls import Control
from agecast.takes.recorder import local_utc_offset_s

log = logging.getLogger(__name__)

router = APIRouter()


@router.get("/api/health")
def health() -> dict[str, Any]:
    return {"ok": True, "version": __version__}


@router.get("/api/status", response_model=Status)
def status(state: State, link: SignedIn, camera: str | None = None) -> dict[str, Any]:
    """The camera's status (default: the first) and ``cameras``, one entry per camera; with a
    fleet, ``fleet``: every node's cameras."""
    try:
        return with_fleet(state, state.cameras.status(camera), link)
    except UnknownCamera as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(state: State) -> str:
    text = render_metrics(state.cameras.statuses())
    if state.fleet is None:
        return text
    return text + fleet_metrics(fleet_view(state, state.cameras.status()["cameras"], None))


@router.post("/api/control")
def control(body: Control, link: Operator, state: State) -> dict[str, Any]:
    values = body.model_dump(exclude_none=True)
    service = _camera(state, values.pop("camera", None))
    try:
        status = service.control(values)
    except (AgecastError, ValidationError) as exc:  # values the settings refuse
        raise HTTPException(status_code=422, detail=said(exc)) from exc
    state.audit_change(link, values, service)
    return status


def _camera(state: AppState, name: str | None) -> LiveService:
    try:
        return state.cameras.get(name)
    except UnknownCamera as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


async def _socket_camera(ws: WebSocket, state: AppState) -> LiveService | None:
    """The socket's ``?camera=`` (default: the first); an unknown one closes it, saying why."""
    try:
        return state.cameras.get(ws.query_params.get("camera"))
    except UnknownCamera as exc:
        await refuse(ws, 4404, str(exc))
        return None


@router.websocket("/ws/monitor")
async def monitor(ws: WebSocket) -> None:
    async with picture_socket(ws) as admitted:
        if admitted is not None:
            state, link, codec = admitted
            service = await _socket_camera(ws, state)
            if service is not None:
                await _monitor(ws, state, service, link, codec)


async def _monitor(
    ws: WebSocket, state: AppState, service: LiveService, link: Link, codec: str
) -> None:
    mark = link.label if link.burn_label and link.label else None
    viewer = Viewer(codec=codec, label=link.label, mark=mark)
    cameras, audit = state.cameras, state.auth.audit
    await ws.send_text(json.dumps(_hello(service, codec, cameras.names, link)))
    service.fanout.add(viewer)
    where = {"camera": service.name} if len(cameras) > 1 else {}
    audit.write("viewer_joined", viewer=viewer.id, label=link.label, link=link.id, **where)
    tasks = [
        asyncio.create_task(send_pictures(ws, viewer)),
        asyncio.create_task(
            send_status(ws, viewer, lambda: with_fleet(state, cameras.status(service.name), link))
        ),
        asyncio.create_task(_send_face_tags(ws, service)),
    ]
    try:
        async for text in texts(ws):
            reply = _viewer_message(service, viewer, link, text)
            if reply is not None:
                await ws.send_text(json.dumps(public_reply(reply)))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        service.fanout.remove(viewer)
        for task in tasks:
            task.cancel()
        audit.write(
            "viewer_left", viewer=viewer.id, label=link.label, link=link.id, sent=viewer.sent,
            dropped=viewer.dropped,
        )  # fmt: skip


@router.websocket("/ws/control")
async def control_ws(ws: WebSocket) -> None:
    state = app_state(ws)
    async with socket_session(ws, state.auth, "operator") as session:
        if session is None or await _socket_camera(ws, state) is None:
            return
        chosen = ws.query_params.get("camera") or None
        link = session.link
        try:
            async for text in texts(ws):
                if not session.valid():  # revoked between two checks: not one more change
                    await ws.close(code=4401, reason="link revoked or expired, or signed out")
                    return
                reply = await asyncio.to_thread(_control_message, state.cameras, chosen, text)
                if reply["type"] == "ack":
                    state.audit_change(link, reply["values"], state.cameras.get(reply["camera"]))
                elif reply["type"] in ("take_started", "take_stopped"):
                    state.audit(link, reply["type"], take=reply["take"]["id"])
                await ws.send_text(json.dumps(public_reply(reply)))
        except (WebSocketDisconnect, RuntimeError):
            pass


def _hello(service: LiveService, codec: str, cameras: list[str], link: Link) -> dict[str, Any]:
    status = service.status()
    return {
        "type": "hello",
        "codec": service.encoder.codec or "avc1.42C028",
        "transport": codec,
        "width": status["width"],
        "height": status["height"],
        "fps": status["source"]["fps"],
        "server_time_ms": time.time_ns() / 1e6,
        # the zone takes' timecodes are written in (recorder.wall_frames: the server's local
        # time of day), so the page's live timecode matches them wherever the browser is
        "tz_offset_min": round(local_utc_offset_s() / 60),
        "version": __version__,
        "camera": service.name,  # this socket's camera, one of
        "cameras": cameras,
        "role": link.role,  # what this sign-in may do: a viewer's page shows no operator controls
    }


async def _send_face_tags(ws: WebSocket, service: LiveService) -> None:
    """With a cast, each new picture's faces and who they are (``{"type": "faces"}``), for the
    page's name tags: drawn by the browser over the aged side, never into the pictures."""
    last = -1
    try:
        while service.built.fx.cast is not None:
            await asyncio.sleep(0.01)
            output = service.last_output
            if output is None or output.index == last:
                continue  # no new picture: nothing built, nothing sent
            tags = service.face_tags()
            if tags is not None:
                last = tags["i"]
                await ws.send_text(json.dumps(tags))
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        pass


def _viewer_message(
    service: LiveService, viewer: Viewer, link: Link, text: str
) -> dict[str, Any] | None:
    try:
        message = parse(text)
        kind = message["type"]
        if kind == "ping":
            return {"type": "pong", "t": message.get("t"), "server_time_ms": time.time_ns() / 1e6}
        if kind == "stats":
            values = message.get("glass_ms", [])
            if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
                raise ValueError("stats.glass_ms must be a list of numbers")
            if link.allows("operator"):  # the figure everyone sees: not a viewer's to set
                service.record_glass([float(v) for v in values[:1000]])
            return None
        if kind == "keyframe":  # within the viewer's key-frame budget (stream.fanout)
            service.fanout.ask_key_frame(viewer)
            return None
        raise ValueError(f"unknown message type {kind!r}; expected ping, stats or keyframe")
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        return error_reply(exc)


def _control_message(cameras: LiveCameras, chosen: str | None, text: str) -> dict[str, Any]:
    """One ``/ws/control`` message for the socket's camera (``chosen``: its ``?camera=``)."""
    try:
        message = parse(text)
        if message["type"] in ("record", "stop"):  # a take: {"type": "record", "scene", …}
            return takes_control(cameras, chosen, message)
        if message["type"] != "set" or not isinstance(message.get("values"), dict):
            raise ValueError('send {"type": "set", "values": {...}}, "record" or "stop"')
        values = Control.model_validate(message["values"]).model_dump(exclude_none=True)
        service = cameras.get(values.pop("camera", None) or chosen)
        status = service.control(values)
        return {"type": "ack", "values": values, "camera": service.name, "status": status}
    except (ValueError, TypeError, AgecastError) as exc:  # ValidationError is a ValueError
        return error_reply(exc)
