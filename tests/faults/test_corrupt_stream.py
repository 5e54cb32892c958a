"""Corrupt stream bytes: garbage in the middle of a file or between a feed's datagrams.

The pipeline keeps running: frames keep coming out, no exception escapes a thread, and the
source is not given up on. (A damaged picture is FFmpeg's to conceal or to skip.)
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import av.logging
import pytest

from agecast.errors import SourceError
from agecast.pipeline.build import build
from agecast.settings import Settings
from agecast.sources import SourceState, open_source
from tests.sources.media import free_udp_port

from .media import GarbledUdpSender, mp4_media_range, splice, write_clip

RUN_S = 4.0  # two passes of the 2 s clips


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[threading.ExceptHookArgs]:
    """Exceptions that escape any thread while the test runs."""
    seen: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", seen.append)
    return seen


@contextmanager
def ffmpeg_log() -> Iterator[list[tuple[int, str, str]]]:
    """FFmpeg's own warnings while the block runs (PyAV keeps them off by default)."""
    level = av.logging.get_level()
    av.logging.set_level(av.logging.WARNING)
    try:
        with av.logging.Capture(local=False) as logs:
            yield logs
    finally:
        av.logging.set_level(level)


def keeps_running(source: str, seconds: float = RUN_S) -> list[int]:
    """Run a live pipeline on ``source``; frames out, sampled every second."""
    built = build(Settings.load(source=source, identity="testpattern", loop=True), mode="live")
    pipeline = built.pipeline
    samples: list[int] = []
    pipeline.start()
    try:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(1.0)
            samples.append(pipeline.frames_out)
        assert pipeline.running and pipeline.error is None
        assert pipeline.stats()["watchdog"]["alive"]
    finally:
        built.close()
    return samples


def assert_flowing(samples: list[int]) -> None:
    gains = [b - a for a, b in zip([0, *samples], samples, strict=False)]
    assert all(gain >= 5 for gain in gains), samples  # every second, frames came out


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("corrupt")
    write_clip(folder / "clip.mp4")
    write_clip(folder / "fast.mp4", options={"movflags": "faststart"})
    write_clip(folder / "clip.ts")
    return folder


def garbage(size: int = 3000) -> bytes:
    return random.Random(size).randbytes(size)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "replace"),
    [("clip.mp4", True), ("fast.mp4", False), ("fast.mp4", True), ("clip.ts", False)],
    ids=["mp4-overwritten", "mp4-faststart-inserted", "mp4-faststart-overwritten", "ts-inserted"],
)
def test_garbage_in_the_middle_of_a_file(
    clips: Path, tmp_path: Path, name: str, replace: bool,
    thread_errors: list[threading.ExceptHookArgs], caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    clean = clips / name
    data = clean.read_bytes()
    start, end = mp4_media_range(data) if name.endswith(".mp4") else (0, len(data))
    damaged = splice(
        clean, tmp_path / f"damaged-{name}", at=(start + end) // 2, garbage=garbage(),
        replace=replace,
    )  # fmt: skip
    with ffmpeg_log() as logs, caplog.at_level(logging.WARNING, logger="agecast.sources"):
        assert_flowing(keeps_running(str(damaged)))
    skipped = [r for r in caplog.records if "undecodable" in r.getMessage()]
    # inserted bytes throw the demuxer off (noisily); bytes written over a picture's data
    # often decode quietly into a damaged picture
    assert replace or logs or skipped, "the garbage never reached the demuxer or decoder"
    assert not thread_errors


def test_garbage_that_breaks_an_mp4s_boxes_is_a_clear_error(clips: Path, tmp_path: Path) -> None:
    clean = clips / "clip.mp4"  # index at the end: inserted bytes hide it
    start, end = mp4_media_range(clean.read_bytes())
    damaged = splice(clean, tmp_path / "broken.mp4", at=(start + end) // 2,
                     garbage=garbage(), replace=False)  # fmt: skip
    source = open_source(str(damaged), live=True, loop=True)
    with pytest.raises(SourceError, match=r"broken\.mp4.*check the file is a complete video"):
        source.open()
    source.close()


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_garbage_datagrams_between_good_ones(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    sender = GarbledUdpSender(free_udp_port(), every=4).start()
    try:
        with ffmpeg_log() as logs, open_source(sender.url) as source:
            frames = 0
            states = []
            deadline = time.monotonic() + RUN_S
            while time.monotonic() < deadline and source.read() is not None:
                frames += 1
                states.append(source.state)
        assert sender.error is None and sender.garbage >= 50
        assert frames >= RUN_S * 30 * 0.8
        assert states.count(SourceState.LIVE) >= 0.95 * len(states)
        assert any(name in ("h264", "mpegts") for _, name, _ in logs)
    finally:
        sender.stop()
    assert not thread_errors


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_a_pipeline_on_a_garbled_feed_keeps_running(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    sender = GarbledUdpSender(free_udp_port(), every=4).start()
    try:
        assert_flowing(keeps_running(sender.url))
        assert sender.error is None
    finally:
        sender.stop()
    assert not thread_errors


def test_ffmpeg_logging_is_restored() -> None:
    level = av.logging.get_level()
    with ffmpeg_log():
        pass
    assert av.logging.get_level() == level
