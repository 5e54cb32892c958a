"""Safe on set: a stopped feed reads "no signal" at once, and a returning one is back soon.

Scripted feeds for the mechanics (stall detector, late pictures, retry spacing) and a real UDP
MPEG-TS feed with the live defaults (FFmpeg read timeout 2 s) for the timings.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest
import torch

from agecast.errors import SourceError, SourceLost
from agecast.sources import SourceState, open_source, reconnect
from agecast.sources.base import Decoded
from agecast.sources.reconnect import FrameReader, ReconnectingSource, retry_cap, stall_after
from tests.sources.media import Consumer, UdpSender, wait_for


class PausingReader:
    """25 fps pictures with stream times; ``pause()`` blocks ``next`` until ``resume()``,
    which may jump the stream time (a feed coming back) or not (late pictures of a dead one)."""

    fps = 25.0

    def __init__(self) -> None:
        self.pts = 0.0
        self._running = threading.Event()
        self._running.set()
        self.closed = False

    def pause(self) -> None:
        self._running.clear()

    def resume(self, jump_s: float = 0.0) -> None:
        self.pts += jump_s
        self._running.set()

    def next(self) -> Decoded | None:
        while not self._running.wait(0.05):
            if self.closed:
                raise SourceLost("closed")
        time.sleep(0.04)
        self.pts += 0.04
        return Decoded(torch.zeros((4, 4, 3), dtype=torch.uint8), self.pts)

    def close(self) -> None:
        self.closed = True


def source_for(reader: FrameReader) -> ReconnectingSource:
    return ReconnectingSource(
        "fake://feed", lambda: reader, label="fake feed", live=True, open_timeout_s=1.0
    )


def messages(caplog: pytest.LogCaptureFixture, text: str) -> int:
    return sum(text in r.getMessage() for r in caplog.records)


def test_stall_thresholds() -> None:
    assert stall_after(30.0) == reconnect.STALL_S < 0.5
    assert stall_after(2.0) == pytest.approx(1.25)  # a slow feed gets 2.5 frame periods
    assert retry_cap(None) == retry_cap(5.0) == reconnect.RECENT_BACKOFF_MAX_S <= 1.0
    assert retry_cap(reconnect.RECENT_OUTAGE_S + 1) == reconnect.BACKOFF_MAX_S


def test_a_stalled_feed_reads_no_signal_at_once_and_live_when_it_resumes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = PausingReader()
    with caplog.at_level(logging.INFO, logger="agecast.sources"), source_for(reader) as source:
        consumer = Consumer(source).start()
        assert wait_for(lambda: len(consumer.frames) >= 5, 3.0)
        assert source.state is SourceState.LIVE
        reader.pause()
        paused = time.monotonic()
        assert wait_for(lambda: source.state is SourceState.NO_SIGNAL, 1.0, step_s=0.005)
        assert time.monotonic() - paused < 0.5  # the connection is still up: no timeout yet
        assert wait_for(lambda: messages(caplog, "no signal") == 1, 0.5)
        seen = len(consumer.frames)
        reader.resume(jump_s=time.monotonic() - paused)  # the feed is back
        assert wait_for(lambda: source.state is SourceState.LIVE, 1.0, step_s=0.005)
        assert wait_for(lambda: len(consumer.frames) > seen + 2, 1.0)
    assert consumer.join(1.0) and not consumer.errors
    assert messages(caplog, "no signal") == 1 and messages(caplog, "signal back") == 1


def test_pictures_flushed_late_by_a_dying_connection_are_dropped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    reader = PausingReader()
    with caplog.at_level(logging.INFO, logger="agecast.sources"), source_for(reader) as source:
        consumer = Consumer(source).start()
        assert wait_for(lambda: len(consumer.frames) >= 5, 3.0)
        reader.pause()
        assert wait_for(lambda: source.state is SourceState.NO_SIGNAL, 1.0)
        time.sleep(0.5)
        seen = len(consumer.frames)
        reader.resume()  # the stream time goes on from where it stopped: stale pictures
        time.sleep(0.3)
        assert len(consumer.frames) == seen
        assert source.state is SourceState.NO_SIGNAL
        assert messages(caplog, "signal back") == 0


class Attempts:
    """A connect that listens for ``listen_s`` and finds nobody (like UDP with no sender)."""

    def __init__(self, listen_s: float) -> None:
        self.listen_s = listen_s
        self.started: list[float] = []

    def __call__(self) -> FrameReader:
        self.started.append(time.monotonic())
        time.sleep(self.listen_s)
        raise SourceError("nobody sending")


def test_retries_are_spaced_from_the_start_of_the_last_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(reconnect, "BACKOFF_START_S", 0.2)
    attempts = Attempts(listen_s=0.6)  # longer than any wait early in an outage
    source = ReconnectingSource(
        "fake://feed", attempts, label="fake feed", live=True, open_timeout_s=0.1
    )
    with source:
        assert wait_for(lambda: len(attempts.started) >= 5, 6.0)
    gaps = [b - a for a, b in zip(attempts.started, attempts.started[1:], strict=False)]
    # each attempt listened longer than the backoff asks for: the next one starts at once
    assert all(0.55 < gap < 0.75 for gap in gaps[:4]), gaps


def test_retries_stay_frequent_early_in_an_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconnect, "BACKOFF_START_S", 0.05)
    monkeypatch.setattr(reconnect, "RECENT_BACKOFF_MAX_S", 0.2)
    attempts = Attempts(listen_s=0.0)
    with ReconnectingSource(
        "fake://feed", attempts, label="fake feed", live=True, open_timeout_s=0.1
    ):
        assert wait_for(lambda: len(attempts.started) >= 7, 5.0)
    gaps = [b - a for a, b in zip(attempts.started, attempts.started[1:], strict=False)]
    assert max(gaps[:6]) < 0.2 + 0.1, gaps  # capped at the recent-outage cap, not 2 s


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_udp_no_signal_within_half_a_second_and_back_within_two(
    udp_sender: UdpSender, record_property: Callable[[str, object], None]
) -> None:
    udp_sender.start()
    source = open_source(udp_sender.url.split("?")[0])  # live defaults: read timeout 2 s
    with source:
        consumer = Consumer(source).start()
        assert wait_for(lambda: len(consumer.frames) >= 10, 5.0), udp_sender.error
        for outage_s in (1.0, 3.0):  # within FFmpeg's read timeout, and past it
            udp_sender.stop()
            stopped = time.monotonic()
            assert wait_for(lambda: source.state is SourceState.NO_SIGNAL, 2.0, step_s=0.005)
            lost = time.monotonic() - stopped
            time.sleep(max(0.0, stopped + outage_s - time.monotonic()))
            seen = len(consumer.frames)
            udp_sender.start()
            started = time.monotonic()

            def returned(seen: int = seen) -> bool:
                return source.state is SourceState.LIVE and len(consumer.frames) > seen

            assert wait_for(returned, 5.0, step_s=0.005)
            back = time.monotonic() - started
            record_property(f"udp_outage_{outage_s:g}s", {"no_signal_s": lost, "back_s": back})
            assert lost < 0.5 and back < 2.0, (outage_s, lost, back)
            time.sleep(0.5)
    assert consumer.join(1.0) and not consumer.errors
