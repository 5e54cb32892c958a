import asyncio
import io
import json

import av
import numpy as np
import pytest
from PIL import Image
from websockets.asyncio.client import connect

from agecast.media.protocol import HEADER_SIZE, Flags, LayoutCode, PictureHeader

from .conftest import Running


async def _hello_and_pictures(
    url: str, count: int, headers: dict[str, str]
) -> tuple[dict, list[tuple[PictureHeader, bytes]]]:
    async with connect(url, max_size=None, compression=None, additional_headers=headers) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        pictures: list[tuple[PictureHeader, bytes]] = []
        while len(pictures) < count:
            message = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(message, bytes):
                header = PictureHeader.unpack(message)
                assert header.length == len(message) - HEADER_SIZE
                pictures.append((header, message[HEADER_SIZE:]))
        return hello, pictures


def test_h264_viewer_gets_decodable_frames_starting_at_a_key_frame(server: Running) -> None:
    hello, pictures = asyncio.run(
        _hello_and_pictures(f"{server.ws}/ws/monitor", 20, server.ws_headers("viewer"))
    )
    assert hello["type"] == "hello" and hello["codec"].startswith("avc1.42")
    first, _ = pictures[0]
    assert Flags.KEY in first.flags  # joining viewers start at an IDR
    assert first.layout == LayoutCode.SIDE_BY_SIDE and (first.width, first.height) == (1280, 360)
    indices = [h.index for h, _ in pictures]
    assert indices == sorted(indices) and len(set(indices)) == len(indices)
    decoder = av.CodecContext.create("h264", "r")
    frames = [f for _, data in pictures for p in decoder.parse(data) for f in decoder.decode(p)]
    assert len(frames) >= 18
    picture = frames[-1].to_ndarray(format="rgb24").astype(int)
    raw, aged = picture[:, :640], picture[:, 640:]
    changed = np.abs(raw - aged).sum(axis=2) > 30
    assert changed.sum() > 300  # the face differs between the halves …
    assert changed.mean() < 0.2  # … and most of the picture does not
    Image.fromarray(picture.astype(np.uint8)).save(server.artifacts / "ws_frame.png")


def test_jpeg_fallback_viewer(server: Running) -> None:
    _, pictures = asyncio.run(
        _hello_and_pictures(f"{server.ws}/ws/monitor?codec=jpeg", 3, server.ws_headers("viewer"))
    )
    for header, data in pictures:
        assert Flags.JPEG in header.flags
        assert Image.open(io.BytesIO(data)).size == (1280, 360)


async def _exchange(url: str, messages: list[str | bytes], headers: dict[str, str]) -> list[dict]:
    replies = []
    async with connect(url, max_size=None, compression=None, additional_headers=headers) as ws:
        for message in messages:
            await ws.send(message)
            while True:
                reply = await asyncio.wait_for(ws.recv(), 10)
                if isinstance(reply, str) and json.loads(reply)["type"] in ("error", "pong", "ack"):
                    replies.append(json.loads(reply))
                    break
    return replies


def test_malformed_monitor_messages_get_clear_errors(server: Running) -> None:
    replies = asyncio.run(
        _exchange(
            f"{server.ws}/ws/monitor",
            ["{nope", "[1, 2]", '{"type": "launch"}', b"\x00\x01", "x" * 70_000,
             '{"type": "stats", "glass_ms": "fast"}', '{"type": "ping", "t": 5}'],
            server.ws_headers("viewer"),
        )
    )  # fmt: skip
    kinds = [r["type"] for r in replies]
    assert kinds == ["error"] * 6 + ["pong"]
    assert "unknown message type 'launch'" in replies[2]["error"]
    assert "limit" in replies[4]["error"]
    assert replies[6]["t"] == 5


def test_control_websocket(server: Running) -> None:
    messages = [
        '{"type": "set", "values": {"bypass": true}}',
        '{"type": "set", "values": {"blend": 9}}',
        '{"type": "get"}',
        '{"type": "set", "values": {"bypass": false}}',
    ]
    replies = asyncio.run(_exchange(f"{server.ws}/ws/control", messages, server.ws_headers()))
    assert replies[0]["type"] == "ack" and replies[0]["status"]["look"]["bypass"] is True
    assert replies[1]["type"] == "error" and "blend" in replies[1]["error"]
    assert replies[2]["type"] == "error"
    assert replies[3]["status"]["look"]["bypass"] is False


@pytest.mark.timeout(60)
def test_a_viewer_that_never_reads_does_not_stall_others(server: Running) -> None:
    async def scenario() -> int:
        headers = server.ws_headers("viewer")
        url = f"{server.ws}/ws/monitor"
        async with connect(
            url, max_size=None, compression=None, additional_headers=headers
        ) as stalled:
            await stalled.recv()  # hello, then never read again
            _, pictures = await _hello_and_pictures(url, 60, headers)
            return len(pictures)

    assert asyncio.run(scenario()) == 60


def _decode_last(pictures: list[tuple[PictureHeader, bytes]]) -> tuple[int, np.ndarray]:
    decoder = av.CodecContext.create("h264", "r")
    frames = [
        (h.index, f) for h, data in pictures for p in decoder.parse(data) for f in decoder.decode(p)
    ]
    index, frame = frames[-1]
    return index, frame.to_ndarray(format="rgb24").astype(int)


def test_ai_mark_on_the_aged_side_only_and_switchable(server: Running) -> None:
    headers = server.ws_headers("viewer")
    url = f"{server.ws}/ws/monitor"
    _, picture = _decode_last(asyncio.run(_hello_and_pictures(url, 15, headers))[1])
    raw, aged = picture[:, :640], picture[:, 640:]
    corner = (slice(0, 40), slice(560, 640))  # top-right of each half
    assert np.abs(raw[corner] - aged[corner]).sum(axis=2).max() > 100  # the mark is there
    http = server.client("operator")
    assert http.post("/api/control", json={"ai_mark": False}).json()["look"]["ai_mark"] is False
    try:
        _, picture = _decode_last(asyncio.run(_hello_and_pictures(url, 15, headers))[1])
        raw, aged = picture[:, :640], picture[:, 640:]
        assert np.abs(raw[corner] - aged[corner]).sum(axis=2).max() < 60  # only coding noise
    finally:
        http.post("/api/control", json={"ai_mark": True})


def test_a_labelled_link_gets_its_label_burnt_in(server: Running) -> None:
    link, _ = server.auth.links.create("viewer", label="CLIENT-7", expires_s=600, burn_label=True)
    labelled = {"Cookie": f"agecast_session={server.auth.sessions.issue(link)[0]}"}
    plain = server.ws_headers("viewer")
    url = f"{server.ws}/ws/monitor"

    async def both() -> tuple[list, list]:
        a, b = await asyncio.gather(
            _hello_and_pictures(url, 40, labelled), _hello_and_pictures(url, 40, plain)
        )
        return a[1], b[1]

    mine, theirs = asyncio.run(both())
    assert all(h.index >= 0 for h, _ in mine)
    decoder_a, decoder_b = av.CodecContext.create("h264", "r"), av.CodecContext.create("h264", "r")
    frames_a = {
        h.index: f for h, d in mine for p in decoder_a.parse(d) for f in decoder_a.decode(p)
    }
    frames_b = {
        h.index: f for h, d in theirs for p in decoder_b.parse(d) for f in decoder_b.decode(p)
    }
    common = sorted(set(frames_a) & set(frames_b))
    assert common, "the two viewers saw no frame in common"
    a = frames_a[common[-1]].to_ndarray(format="rgb24").astype(int)
    b = frames_b[common[-1]].to_ndarray(format="rgb24").astype(int)
    diff = np.abs(a - b).sum(axis=2)
    assert diff[-40:, :200].max() > 100  # the label, bottom-left
    assert np.median(diff[:300]) < 8  # and nothing else
