"""The review player: frames by index from real H.264 files, transport, and /ws/review."""

from __future__ import annotations

import asyncio
import io
import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator

import av
import httpx
import numpy as np
import pytest
from PIL import Image
from websockets.asyncio.client import ClientConnection, connect

from agecast.api.auth import COOKIE
from agecast.errors import TakeError
from agecast.media.fanout import Message
from agecast.media.protocol import HEADER_SIZE, Flags, LayoutCode, PictureHeader
from agecast.takes.player import ReviewPlayer, thumbnail, timecode_at
from agecast.takes.store import Take
from tests.api.conftest import Running, running_server
from tests.takes.review_media import TINTS, WIDTH, decode_all, make_take, read_code


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    diff = a.astype(np.float64) - b.astype(np.float64)
    mse = float(np.mean(diff * diff))
    return 99.0 if mse == 0 else 10.0 * np.log10(255.0**2 / mse)


def tint_of(picture: np.ndarray) -> str:
    """Which picture (raw, v1, v2) this is, by its colour below the code blocks."""
    mean = picture[60:].reshape(-1, 3).mean(axis=0)
    return min(TINTS, key=lambda name: float(np.abs(mean - np.array(TINTS[name])).sum()))


@pytest.fixture(scope="module")
def take(tmp_path_factory: pytest.TempPathFactory) -> Take:
    return make_take(tmp_path_factory.mktemp("takes"), frames=40)


class Screen:
    """What a viewer would see: the player's messages, H.264 decoded as they come."""

    def __init__(self) -> None:
        self.decoder = av.CodecContext.create("h264", "r")
        self.shown: list[tuple[int, np.ndarray]] = []
        self._cond = threading.Condition()

    def publish(self, message: Message) -> None:
        assert message.h264 is not None
        header = PictureHeader.unpack(message.h264)
        assert header.layout == LayoutCode.SIDE_BY_SIDE and header.index == message.index
        # One message is one access unit, as the browser's decoder takes it.
        for frame in self.decoder.decode(av.Packet(message.h264[HEADER_SIZE:])):
            with self._cond:
                self.shown.append((header.index, frame.to_ndarray(format="rgb24")))
                self._cond.notify_all()

    def wait(
        self, check: Callable[[list[tuple[int, np.ndarray]]], bool], timeout: float = 10.0
    ) -> None:
        with self._cond:
            assert self._cond.wait_for(lambda: check(self.shown), timeout), (
                f"not seen; shown: {[i for i, _ in self.shown][-20:]}"
            )

    def last_index(self, index: int) -> np.ndarray:
        """Wait for a picture of frame ``index`` as the newest one; returns it."""
        self.wait(lambda shown: bool(shown) and shown[-1][0] == index)
        return self.shown[-1][1]


@pytest.fixture
def screen_player(take: Take) -> Iterator[tuple[Screen, ReviewPlayer]]:
    screen = Screen()
    player = ReviewPlayer(take, "raw", "v1", publish=screen.publish)
    player.start()
    yield screen, player
    player.close()


def test_frames_by_index_equal_the_files_decoded_straight_through(take: Take) -> None:
    raw, aged = decode_all(take.raw_path), decode_all(take.aged_path("v1"))
    screen = Screen()
    player = ReviewPlayer(take, publish=screen.publish, cache_bytes=4 * WIDTH * 180 * 3)
    try:
        order = [25, 3, 4, 39, 38, 10, 9, 0, 17, 18]  # mid-GOP seeks, backward steps
        for index in order:
            picture = player.compose(index).numpy()
            left, right = picture[:, :WIDTH], picture[:, WIDTH:]
            assert psnr(left, raw[index]) > 60 and psnr(right, aged[index]) > 60, index
            assert read_code(left) == read_code(right) == index
            player.render(index)
        # What went on the wire decodes to the same pictures (through the H.264 encode).
        assert [i for i, _ in screen.shown] == order
        for index, picture in screen.shown:
            assert psnr(picture[:, :WIDTH], raw[index]) > 30
            assert psnr(picture[:, WIDTH:], aged[index]) > 30
    finally:
        player.close()


def test_jpeg_pictures_and_burnt_in_labels_for_viewers_without_webcodecs(take: Take) -> None:
    sent: list[Message] = []
    player = ReviewPlayer(take, codec="jpeg", mark="dp-laptop", publish=sent.append)
    try:
        plain = player.compose(5).numpy()
        player.render(5)
    finally:
        player.close()
    assert sent[0].h264 is None and sent[0].jpeg is not None
    header = PictureHeader.unpack(sent[0].jpeg)
    assert Flags.JPEG in header.flags and header.index == 5 and sent[0].mark == "dp-laptop"
    picture = np.asarray(Image.open(io.BytesIO(sent[0].jpeg[HEADER_SIZE:])).convert("RGB"))
    assert read_code(picture[:, :WIDTH]) == read_code(picture[:, WIDTH:]) == 5
    corner = (slice(150, 180), slice(0, 120))  # the label, bottom left, as on the live stream
    assert psnr(picture[corner], plain[corner]) < 25 < psnr(picture[:100], plain[:100])


def test_seek_and_step_land_on_the_exact_frame(
    screen_player: tuple[Screen, ReviewPlayer],
) -> None:
    screen, player = screen_player
    for action, expected in [
        (lambda: player.seek(23), 23),
        (lambda: player.step(-1), 22),
        (lambda: player.step(5), 27),
        (lambda: player.step(-1), 26),
        (lambda: player.step(-100), 0),
        (lambda: player.seek(999), 39),
    ]:
        action()
        picture = screen.last_index(expected)
        assert read_code(picture[:, :WIDTH]) == read_code(picture[:, WIDTH:]) == expected
        assert player.position().frame == expected
    # The timecode as recorded: 01:00:00:00 + 39 frames + the 2 the live picture dropped.
    assert player.position().timecode == "01:00:01:11"


def test_loop_range_wraps(screen_player: tuple[Screen, ReviewPlayer]) -> None:
    screen, player = screen_player
    player.set_loop(10, 14)
    player.seek(12)
    player.set_speed(2.0)
    player.play()
    screen.wait(lambda shown: [i for i, _ in shown].count(10) >= 2)
    player.pause()
    indices = [i for i, _ in screen.shown]
    played = indices[indices.index(12) :]
    assert set(played) <= set(range(10, 15))
    assert any(a == 14 and b == 10 for a, b in itertools.pairwise(played))
    with pytest.raises(TakeError, match="outside the take's frames"):
        player.set_loop(0, 40)


def test_speed_changes_pacing(take: Take) -> None:
    player = ReviewPlayer(take, publish=lambda _: None)
    player.start()
    try:
        player.set_loop(0, 39)
        advanced = {}
        for speed in (0.25, 2.0):
            player.set_speed(speed)
            before = player.sent + player.skipped
            player.play()
            time.sleep(0.8)
            player.pause()
            advanced[speed] = player.sent + player.skipped - before
        assert 0 < advanced[0.25] < advanced[2.0]
    finally:
        player.close()


def test_comparing_two_versions_puts_each_in_its_half(take: Take) -> None:
    player = ReviewPlayer(take, "v1", "v2", publish=lambda _: None)
    try:
        picture = player.compose(7).numpy()
        left, right = picture[:, :WIDTH], picture[:, WIDTH:]
        assert (tint_of(left), tint_of(right)) == ("v1", "v2")
        assert read_code(left) == read_code(right) == 7
        player.seek(21)
        player.compare("v2", "raw")
        picture = player.compose(player.position().frame).numpy()
        assert (tint_of(picture[:, :WIDTH]), tint_of(picture[:, WIDTH:])) == ("v2", "raw")
        assert read_code(picture[:, WIDTH:]) == 21
        with pytest.raises(TakeError, match="has no version 'v9'"):
            player.compare("raw", "v9")
    finally:
        player.close()


def test_thumbnail_is_the_middle_aged_frame_cached(take: Take) -> None:
    path = thumbnail(take)
    picture = np.asarray(Image.open(path).convert("RGB"))
    assert path.parent == take.path and picture.shape[1] == 320
    assert read_code(picture) == 20 and tint_of(picture) == "v1"
    stamp = path.stat().st_mtime_ns
    assert thumbnail(take).stat().st_mtime_ns == stamp  # cached


def test_timecode_counts_frames_from_the_start() -> None:
    """Where a take has no sidecar timecodes, they count on from take.json's start."""
    assert timecode_at("01:00:00:00", 30.0, 0) == "01:00:00:00"
    assert timecode_at("01:00:59:29", 30.0, 1) == "01:01:00:00"
    assert timecode_at("23:59:59:24", 25.0, 1) == "00:00:00:00"


# --- over the wire ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, take: Take) -> Iterator[Running]:
    with running_server(
        tmp_path_factory.mktemp("review"),
        source="testpattern:320x180@30",
        identity="testpattern",
        takes_dir=take.path.parent,
    ) as srv:
        yield srv


class Client:
    """One /ws/review connection: texts by type; every picture decoded as it passes by."""

    def __init__(self, ws: ClientConnection) -> None:
        self.ws = ws
        self.decoder = av.CodecContext.create("h264", "r")
        self.shown: list[tuple[int, np.ndarray]] = []

    async def until(self, done: Callable[[dict | None], bool], timeout: float = 10.0) -> dict:
        """Read on until ``done(text message)`` (called with None after each picture)."""
        deadline = time.monotonic() + timeout
        while True:
            left = max(0.1, deadline - time.monotonic())
            message = await asyncio.wait_for(self.ws.recv(), left)
            if isinstance(message, bytes):
                header = PictureHeader.unpack(message)
                assert Flags.JPEG not in header.flags
                for frame in self.decoder.decode(av.Packet(message[HEADER_SIZE:])):
                    self.shown.append((header.index, frame.to_ndarray(format="rgb24")))
                if done(None):
                    return {}
            elif done(text := json.loads(message)):
                return dict(text)

    async def text(self, kind: str) -> dict:
        return await self.until(lambda m: m is not None and m["type"] == kind)


def test_review_socket_plays_a_take_and_survives_malformed_messages(
    server: Running, take: Take
) -> None:
    url = f"{server.ws}/ws/review?take={take.id}&a=raw&b=v1"

    async def run() -> None:
        headers = server.ws_headers("viewer")
        async with connect(url, max_size=None, compression=None, additional_headers=headers) as ws:
            client = Client(ws)
            hello = await client.text("hello")
            assert hello["review"]["frames"] == 40 and hello["review"]["versions"] == ["v1", "v2"]
            assert hello["review"]["looks"]["v1"] == {"identity": "testpattern", "age": 70}
            assert (hello["width"], hello["height"]) == (2 * WIDTH, 180)
            for bad, says in [
                ('{"type": "seek", "frame": "x"}', "seek.frame"),
                ('{"type": "speed", "speed": 9}', "speed.speed"),
                ('{"type": "warp"}', "unknown message type 'warp'"),
                ("not json", "Expecting value"),
                ('{"type": "loop", "in": 30, "out": 5}', "loop in 30 is after loop out 5"),
            ]:
                await ws.send(bad)
                error = await client.text("error")
                assert says in error["error"], error
                assert not error.get("fatal")
            # Still open and obeying: the seek is answered and frame 12 is what gets shown.
            await ws.send(json.dumps({"type": "seek", "frame": 12}))
            assert (await client.text("position"))["frame"] == 12
            await client.until(lambda _: bool(client.shown) and client.shown[-1][0] == 12)
            assert read_code(client.shown[-1][1][:, :WIDTH]) == 12

    asyncio.run(run())


def test_unknown_take_is_404_and_a_fatal_socket_error(server: Running, take: Take) -> None:
    with httpx.Client(base_url=server.base, cookies={COOKIE: server.session("viewer")}) as client:
        res = client.get("/api/takes/nope_1/thumbnail.jpg")
        assert res.status_code == 404 and "nope_1" in res.json()["detail"]
        res = client.get(f"/api/takes/{take.id}/thumbnail.jpg")
        assert res.status_code == 200 and res.headers["content-type"] == "image/jpeg"

    async def run() -> tuple[dict, int | None]:
        url = f"{server.ws}/ws/review?take=nope_1"
        async with connect(url, additional_headers=server.ws_headers("viewer")) as ws:
            error = json.loads(await asyncio.wait_for(ws.recv(), 10))
            await ws.wait_closed()
            return error, ws.close_code

    error, code = asyncio.run(run())
    assert error["fatal"] and "nope_1" in error["error"] and code == 4404


def test_reviews_at_once_are_capped(server: Running, take: Take) -> None:
    url = f"{server.ws}/ws/review?take={take.id}&codec=jpeg"

    async def run() -> dict:
        headers = server.ws_headers("viewer")
        sockets = [await connect(url, max_size=None, additional_headers=headers) for _ in range(4)]
        try:
            for ws in sockets:
                await Client(ws).text("hello")
            async with connect(url, additional_headers=headers) as fifth:
                return dict(json.loads(await asyncio.wait_for(fifth.recv(), 10)))
        finally:
            for ws in sockets:
                await ws.close()

    error = asyncio.run(run())
    assert error["fatal"] and "4 takes are being reviewed already" in error["error"]
