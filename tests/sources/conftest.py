"""Fixtures for the source tests. Nothing here touches the user's cache or the network."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from agecast.sources.demo import demo_clip_path
from tests.sources.media import UdpSender, free_udp_port


@pytest.fixture
def udp_sender() -> Iterator[UdpSender]:
    sender = UdpSender(free_udp_port())
    yield sender
    sender.stop()


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("agecast-cache")


@pytest.fixture(autouse=True)
def _isolated_cache(demo_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never touch the user's real cache folder."""
    monkeypatch.setenv("AGECAST_CACHE_DIR", str(demo_cache))


@pytest.fixture(scope="session")
def demo_clip(demo_cache: Path) -> Path:
    """The demo clip, generated once per test session into the session's cache folder."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGECAST_CACHE_DIR", str(demo_cache))
        return demo_clip_path()
