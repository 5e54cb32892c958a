"""A WebSocket viewer for fault tests: collects pictures (header + payload) for a while."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.client import connect

from agecast.media.protocol import HEADER_SIZE, PictureHeader

Picture = tuple[PictureHeader, bytes]


async def watch(
    url: str, headers: dict[str, str], *, seconds: float, limit: int = 10_000
) -> tuple[dict[str, Any], list[Picture]]:
    """(hello, pictures) seen by one viewer in ``seconds`` (at most ``limit`` pictures)."""
    pictures: list[Picture] = []
    async with connect(url, max_size=None, compression=None, additional_headers=headers) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        deadline = time.monotonic() + seconds
        while len(pictures) < limit and (left := deadline - time.monotonic()) > 0:
            try:
                message = await asyncio.wait_for(ws.recv(), left)
            except TimeoutError:
                break
            if isinstance(message, bytes):
                pictures.append((PictureHeader.unpack(message), message[HEADER_SIZE:]))
    return hello, pictures


def watch_sync(
    url: str, headers: dict[str, str], *, seconds: float, limit: int = 10_000
) -> tuple[dict[str, Any], list[Picture]]:
    return asyncio.run(watch(url, headers, seconds=seconds, limit=limit))
