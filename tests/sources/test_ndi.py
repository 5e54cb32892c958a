"""``ndi://NAME``: a camera published over NDI, received through the NDI runtime on this
machine (a sender on 127.0.0.1, the same library), with the sender's timecode, and the
no-signal / reconnect behaviour of every live source."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime

import numpy as np
import pytest

from agecast.errors import SourceError
from agecast.media import ndi
from agecast.sources import open_source
from agecast.sources.base import SourceState
from agecast.sources.ndi import seconds_of_day

pytestmark = pytest.mark.usefixtures("ndi_lan")

W, H = 320, 180


class Cart:
    """A sender like a video-assist cart's: a picture whose red level is the frame number."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        sender = ndi.NdiSender(self.name, 30.0)
        picture = np.zeros((H, W, 3), np.uint8)
        picture[:, :, 1] = 160
        picture[40:140, 100:220, 2] = 230  # a blue block: where things are must survive
        try:
            while not self._stop.is_set():
                picture[:, :, 0] = (self.sent * 10) % 250
                sender.send(picture)
                self.sent += 1
                time.sleep(1 / 30)
        finally:
            sender.close()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)


@pytest.fixture
def cart() -> Iterator[Cart]:
    c = Cart(f"test cam {uuid.uuid4().hex[:6]}")
    c.start()
    yield c
    c.stop()


def _wait(predicate: object, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if callable(predicate) and predicate():
            return True
        time.sleep(0.05)
    return False


def test_discovery_lists_the_sender(cart: Cart) -> None:
    assert _wait(lambda: any(ndi.matches(cart.name, n) for n in ndi.find(0.5)), 10)


def test_an_ndi_camera_gives_its_pictures_and_the_senders_timecode(cart: Cart) -> None:
    with open_source(f"ndi://{cart.name}", open_timeout_s=10) as source:
        frames = [source.read() for _ in range(20)]
        assert source.state is SourceState.LIVE
        assert source.fps == pytest.approx(30.0)
    assert all(f is not None for f in frames)
    last = frames[-1]
    assert last is not None
    picture = last.image.numpy()
    assert picture.shape == (H, W, 3)
    # NDI's codec is lossy: levels within a few codes, the block where it was
    assert abs(int(picture[10, 10, 1]) - 160) <= 6
    assert picture[90, 160, 2] > 200 and picture[10, 10, 2] < 30
    reds = [int(f.image[5, 5, 0]) for f in frames if f is not None]
    assert len(set(reds)) > 5, "the pictures did not move"
    # each frame's pts is the sender's timecode, as this machine's time of day: NDI counts it
    # in frames at the declared rate (and re-syncs it to the clock when a slow sender drifts)
    now = seconds_of_day(datetime.now().timestamp())
    assert last.pts_s is not None and abs(last.pts_s - now) < 10.0
    steps = np.diff([f.pts_s for f in frames if f is not None])
    assert (steps > 0).all()
    assert np.median(steps) == pytest.approx(1 / 30, abs=0.002)


def test_a_sender_that_stops_is_no_signal_then_live_again(cart: Cart) -> None:
    source = open_source(f"ndi://{cart.name}", open_timeout_s=10, read_timeout_s=1.0)
    source.open()
    try:
        assert source.read() is not None
        cart.stop()
        assert _wait(lambda: source.state is SourceState.NO_SIGNAL, 3)
        cart.start()
        assert source.read() is not None
        assert _wait(lambda: source.state is SourceState.LIVE, 10)
    finally:
        source.close()


def test_a_source_not_on_the_lan_is_no_signal_not_a_crash() -> None:
    source = open_source("ndi://nobody here", open_timeout_s=0.5)
    source.open()
    try:
        assert _wait(lambda: source.state is SourceState.NO_SIGNAL, 5)
    finally:
        source.close()


def test_an_ndi_uri_without_a_name_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="ndi:// needs a source name"):
        open_source("ndi://")


def test_agecast_sources_ndi_lists_it_as_a_source_uri(cart: Cart) -> None:
    from typer.testing import CliRunner

    from agecast.cli import app

    listed = ""
    deadline = time.monotonic() + 10
    while cart.name not in listed and time.monotonic() < deadline:
        done = CliRunner().invoke(app, ["sources", "ndi", "--seconds", "1"])
        assert done.exit_code == 0, done.output
        listed = done.stdout
    assert any(line.startswith("ndi://") and cart.name in line for line in listed.splitlines())
