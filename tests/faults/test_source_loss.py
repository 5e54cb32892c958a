"""Source lost on a live server: "no signal" within 0.5 s, back by itself within 2 s.

A real UDP MPEG-TS feed (tests/sources/media.py's sender) into a real server; the status the
monitor shows is read over HTTP the way a browser reads it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from tests.sources.media import UdpSender, free_udp_port

from .conftest import poll, running_server, status

log = logging.getLogger(__name__)

NO_SIGNAL_WITHIN_S = 0.5
BACK_WITHIN_S = 2.0


def _no_signal(client: httpx.Client) -> bool:
    shown = status(client)
    return shown["source"]["state"] == "no signal" and shown["fx"] == "no signal"


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_feed_lost_and_back_without_a_restart(
    tmp_path: Path, record_property: Callable[[str, object], None]
) -> None:
    sender = UdpSender(free_udp_port(), width=320, height=180).start()
    try:
        with (
            running_server(
                tmp_path, source=sender.url.split("?")[0], identity="testpattern"
            ) as srv,
            srv.client("viewer") as client,
        ):
            pipeline = srv.service.built.pipeline
            assert status(client)["source"]["state"] == "live"
            # shorter than FFmpeg's 2 s read timeout (the same connection resumes), and longer
            for outage_s in (1.0, 3.0):
                sender.stop()
                lost = poll(lambda: _no_signal(client), 3.0)
                assert lost is not None and lost < NO_SIGNAL_WITHIN_S, lost
                time.sleep(max(0.0, outage_s - lost))
                assert _no_signal(client)  # still: the pipeline waits, nothing failed
                seen = pipeline.frames_out
                sender.start()

                def back(seen: int = seen) -> bool:
                    shown = status(client)
                    return (
                        shown["source"]["state"] == "live"
                        and shown["fx"] != "no signal"
                        and shown["frames_out"] > seen
                    )

                returned = poll(back, 10.0)
                assert returned is not None and returned < BACK_WITHIN_S, returned
                log.info("outage %.1f s: no signal after %.3f s, back after %.3f s",
                         outage_s, lost, returned)  # fmt: skip
                record_property(f"outage_{outage_s:g}s", {"no_signal_s": lost, "back_s": returned})
                time.sleep(0.5)
            assert srv.service.built.pipeline is pipeline and pipeline.running  # no restart
            assert status(client)["error"] is None
    finally:
        sender.stop()
