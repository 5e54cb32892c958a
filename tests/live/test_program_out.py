"""The program stream: a camera's aged (or side-by-side) picture as H.264 in MPEG-TS over UDP,
picked up on 127.0.0.1 by agecast's own udp:// source (FFmpeg's demuxer and decoder, as a
hardware decoder would take it)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from agecast.errors import AgecastError
from agecast.live.program_out import camera_url
from agecast.live.service import LiveService
from agecast.media.program import TsOutput
from agecast.settings import Settings
from agecast.sources import open_source
from agecast.sources.testpattern import read_counter

W, H = 320, 240
SOURCE = f"testpattern:{W}x{H}@30"


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def port() -> int:
    return _free_udp_port()


def _service(tmp_path: Path, port: int, kind: str) -> LiveService:
    settings = Settings.load(
        source=SOURCE,
        identity="testpattern",
        state_dir=tmp_path / "state",
        program_out=f"udp://127.0.0.1:{port}",
        program_kind=kind,
    )
    return LiveService(settings)


@pytest.fixture
def aged_service(tmp_path: Path, port: int) -> Iterator[LiveService]:
    live = _service(tmp_path, port, "aged")
    live.start()
    yield live
    live.stop()


def _receive(port: int, count: int) -> list[np.ndarray]:
    with open_source(f"udp://127.0.0.1:{port}", open_timeout_s=10) as rx:
        frames = [rx.read() for _ in range(count)]
    return [f.image.numpy() for f in frames if f is not None]


def test_the_aged_picture_reaches_a_decoder(aged_service: LiveService, port: int) -> None:
    pictures = _receive(port, 20)
    assert len(pictures) == 20 and {p.shape for p in pictures} == {(H, W, 3)}
    numbers = [read_counter(p) for p in pictures]
    assert len(set(numbers)) > 10 and numbers == sorted(numbers), "not the live frames in order"
    # it is the aged picture: the face differs from the raw frame the source drew
    with open_source(SOURCE, live=False) as raw_source:
        for picture, n in zip(pictures[-3:], numbers[-3:], strict=True):
            raw = np.asarray(raw_source.draw(n))  # type: ignore[attr-defined]
            diff = np.abs(picture.astype(int) - raw.astype(int)).max(axis=2)
            band = int(H * 0.78)
            assert (diff[:band] > 40).mean() > 0.002, "the program stream is not the aged one"
            assert np.median(diff[band:]) <= 8  # H.264 at ultrafast: the rest as it was
    status = aged_service.status()["program"]
    assert status["kind"] == "aged" and status["sent"] > 20 and status["bytes"] > 0
    assert 0 < status["fps"] <= 31  # pictures sent in the last second
    assert status["url"] == f"udp://127.0.0.1:{port}" and isinstance(status["dropped"], int)


def test_side_by_side_is_raw_beside_aged(tmp_path: Path, port: int) -> None:
    live = _service(tmp_path, port, "side-by-side")
    live.start()
    try:
        pictures = _receive(port, 10)
    finally:
        live.stop()
    for picture in pictures:
        assert picture.shape == (H, 2 * W, 3)
        assert read_counter(picture[:, :W]) == read_counter(picture[:, W:])


def test_each_camera_gets_its_own_port() -> None:
    assert camera_url("udp://239.1.1.1:5000?ttl=2", 0) == "udp://239.1.1.1:5000?ttl=2"
    assert camera_url("udp://239.1.1.1:5000?ttl=2", 2) == "udp://239.1.1.1:5002?ttl=2"


def test_only_udp_addresses_are_taken() -> None:
    with pytest.raises(AgecastError, match="give a udp://HOST:PORT address"):
        TsOutput("rtsp://user:secret@cam/1", 30.0)
    try:
        TsOutput("rtsp://user:secret@cam/1", 30.0)
    except AgecastError as exc:
        assert "secret" not in str(exc)
