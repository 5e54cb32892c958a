"""The FastAPI app factory. The lifespan owns the live services (pipeline, encoder, fan-out),
one per camera.

Everything but ``/api/health`` needs a session (``api.auth``): viewers may watch and read
status, operators may also change settings. ``api.guard`` is the one door: same-origin check
for changes, session, role before the body is read, body size, security headers; sockets are
admitted there too and closed when their session ends. Sockets limit message size and rate.
With several cameras (``api.cameras``) requests pick one with ``?camera=NAME``; an unknown
name gets a 404 (a socket: an error message, then close 4404).
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import FastAPI, HTTPException, Request, Response, WebSocket, WebSocketDisconnect
from fastapi.exceptions import RequestValidationError
from fastapi.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
)
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from agecast import __version__
from agecast.api.auth import COOKIE, Auth, Link
from agecast.api.cameras import LiveCameras
from agecast.api.guard import (
    SIGN_OUT,
    Guard,
    public,
    session_cookie,
    sign_in_page,
    socket_session,
)
from agecast.api.identities import include_identities
from agecast.api.metrics import render_metrics
from agecast.api.review import _refuse, include_review
from agecast.api.takes import control_message as takes_control
from agecast.api.takes import include_takes
from agecast.errors import AgecastError, UnknownCamera
from agecast.live.service import LiveService
from agecast.media.fanout import Viewer

log = logging.getLogger(__name__)

UI_DIR = Path(__file__).resolve().parents[3] / "monitor_ui"
MAX_MESSAGE = 64 * 1024  # bytes a viewer may send in one message
RATE = 20.0  # messages per second a connection may send on average …
BURST = 60.0  # … with bursts up to this many


class MemberControl(BaseModel):
    """One cast member's controls (``members`` in :class:`Control`)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    identity: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    age: float | None = Field(None, ge=0, le=130)
    blend: float | None = Field(None, ge=0, le=1)
    bypass: bool | None = None


class Control(BaseModel):
    """Operator controls; every field optional, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not "false"
    bypass: bool | None = None
    blend: float | None = Field(None, ge=0, le=1)
    color_transfer: str | None = Field(None, pattern="^(auto|rct|rct-lab|none)$")
    mask_feather: float | None = Field(None, ge=0, le=0.5)
    layout: str | None = Field(None, pattern="^(side-by-side|aged|raw)$")
    identity: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")  # installed id
    ai_mark: bool | None = None
    age: float | None = Field(None, ge=0, le=130)
    # years per region (forehead, eyes, mouth, hair): {"eyes": -10} or a list of four
    age_offsets: dict[str, float] | list[float] | None = None
    camera: str | None = Field(None, min_length=1, max_length=16)  # default: the first
    # the cast's members by name: {"lead-a": {"age": 40, "identity": "…"}}
    members: dict[str, MemberControl] | None = Field(None, max_length=64)


def create_app(
    service_factory: Callable[[], LiveService | Sequence[LiveService]],
    *,
    auth: Auth,
    ui_dir: Path = UI_DIR,
) -> FastAPI:
    """Build the app; ``service_factory`` makes the live service(s), one per camera, when the
    app starts."""
    cameras = LiveCameras()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        made = await asyncio.to_thread(service_factory)
        services = [made] if isinstance(made, LiveService) else list(made)
        loop = asyncio.get_running_loop()
        try:
            for service in services:
                service.fanout.loop = loop
                service.start()
        except BaseException:
            for service in services:  # the cameras already running, and every built one
                await asyncio.to_thread(service.stop)
            raise
        cameras.set(services)
        for service in services:
            manifest = service.built.fx.identity.manifest
            where = {"camera": service.name} if len(services) > 1 else {}
            auth.audit.write("identity_loaded", identity=manifest.id, actor=manifest.actor, **where)
        try:
            yield
        finally:
            for service in services:
                await asyncio.to_thread(service.stop)

    # no /docs: its page loads scripts from a CDN, and a set LAN reaches nothing outside
    app = FastAPI(
        title="agecast", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.add_middleware(Guard, auth=auth)
    app.add_exception_handler(RequestValidationError, _unprocessable)
    app.add_exception_handler(StarletteHTTPException, _http_error)

    def svc(camera: str | None = None) -> LiveService:
        """The camera's service (the first by default); an unknown camera is a 404."""
        try:
            return cameras.get(camera)
        except UnknownCamera as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc

    def audit_change(link: Link, values: dict[str, Any], service: LiveService) -> None:
        where = {"camera": service.name} if len(cameras) > 1 else {}
        auth.audit.write("settings", by=link.label, link=link.id, values=values, **where)
        if "identity" in values:
            manifest = service.built.fx.identity.manifest
            auth.audit.write(
                "identity_loaded", identity=manifest.id, actor=manifest.actor, by=link.label,
                **where,
            )  # fmt: skip

    def operator(request: Request) -> Link:
        link: Link = request.state.link
        if not link.allows("operator"):
            raise HTTPException(status_code=403, detail="operators only: this link is view-only")
        return link

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/api/status")
    def status(camera: str | None = None) -> dict[str, Any]:
        """The camera's status (default: the first) and ``cameras``, one entry per camera."""
        try:
            return cameras.status(camera)
        except UnknownCamera as exc:
            raise HTTPException(status_code=404, detail=str(exc)) from exc

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        return render_metrics(cameras.statuses())

    @app.post("/api/control")
    def control(body: Control, request: Request) -> dict[str, Any]:
        link = operator(request)
        values = body.model_dump(exclude_none=True)
        service = svc(values.pop("camera", None))
        try:
            status = service.control(values)
        except (AgecastError, ValidationError) as exc:  # values the settings refuse
            raise HTTPException(status_code=422, detail=str(exc)) from exc
        audit_change(link, values, service)
        return status

    async def camera_of(ws: WebSocket) -> LiveService | None:
        """The socket's ``?camera=`` (default: the first); an unknown one closes it, saying why."""
        try:
            return cameras.get(ws.query_params.get("camera"))
        except UnknownCamera as exc:
            await _refuse(ws, 4404, str(exc))
            return None

    @app.websocket("/ws/monitor")
    async def monitor(ws: WebSocket) -> None:
        codec = ws.query_params.get("codec", "h264")
        if codec not in ("h264", "jpeg"):
            await ws.close(code=1008, reason="codec must be h264 or jpeg")
            return
        async with socket_session(ws, auth, "viewer") as session:
            if session is not None:
                await _monitor(ws, session.link, codec)

    async def _monitor(ws: WebSocket, link: Link, codec: str) -> None:
        service = await camera_of(ws)
        if service is None:
            return
        mark = link.label if link.burn_label and link.label else None
        viewer = Viewer(codec=codec, label=link.label, mark=mark)
        await ws.send_text(json.dumps(_hello(service, codec, cameras.names, link)))
        service.fanout.add(viewer)
        where = {"camera": service.name} if len(cameras) > 1 else {}
        auth.audit.write("viewer_joined", viewer=viewer.id, label=link.label, link=link.id, **where)
        sender = asyncio.create_task(_send_pictures(ws, viewer))
        status_task = asyncio.create_task(
            _send_status(ws, viewer, lambda: cameras.status(service.name))
        )
        tags_task = asyncio.create_task(_send_face_tags(ws, service))
        try:
            async for text in _texts(ws):
                reply = _viewer_message(service, viewer, link, text)
                if reply is not None:
                    await ws.send_text(json.dumps(public_reply(reply)))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            service.fanout.remove(viewer)
            sender.cancel()
            status_task.cancel()
            tags_task.cancel()
            auth.audit.write(
                "viewer_left", viewer=viewer.id, label=link.label, link=link.id, sent=viewer.sent,
                dropped=viewer.dropped,
            )  # fmt: skip

    @app.websocket("/ws/control")
    async def control_ws(ws: WebSocket) -> None:
        async with socket_session(ws, auth, "operator") as session:
            if session is None or await camera_of(ws) is None:
                return
            chosen = ws.query_params.get("camera") or None
            link = session.link
            try:
                async for text in _texts(ws):
                    if not session.valid():  # revoked between two checks: not one more change
                        await ws.close(code=4401, reason="link revoked or expired, or signed out")
                        return
                    reply = await asyncio.to_thread(_control_message, cameras, chosen, text)
                    if reply["type"] == "ack":
                        audit_change(link, reply["values"], cameras.get(reply["camera"]))
                    elif reply["type"] in ("take_started", "take_stopped"):
                        auth.audit.write(reply["type"], take=reply["take"]["id"], by=link.label)
                    await ws.send_text(json.dumps(public_reply(reply)))
            except (WebSocketDisconnect, RuntimeError):
                pass

    @app.post(SIGN_OUT)
    def sign_out(request: Request) -> Response:
        """End this browser's session (its cookie is refused from now on) and forget it."""
        link: Link = request.state.link
        auth.sessions.end(session_cookie(request.headers))
        auth.audit.write("logout", link=link.id, label=link.label)
        page = "text/html" in request.headers.get("accept", "")  # the page's Sign out form
        response: Response = (
            RedirectResponse("/", status_code=303) if page else JSONResponse({"signed_out": True})
        )
        response.delete_cookie(COOKIE, httponly=True, samesite="strict")
        return response

    include_review(app, auth, lambda: svc().settings.resolved_takes_dir)
    include_takes(app, cameras, auth)
    include_identities(app, cameras)

    if ui_dir.is_dir():
        app.mount("/ui", StaticFiles(directory=ui_dir), name="ui")

        @app.get("/", include_in_schema=False)
        def index(request: Request, token: str | None = None) -> Response:
            if token is not None:
                return _sign_in(auth, request, token)
            return FileResponse(ui_dir / "index.html", headers={"Cache-Control": "no-store"})

    return app


def _sign_in(auth: Auth, request: Request, token: str) -> Response:
    """Exchange a link's token for a session cookie, then drop the token from the address."""
    link = auth.links.redeem(token)
    client = request.client.host if request.client else "?"
    if link is None:
        auth.audit.write("login_refused", client=client)
        message = "This link has expired, been revoked or already been used. Ask for a new one."
        return HTMLResponse(sign_in_page(message), status_code=401)
    value, max_age = auth.sessions.issue(link)
    rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    response = RedirectResponse("/?" + rest if rest else "/", status_code=303)
    response.set_cookie(
        COOKIE, value, max_age=max_age, httponly=True, samesite="strict",
        secure=auth.secure_cookies,
    )  # fmt: skip
    auth.audit.write("login", link=link.id, label=link.label, role=link.role, client=client)
    return response


async def _texts(ws: WebSocket) -> AsyncIterator[str]:
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
        "version": __version__,
        "camera": service.name,  # this socket's camera, one of
        "cameras": cameras,
        "role": link.role,  # what this sign-in may do: a viewer's page shows no operator controls
    }


async def _send_pictures(ws: WebSocket, viewer: Viewer) -> None:
    try:
        while (payload := await viewer.next()) is not None:
            await ws.send_bytes(payload)
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        pass
    except Exception:
        log.exception("sending to viewer %d failed", viewer.id)


async def _send_status(ws: WebSocket, viewer: Viewer, status: Callable[[], dict[str, Any]]) -> None:
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


async def _send_face_tags(ws: WebSocket, service: LiveService) -> None:
    """With a cast, each new picture's faces and who they are (``{"type": "faces"}``), for the
    page's name tags: drawn by the browser over the aged side, never into the pictures."""
    last = -1
    try:
        while service.built.fx.cast is not None:
            await asyncio.sleep(0.01)
            tags = service.face_tags()
            if tags is not None and tags["i"] != last:
                last = tags["i"]
                await ws.send_text(json.dumps(tags))
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        pass


def _parse(text: str) -> dict[str, Any]:
    if len(text) > MAX_MESSAGE:
        raise ValueError(f"message of {len(text)} bytes is over the {MAX_MESSAGE}-byte limit")
    try:
        message = json.loads(text)
    except RecursionError as exc:
        raise ValueError("message nested too deeply") from exc
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError('messages are JSON objects with a "type"')
    return message


def _viewer_message(
    service: LiveService, viewer: Viewer, link: Link, text: str
) -> dict[str, Any] | None:
    try:
        message = _parse(text)
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
        return {"type": "error", "error": str(exc)}


def _control_message(cameras: LiveCameras, chosen: str | None, text: str) -> dict[str, Any]:
    """One ``/ws/control`` message for the socket's camera (``chosen``: its ``?camera=``)."""
    try:
        message = _parse(text)
        if message["type"] in ("record", "stop"):  # a take: {"type": "record", "scene", …}
            return takes_control(cameras, chosen, message)
        if message["type"] != "set" or not isinstance(message.get("values"), dict):
            raise ValueError('send {"type": "set", "values": {...}}, "record" or "stop"')
        values = Control.model_validate(message["values"]).model_dump(exclude_none=True)
        service = cameras.get(values.pop("camera", None) or chosen)
        status = service.control(values)
        return {"type": "ack", "values": values, "camera": service.name, "status": status}
    except (
        ValueError,
        TypeError,
        AgecastError,
    ) as exc:  # pydantic's ValidationError is a ValueError
        return {"type": "error", "error": str(exc)}


async def _unprocessable(request: Request, exc: Exception) -> Response:
    """422 naming each bad field and why, never echoing what was sent (it may be huge, or a
    secret typed into the wrong field)."""
    if not isinstance(exc, RequestValidationError):
        raise exc
    detail = [
        {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", ""))[:200]}
        for error in exc.errors()[:20]
    ]
    return JSONResponse({"detail": detail}, status_code=422)


def public_reply(reply: dict[str, Any]) -> dict[str, Any]:
    """A socket reply with its error, if any, as a client may read it (``guard.public``)."""
    if reply.get("type") == "error" and isinstance(reply.get("error"), str):
        return {**reply, "error": public(reply["error"])}
    return reply


async def _http_error(request: Request, exc: Exception) -> Response:
    """Every HTTP error as FastAPI writes it, with server paths cut (``guard.public``)."""
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    detail = public(exc.detail) if isinstance(exc.detail, str) else exc.detail
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
