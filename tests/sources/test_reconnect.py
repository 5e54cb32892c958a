"""The reconnect wrapper, driven by scripted fake feeds (no sockets, no FFmpeg)."""

from __future__ import annotations

import logging
import time

import pytest
import torch

from agecast.errors import SourceError, SourceLost
from agecast.frames import Frame
from agecast.sources import SourceState, reconnect
from agecast.sources.base import Decoded
from agecast.sources.reconnect import FrameReader, ReconnectingSource
from tests.sources.media import Consumer, wait_for

FAIL = "fail"


class FakeReader:
    """Gives ``frames`` pictures, then ends as told: "lost", "eof" or "boom"."""

    fps = 25.0

    def __init__(
        self, frames: int, then: str = "lost", every_s: float = 0.02, tag: int = 0
    ) -> None:
        self.left, self.then, self.every_s, self.tag = frames, then, every_s, tag
        self.closed = False
        self._pts = 0

    def next(self) -> Decoded | None:
        if self.left > 0:
            self.left -= 1
            time.sleep(self.every_s)
            self._pts += 1
            image = torch.full((4, 4, 3), self._pts, dtype=torch.uint8)
            image[..., 1] = self.tag  # which connection it came from
            return Decoded(image, self._pts / 25)
        if self.then == "eof":
            return None
        if self.then == "boom":
            raise RuntimeError("a surprise from the decoder")
        raise SourceLost("fake feed cut")

    def close(self) -> None:
        self.closed = True


class Script:
    """A connect function: each call takes the next step (a reader, or FAIL)."""

    def __init__(self, *steps: FakeReader | str) -> None:
        self.steps = list(steps)
        self.attempts: list[float] = []
        self.readers: list[FakeReader] = []

    def __call__(self) -> FrameReader:
        self.attempts.append(time.monotonic())
        step = self.steps.pop(0) if self.steps else FAIL
        if isinstance(step, str):
            raise SourceError("fake feed: nobody there")
        self.readers.append(step)
        return step


def tags(consumer: Consumer) -> set[int]:
    return {int(f.image[0, 0, 1]) for f in list(consumer.frames)}


def make(script: Script, *, live: bool = True, strict: bool = False) -> ReconnectingSource:
    return ReconnectingSource(
        "fake://feed", script, label="fake feed", live=live, open_timeout_s=1.0, strict_open=strict
    )


def test_backoff_defaults() -> None:
    assert reconnect.BACKOFF_START_S == 0.25
    assert reconnect.BACKOFF_MAX_S == 2.0


def test_reconnects_with_doubling_backoff_and_keeps_counting(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(reconnect, "BACKOFF_START_S", 0.05)
    monkeypatch.setattr(reconnect, "BACKOFF_MAX_S", 0.2)
    first, second = FakeReader(5, tag=1), FakeReader(1000, tag=2)
    script = Script(first, FAIL, FAIL, FAIL, FAIL, FAIL, second)
    source = make(script)
    with caplog.at_level(logging.INFO, logger="agecast.sources"):
        source.open()
        assert source.fps == 25.0
        consumer = Consumer(source).start()
        assert wait_for(lambda: source.state is SourceState.NO_SIGNAL, 2.0)
        assert tags(consumer) == {1}
        assert wait_for(lambda: len(tags(consumer)) == 2 and len(consumer.frames) >= 8, 5.0)
        assert source.state is SourceState.LIVE
        source.close()
    assert consumer.join(1.0) and not consumer.errors
    assert [f.index for f in consumer.frames] == list(range(len(consumer.frames)))
    gaps = [b - a for a, b in zip(script.attempts[1:], script.attempts[2:], strict=False)]
    # After the feed is lost: 0.05 (then doubling) 0.1, 0.2, capped 0.2, 0.2.
    for gap, expected in zip(gaps, [0.1, 0.2, 0.2, 0.2, 0.2], strict=False):
        assert expected * 0.8 < gap < expected + 0.15, gaps
    assert all(r.closed for r in script.readers)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no signal" in m for m in messages) == 1  # one line per outage
    assert sum("signal back" in m for m in messages) == 1


def test_live_feed_that_ends_is_an_outage() -> None:
    script = Script(FakeReader(3, "eof", tag=1), FakeReader(3, "eof", tag=2))
    with make(script) as source:
        consumer = Consumer(source).start()
        assert wait_for(lambda: tags(consumer) == {1, 2}, 3.0)
        assert wait_for(lambda: source.state is SourceState.NO_SIGNAL, 1.0)
    assert consumer.join(1.0) and not consumer.errors
    assert [f.index for f in consumer.frames] == list(range(len(consumer.frames)))


def test_render_mode_ends_with_the_feed_and_drops_nothing() -> None:
    script = Script(FakeReader(40, "eof", every_s=0.0))
    with make(script, live=False) as source:
        frames: list[Frame] = []
        while (frame := source.read()) is not None:
            frames.append(frame)
            time.sleep(0.002)  # a slow consumer
        assert source.state is SourceState.ENDED
        assert source.dropped == 0
    assert [int(f.image[0, 0, 0]) for f in frames] == list(range(1, 41))


def test_live_slot_keeps_the_newest_picture() -> None:
    script = Script(FakeReader(1000, "eof", every_s=0.001))
    with make(script) as source:
        frames: list[Frame] = []
        while len(frames) < 5:
            frame = source.read()
            assert frame is not None
            frames.append(frame)
            time.sleep(0.03)  # a consumer much slower than the feed
        assert source.dropped > 0
    assert [f.index for f in frames] == list(range(5))  # index counts delivered frames
    values = [int(f.image[0, 0, 0]) for f in frames]
    assert values == sorted(values) and values[-1] - values[0] > 4


def test_unexpected_errors_do_not_escape() -> None:
    script = Script(FakeReader(2, "boom", tag=1), FakeReader(2, "boom", tag=2))
    with make(script) as source:
        consumer = Consumer(source).start()
        assert wait_for(lambda: tags(consumer) == {1, 2}, 3.0)
        assert wait_for(lambda: source.state is SourceState.NO_SIGNAL, 1.0)
    assert consumer.join(1.0) and not consumer.errors


def test_close_unblocks_a_read_waiting_through_an_outage() -> None:
    source = make(Script())  # never connects
    source.open()
    assert source.state is SourceState.NO_SIGNAL
    consumer = Consumer(source).start()
    time.sleep(0.3)
    assert consumer.finished_at is None  # read() is blocking, not failing
    closed_at = time.monotonic()
    source.close()
    assert consumer.join(1.0) and not consumer.errors and not consumer.frames
    assert consumer.finished_at is not None and consumer.finished_at - closed_at < 0.5
    assert source.state is SourceState.ENDED


def test_strict_open_raises_the_first_failure() -> None:
    with pytest.raises(SourceError, match="nobody there"):
        make(Script(), strict=True).open()
