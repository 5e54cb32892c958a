"""Review routes: a take's thumbnail and ``/ws/review``, a take played back in the monitor.

``/ws/review?take=ID&a=raw&b=v1&codec=h264|jpeg`` speaks the ``/ws/monitor`` wire format (hello,
binary pictures, ping/pong, keyframe) with its own player and encoder per socket, so reviews
never touch the live stream. It is admitted like ``/ws/monitor`` (``guard.socket_session``:
session, role viewer, Origin, closed when the session ends; message size and rate).
Transport, viewer → server, one JSON object per message::

    {"type": "play"} | {"type": "pause"} | {"type": "seek", "frame": N}
    {"type": "step", "by": ±N} | {"type": "speed", "speed": 0.25…2}
    {"type": "loop", "in": N | null, "out": N | null} | {"type": "compare", "a": "v1", "b": "v2"}

Each is answered with ``{"type": "position", "frame", "frames", "timecode", "playing", "speed",
"in", "out", "a", "b"}`` (also sent while playing, a few times a second); a malformed one with
``{"type": "error", "error": …}`` and the socket stays open. An error with ``"fatal": true``
(unknown take, too many reviews) is followed by the socket closing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import torch
from fastapi import APIRouter, Depends, HTTPException, Response, WebSocket, WebSocketDisconnect
from fastapi.responses import FileResponse
from PIL import Image
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from agecast import __version__
from agecast.api.auth import Auth, Link
from agecast.api.deps import AppState, FirstCamera
from agecast.api.deps import Viewer as SignedIn
from agecast.api.sockets import (
    error_reply,
    parse,
    picture_socket,
    public_reply,
    refuse,
    send_pictures,
    texts,
)
from agecast.compose.marks import Marker
from agecast.errors import TakeError
from agecast.media.encoder import encode_jpeg
from agecast.media.fanout import Fanout, Viewer
from agecast.takes.player import (
    MAX_SPEED,
    MIN_SPEED,
    THUMBNAIL,
    Position,
    ReviewPlayer,
    thumbnail,
    version_look,
)
from agecast.takes.store import PICTURE_RE, Take, TakeStore

log = logging.getLogger(__name__)

MAX_REVIEWS = 4  # review sockets at once: each decodes two files and encodes its own stream
POSITION_EVERY_S = 0.1

_PICTURE = PICTURE_RE.pattern


class _Command(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class Play(_Command):
    type: Literal["play"]


class Pause(_Command):
    type: Literal["pause"]


class Seek(_Command):
    type: Literal["seek"]
    frame: int = Field(ge=0)


class Step(_Command):
    type: Literal["step"]
    by: int = Field(ge=-1000, le=1000)


class Speed(_Command):
    type: Literal["speed"]
    speed: float = Field(ge=MIN_SPEED, le=MAX_SPEED)


class Loop(_Command):
    model_config = ConfigDict(extra="forbid", strict=True, populate_by_name=True)
    type: Literal["loop"]
    loop_in: int | None = Field(None, alias="in", ge=0)
    loop_out: int | None = Field(None, alias="out", ge=0)


class Compare(_Command):
    type: Literal["compare"]
    a: str = Field(pattern=_PICTURE)
    b: str = Field(pattern=_PICTURE)


class Ping(_Command):
    model_config = ConfigDict(extra="allow")
    type: Literal["ping"]


class Keyframe(_Command):
    type: Literal["keyframe"]


Command = Play | Pause | Seek | Step | Speed | Loop | Compare | Ping | Keyframe
_COMMAND: TypeAdapter[Command] = TypeAdapter(Annotated[Command, Field(discriminator="type")])
KINDS = ("play", "pause", "seek", "step", "speed", "loop", "compare", "ping", "keyframe")


class ReviewLimit:
    """At most ``most`` reviews at once; the next one is refused with a clear message."""

    def __init__(self, most: int = MAX_REVIEWS) -> None:
        self.most = most
        self.open = 0
        self._lock = threading.Lock()

    def acquire(self) -> bool:
        with self._lock:
            if self.open >= self.most:
                return False
            self.open += 1
            return True

    def release(self) -> None:
        with self._lock:
            self.open = max(0, self.open - 1)


router = APIRouter()
_limit = ReviewLimit()  # reviews at once, in this process
_thumbnails = threading.Lock()  # one decode at a time: requests cannot starve a recording


def _take(take_id: str, live: FirstCamera) -> Take:
    try:
        return TakeStore(live.settings.resolved_takes_dir).get(take_id)
    except TakeError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


@router.get("/api/takes/{take_id}/thumbnail.jpg", response_class=Response)
def take_thumbnail(take: Annotated[Take, Depends(_take)], link: SignedIn) -> Response:
    cached = take.path / THUMBNAIL
    try:
        with _thumbnails:
            recording = take.info.status == "recording"
            # a take being recorded changes every frame: its first thumbnail stands
            path = cached if recording and cached.is_file() else thumbnail(take)
    except TakeError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    headers = {"Cache-Control": "no-cache"}
    if link.burn_label and link.label:  # a labelled link's pictures all carry its label
        return Response(_labelled(path, link.label), media_type="image/jpeg", headers=headers)
    return FileResponse(path, media_type="image/jpeg", headers=headers)


@router.websocket("/ws/review")
async def review(ws: WebSocket) -> None:
    async with picture_socket(ws) as admitted:
        if admitted is not None:
            await _admitted(ws, *admitted)


async def _admitted(ws: WebSocket, state: AppState, link: Link, codec: str) -> None:
    query = ws.query_params
    if not _limit.acquire():
        await refuse(
            ws, 1013, f"{_limit.most} takes are being reviewed already (the most at once): "
            "close a review, then try again",
        )  # fmt: skip
        return
    try:
        takes_dir = state.cameras.get(None).settings.resolved_takes_dir
        await _review(ws, state.auth, link, codec, TakeStore(takes_dir), query.get("take", ""),
                      query.get("a", "raw"), query.get("b", "v1"))  # fmt: skip
    finally:
        _limit.release()


async def _review(
    ws: WebSocket, auth: Auth, link: Link, codec: str, store: TakeStore, take_id: str, a: str,
    b: str,
) -> None:  # fmt: skip
    mark = link.label if link.burn_label and link.label else None
    viewer = Viewer(codec=codec, label=link.label, mark=mark)
    holder: list[ReviewPlayer] = []
    fanout = Fanout(lambda _mark: holder[0].request_key_frame() if holder else None)
    try:
        take = store.get(take_id)
        player = await asyncio.to_thread(
            _open_player, take, a, b, codec, mark, fanout.publish_threadsafe
        )
    except TakeError as exc:
        await refuse(ws, 4404, str(exc))
        return
    holder.append(player)
    auth.audit.write("review_opened", take=take.id, a=a, b=b, label=link.label, link=link.id)
    await ws.send_text(json.dumps(_hello(player, codec)))
    position = player.position()
    await ws.send_text(json.dumps(position.to_json()))
    fanout.add(viewer)
    player.start()
    sender = asyncio.create_task(send_pictures(ws, viewer))
    reporter = asyncio.create_task(_report(ws, player, position))
    try:
        async for text in texts(ws):
            reply = await asyncio.to_thread(_command, player, text, parse)
            if reply is not None:
                await ws.send_text(json.dumps(public_reply(reply)))
    except (WebSocketDisconnect, RuntimeError):
        pass
    finally:
        fanout.remove(viewer)
        sender.cancel()
        reporter.cancel()
        await asyncio.to_thread(player.close)
        auth.audit.write(
            "review_closed", take=take.id, label=link.label, link=link.id, sent=viewer.sent,
            dropped=viewer.dropped,
        )  # fmt: skip


def _labelled(path: Path, label: str) -> bytes:
    """The JPEG at ``path`` with ``label`` burnt in, as the live pictures of that link are."""
    picture = torch.from_numpy(np.asarray(Image.open(path).convert("RGB")).copy())
    Marker().burn(picture, label, "bottom-left")
    return encode_jpeg(picture)


def _open_player(
    take: Take, a: str, b: str, codec: str, mark: str | None, publish: Callable[..., None]
) -> ReviewPlayer:
    player = ReviewPlayer(
        take, a, b, codec="jpeg" if codec == "jpeg" else "h264", mark=mark, publish=publish
    )
    player.render(0)  # before anyone listens: the encoder now knows its codec string
    return player


def _hello(player: ReviewPlayer, codec: str) -> dict[str, Any]:
    info = player.take.info
    width, height = player.size
    return {
        "type": "hello",
        "codec": player.encoder.codec or "avc1.42C028",
        "transport": codec,
        "width": width,
        "height": height,
        "fps": player.fps,
        "server_time_ms": time.time_ns() / 1e6,
        "version": __version__,
        "review": {
            "take": info.model_dump(mode="json"),
            "versions": player.take.versions(),
            "looks": {v: version_look(player.take, v) for v in player.take.versions()},
            "frames": player.frames,
            "fps": player.fps,
            "timecode_start": player.timecode_start,
            "a": player.a,
            "b": player.b,
        },
    }


async def _report(ws: WebSocket, player: ReviewPlayer, last: Position) -> None:
    """The position whenever it moved."""
    try:
        while True:
            await asyncio.sleep(POSITION_EVERY_S)
            position = player.position()
            if position != last:
                last = position
                await ws.send_text(json.dumps(position.to_json()))
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        pass


def _command(
    player: ReviewPlayer, text: str, parse: Callable[[str], dict[str, Any]]
) -> dict[str, Any] | None:
    """Apply one transport message; the reply (position, pong or error) or None."""
    try:
        message = parse(text)
        if message["type"] not in KINDS:
            raise ValueError(
                f"unknown message type {message['type']!r}; expected {', '.join(KINDS)}"
            )
        command = _COMMAND.validate_python(message)
    except (ValueError, TypeError) as exc:  # pydantic's ValidationError is a ValueError
        return error_reply(exc, "bad transport message: ")
    try:
        match command:
            case Ping():
                return {
                    "type": "pong",
                    "t": message.get("t"),
                    "server_time_ms": time.time_ns() / 1e6,
                }
            case Keyframe():
                player.request_key_frame()
                return None
            case Play():
                player.play()
            case Pause():
                player.pause()
            case Seek(frame=frame):
                player.seek(frame)
            case Step(by=by):
                player.step(by)
            case Speed(speed=speed):
                player.set_speed(speed)
            case Loop(loop_in=loop_in, loop_out=loop_out):
                player.set_loop(loop_in, loop_out)
            case Compare(a=a, b=b):
                player.compare(a, b)
    except TakeError as exc:
        return {"type": "error", "error": str(exc)}
    return player.position().to_json()
