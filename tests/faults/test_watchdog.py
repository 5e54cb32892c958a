"""A stalled device thread is seen by the watchdog, reported in the stats and logged once as it
starts and once as it ends; the capture thread keeps counting the frames it cannot hand over."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import pytest
import torch

from agecast.identities.runtime import SwapResult
from agecast.pipeline.watchdog import Watchdog
from tests.api.conftest import Running

from .conftest import poll, status


def test_watchdog_reports_and_logs_a_stall_once(caplog: pytest.LogCaptureFixture) -> None:
    watchdog = Watchdog("test thread", threshold_s=0.2, warmup_frames=0)
    assert watchdog.report()["stalled"] is False
    with caplog.at_level(logging.WARNING, logger="agecast.pipeline.watchdog"):
        watchdog.begin(7, "compose")
        watchdog.stage("infer")
        time.sleep(0.3)
        assert watchdog.check() and watchdog.check()  # stalled, logged once
        report = watchdog.report()
        assert report["stalled"] and report["stage"] == "infer" and report["frame"] == 7
        assert report["since_s"] >= 0.3 and report["stalls"] == 1
        watchdog.end()
        watchdog.idle()
    report = watchdog.report()
    assert not report["stalled"] and report["stage"] == "idle" and report["since_s"] == 0.0
    assert report["longest_s"] >= 0.3 and report["stalls"] == 1
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert "stalled: frame 7 in stage infer" in lines[0]
    assert "stall over: frame 7" in lines[1] and "in stage infer" in lines[1]


def test_a_slow_frame_the_checker_missed_is_still_counted() -> None:
    watchdog = Watchdog("test thread", threshold_s=0.05, warmup_frames=0)
    watchdog.begin(1, "fx")
    time.sleep(0.1)
    watchdog.end()  # no check() ran in between
    assert watchdog.report()["stalls"] == 1


def test_the_first_frames_may_take_longer() -> None:
    watchdog = Watchdog("test thread", threshold_s=0.05, warmup_frames=2, warmup_s=0.5)
    for frame in range(2):  # warming up: slow, not stalled
        watchdog.begin(frame, "fx")
        time.sleep(0.1)
        assert not watchdog.check()
        watchdog.end()
    assert watchdog.report()["stalls"] == 0 and watchdog.threshold_s == 0.05
    watchdog.begin(2, "fx")
    time.sleep(0.1)
    assert watchdog.check()


def watchdog_of(server: Running, client: Any) -> dict[str, Any]:
    """The watchdog as /api/status shows it, or from the pipeline's stats until LiveService's
    status includes it."""
    shown = status(client)
    if "watchdog" in shown:
        report: dict[str, Any] = shown["watchdog"]
        return report
    return dict(server.service.built.pipeline.stats()["watchdog"])


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_model_that_hangs_for_two_seconds_once(
    server: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    pipeline = server.service.built.pipeline
    identity = server.service.built.fx.identity
    real_infer = identity.infer
    hung = threading.Event()

    def hangs_once(crops: torch.Tensor, *args: Any, **kwargs: Any) -> SwapResult:
        if not hung.is_set():
            hung.set()
            time.sleep(2.0)
        return real_infer(crops, *args, **kwargs)

    with server.client("viewer") as client, caplog.at_level(logging.INFO):
        before = watchdog_of(server, client)
        assert not before["stalled"] and before["alive"]
        start = pipeline.stats()
        monkeypatch.setattr(identity, "infer", hangs_once)
        assert hung.wait(5.0)
        hung_at = time.monotonic()
        seen = poll(lambda: watchdog_of(server, client)["stalled"], 3.0)
        assert seen is not None and time.monotonic() - hung_at < 1.3  # threshold 1 s + checks
        during = watchdog_of(server, client)
        assert during["stage"] == "fx" and during["since_s"] > 1.0 and during["alive"]
        mid = pipeline.stats()
        assert mid["frames_in"] > start["frames_in"] + 20  # capture goes on …
        assert mid["dropped"]["capture→device"] > start["dropped"]["capture→device"] + 20  # …
        # … dropping what the device thread cannot take
        over = poll(lambda: not watchdog_of(server, client)["stalled"], 3.0)
        assert over is not None
        time.sleep(0.5)
        after = watchdog_of(server, client)
        frames_after = pipeline.stats()["frames_out"]
        time.sleep(0.5)
        assert pipeline.stats()["frames_out"] > frames_after + 5  # flowing again

    assert after["stalls"] == before["stalls"] + 1
    assert after["longest_s"] >= 2.0
    messages = [r.getMessage() for r in caplog.records if r.name == "agecast.pipeline.watchdog"]
    assert sum("stalled:" in m for m in messages) == 1
    assert sum("stall over" in m for m in messages) == 1
    assert any("in stage fx" in m for m in messages)
