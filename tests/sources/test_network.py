"""A real network feed: MPEG-TS over UDP on 127.0.0.1, sent by a PyAV encoder thread."""

from __future__ import annotations

import logging
import time

import pytest

from agecast.sources import SourceState, open_source
from agecast.sources.reconnect import ReconnectingSource
from tests.sources.media import Consumer, UdpSender, free_udp_port, wait_for


def receiver(sender: UdpSender) -> ReconnectingSource:
    source = open_source(sender.url.split("?")[0], open_timeout_s=2.0, read_timeout_s=1.0)
    assert isinstance(source, ReconnectingSource)
    return source


@pytest.mark.slow
def test_udp_stream_survives_its_sender_going_away(
    udp_sender: UdpSender, caplog: pytest.LogCaptureFixture
) -> None:
    udp_sender.start()
    source = receiver(udp_sender)
    with caplog.at_level(logging.INFO, logger="agecast.sources"):
        source.open()
        assert source.fps == pytest.approx(30.0)
        consumer = Consumer(source).start()
        assert wait_for(lambda: len(consumer.frames) >= 10, 5.0), udp_sender.error
        assert source.state is SourceState.LIVE
        first = consumer.frames[0]
        assert tuple(first.image.shape) == (96, 160, 3)
        assert first.pts_s is not None

        udp_sender.stop()
        stopped_at = time.monotonic()
        assert wait_for(lambda: source.state is SourceState.NO_SIGNAL, 3.0)
        assert time.monotonic() - stopped_at < 3.0
        seen_before = consumer.last_index
        time.sleep(1.0)  # through a reconnect attempt or two
        assert consumer.finished_at is None and not consumer.errors  # still waiting

        udp_sender.start()
        assert wait_for(lambda: consumer.last_index >= seen_before + 10, 8.0)
        assert source.state is SourceState.LIVE
        source.close()
    assert consumer.join(1.0) and not consumer.errors
    indices = [f.index for f in consumer.frames]
    assert indices == list(range(len(indices)))
    messages = [r.getMessage() for r in caplog.records]
    assert sum("no signal" in m for m in messages) == 1
    assert any("signal back" in m for m in messages)


def test_udp_without_a_sender_waits_and_close_unblocks_it() -> None:
    port = free_udp_port()
    source = open_source(f"udp://127.0.0.1:{port}", open_timeout_s=0.5, read_timeout_s=0.5)
    started = time.monotonic()
    source.open()  # nobody is sending: not an error, the source waits for a signal
    assert time.monotonic() - started < 2.5
    assert source.state in (SourceState.CONNECTING, SourceState.NO_SIGNAL)
    consumer = Consumer(source).start()
    time.sleep(0.3)
    assert consumer.finished_at is None
    closed_at = time.monotonic()
    source.close()
    assert consumer.join(1.0) and not consumer.errors and not consumer.frames
    assert consumer.finished_at is not None and consumer.finished_at - closed_at < 0.5
    assert source.state is SourceState.ENDED
