"""Attack 4: one viewer makes everyone's stream key frames, by asking for them ~19 times a
second or by never reading its socket (it falls behind on every picture). Before the fix the
shared encoder made about every other frame an IDR for every viewer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable

import pytest
import torch
from websockets.asyncio.client import connect

from agecast.media import fanout as fanout_module
from agecast.media.encoder import H264Encoder
from agecast.media.fanout import Fanout, Message, Viewer
from agecast.media.protocol import Flags, PictureHeader
from tests.api.conftest import Running

FRAMES = 150  # five seconds at 30 fps: the encoder's own cadence makes an IDR a second


async def _key_frames_seen(server: Running, attack: Callable[[], Awaitable[None]]) -> int:
    """Key frames among FRAMES pictures a well-behaved viewer receives during ``attack``."""
    attacker = asyncio.create_task(attack())
    await asyncio.sleep(1.0)  # the attack is under way
    keys = 0
    async with connect(
        f"{server.ws}/ws/monitor", additional_headers=server.ws_headers("viewer"),
        max_size=None, compression=None,
    ) as ws:  # fmt: skip
        pictures = 0
        while pictures < FRAMES:
            message = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(message, bytes):
                pictures += 1
                keys += Flags.KEY in PictureHeader.unpack(message).flags
    attacker.cancel()
    return keys


def _natural(frames: int) -> int:
    return frames // 30 + 2  # one a second, the join's own, and one for phase


def test_keyframe_requests_do_not_turn_others_stream_into_key_frames(server: Running) -> None:
    async def spam() -> None:
        async with connect(
            f"{server.ws}/ws/monitor", additional_headers=server.ws_headers("viewer"),
            max_size=None, compression=None,
        ) as ws:  # fmt: skip
            while True:
                await ws.send(json.dumps({"type": "keyframe"}))
                await asyncio.sleep(1 / 19)

    keys = asyncio.run(_key_frames_seen(server, spam))
    assert keys <= _natural(FRAMES), f"{keys} key frames in {FRAMES} pictures"


async def _stalled_viewer_run(frames: int) -> tuple[int, Viewer]:
    """Key frames a reading viewer got from a real H.264 encode while another never read."""
    encoder = H264Encoder(30.0, codec="libx264")
    fanout = Fanout(lambda _mark: encoder.request_key_frame())
    healthy, stalled = Viewer(codec="h264"), Viewer(codec="h264")
    fanout.add(healthy)
    fanout.add(stalled)  # joins, then never takes a picture
    keys = 0

    async def watch() -> None:
        nonlocal keys
        while (payload := await healthy.next()) is not None:
            keys += _key[payload]

    _key: dict[bytes, bool] = {}
    watcher = asyncio.create_task(watch())
    generator = torch.Generator().manual_seed(0)
    for index in range(frames):
        picture = torch.randint(0, 255, (360, 640, 3), dtype=torch.uint8, generator=generator)
        encoded = encoder.encode(picture)
        payload = index.to_bytes(4, "big") + encoded.data
        _key[payload] = encoded.key
        fanout.publish(Message(index, encoded.key, payload, None))
        await asyncio.sleep(1 / 30)
    fanout.close()
    await watcher
    return keys, stalled


def test_a_viewer_that_never_reads_is_dropped_and_costs_others_no_key_frames(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(fanout_module, "STALL_S", 2.0, raising=False)
    keys, stalled = asyncio.run(_stalled_viewer_run(FRAMES))
    assert keys <= _natural(FRAMES), f"{keys} key frames in {FRAMES} pictures"
    assert stalled.closed and stalled.stalled  # dropped, not fed for ever
