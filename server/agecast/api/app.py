"""The FastAPI app factory. The lifespan owns the live service (pipeline, encoder, fan-out)."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from agecast import __version__
from agecast.api.metrics import render_metrics
from agecast.errors import AgecastError
from agecast.stream.fanout import Viewer
from agecast.stream.live import LiveService

log = logging.getLogger(__name__)

UI_DIR = Path(__file__).resolve().parents[3] / "monitor_ui"
MAX_MESSAGE = 64 * 1024  # bytes a viewer may send in one message


class Control(BaseModel):
    """Operator controls; every field optional, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid")
    bypass: bool | None = None
    blend: float | None = Field(None, ge=0, le=1)
    color_transfer: str | None = Field(None, pattern="^(rct|rct-lab|none)$")
    mask_feather: float | None = Field(None, ge=0, le=0.5)
    layout: str | None = Field(None, pattern="^(side-by-side|aged|raw)$")
    identity: str | None = None


def create_app(service_factory: Callable[[], LiveService], *, ui_dir: Path = UI_DIR) -> FastAPI:
    """Build the app; ``service_factory`` makes the live service when the app starts."""
    holder: dict[str, LiveService] = {}

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service = await asyncio.to_thread(service_factory)
        service.fanout.loop = asyncio.get_running_loop()
        service.start()
        holder["service"] = service
        try:
            yield
        finally:
            await asyncio.to_thread(service.stop)

    app = FastAPI(title="agecast", version=__version__, lifespan=lifespan)

    def svc() -> LiveService:
        return holder["service"]

    @app.get("/api/health")
    def health() -> dict[str, Any]:
        return {"ok": True, "version": __version__}

    @app.get("/api/status")
    def status() -> dict[str, Any]:
        return svc().status()

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics() -> str:
        return render_metrics(svc().status())

    @app.post("/api/control")
    def control(body: Control) -> dict[str, Any]:
        try:
            return svc().control(body.model_dump(exclude_none=True))
        except AgecastError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from exc

    @app.websocket("/ws/monitor")
    async def monitor(ws: WebSocket) -> None:
        codec = ws.query_params.get("codec", "h264")
        if codec not in ("h264", "jpeg"):
            await ws.close(code=1008, reason="codec must be h264 or jpeg")
            return
        await ws.accept()
        service = svc()
        viewer = Viewer(codec=codec, label=ws.query_params.get("label", ""))
        await ws.send_text(json.dumps(_hello(service, codec)))
        service.fanout.add(viewer)
        sender = asyncio.create_task(_send_pictures(ws, viewer))
        status_task = asyncio.create_task(_send_status(ws, service))
        try:
            while (text := await _receive_text(ws)) is not None:
                reply = _viewer_message(service, text)
                if reply is not None:
                    await ws.send_text(json.dumps(reply))
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            service.fanout.remove(viewer)
            sender.cancel()
            status_task.cancel()

    @app.websocket("/ws/control")
    async def control_ws(ws: WebSocket) -> None:
        await ws.accept()
        try:
            while True:
                text = await ws.receive_text()
                await ws.send_text(
                    json.dumps(await asyncio.to_thread(_control_message, svc(), text))
                )
        except (WebSocketDisconnect, RuntimeError):
            pass

    if ui_dir.is_dir():
        app.mount("/ui", StaticFiles(directory=ui_dir), name="ui")

        @app.get("/", include_in_schema=False)
        def index() -> FileResponse:
            return FileResponse(ui_dir / "index.html", headers={"Cache-Control": "no-store"})

    return app


async def _receive_text(ws: WebSocket) -> str | None:
    """The next text message; a binary one is answered with an error. None when closed."""
    while True:
        message = await ws.receive()
        if message["type"] == "websocket.disconnect":
            return None
        if message.get("text") is not None:
            return str(message["text"])
        await ws.send_text(json.dumps({"type": "error", "error": "send JSON text messages"}))


def _hello(service: LiveService, codec: str) -> dict[str, Any]:
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
    }


async def _send_pictures(ws: WebSocket, viewer: Viewer) -> None:
    try:
        while (payload := await viewer.next()) is not None:
            await ws.send_bytes(payload)
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        pass
    except Exception:
        log.exception("sending to viewer %d failed", viewer.id)


async def _send_status(ws: WebSocket, service: LiveService) -> None:
    try:
        while True:
            await asyncio.sleep(1.0)
            await ws.send_text(json.dumps({"type": "status", **service.status()}))
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        pass


def _parse(text: str) -> dict[str, Any]:
    if len(text) > MAX_MESSAGE:
        raise ValueError(f"message of {len(text)} bytes is over the {MAX_MESSAGE}-byte limit")
    message = json.loads(text)
    if not isinstance(message, dict) or not isinstance(message.get("type"), str):
        raise ValueError('messages are JSON objects with a "type"')
    return message


def _viewer_message(service: LiveService, text: str) -> dict[str, Any] | None:
    try:
        message = _parse(text)
        kind = message["type"]
        if kind == "ping":
            return {"type": "pong", "t": message.get("t"), "server_time_ms": time.time_ns() / 1e6}
        if kind == "stats":
            values = message.get("glass_ms", [])
            if not isinstance(values, list) or not all(isinstance(v, int | float) for v in values):
                raise ValueError("stats.glass_ms must be a list of numbers")
            service.record_glass([float(v) for v in values[:1000]])
            return None
        if kind == "keyframe":
            service.encoder.request_key_frame()
            return None
        raise ValueError(f"unknown message type {kind!r}; expected ping, stats or keyframe")
    except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
        return {"type": "error", "error": str(exc)}


def _control_message(service: LiveService, text: str) -> dict[str, Any]:
    try:
        message = _parse(text)
        if message["type"] != "set" or not isinstance(message.get("values"), dict):
            raise ValueError('send {"type": "set", "values": {...}}')
        values = Control.model_validate(message["values"]).model_dump(exclude_none=True)
        return {"type": "ack", "status": service.control(values)}
    except (
        ValueError,
        TypeError,
        AgecastError,
    ) as exc:  # pydantic's ValidationError is a ValueError
        return {"type": "error", "error": str(exc)}
