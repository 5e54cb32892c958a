"""``open_source``: the right source for each URI, clear errors for the wrong ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from agecast.errors import SourceError
from agecast.sources import DEMO_URI, Source, SourceState, open_source
from agecast.sources.av_source import FileSource
from agecast.sources.demo import DemoSource
from agecast.sources.reconnect import ReconnectingSource
from agecast.sources.testpattern import TestPatternSource
from agecast.sources.uris import parse_camera_uri


def test_state_values() -> None:
    assert [s.value for s in SourceState] == ["connecting", "live", "no signal", "ended"]
    assert DEMO_URI == "demo"


@pytest.mark.parametrize(
    ("uri", "kind"),
    [
        ("demo", DemoSource),
        ("testpattern", TestPatternSource),
        ("testpattern:640x360", TestPatternSource),
        ("takes/scene12.mp4", FileSource),
        ("file:///srv/takes/scene12.mov", FileSource),
        ("rtsp://camera.local:554/stream1", ReconnectingSource),
        ("rtmp://127.0.0.1/live/a", ReconnectingSource),
        ("udp://127.0.0.1:5000", ReconnectingSource),
        ("http://127.0.0.1:8080/feed.ts", ReconnectingSource),
        ("https://example.invalid/live.m3u8", ReconnectingSource),
        ("v4l2:///dev/video0", ReconnectingSource),
    ],
)
def test_builds_without_opening(uri: str, kind: type[Source]) -> None:
    source = open_source(uri)
    assert isinstance(source, kind)
    assert source.state is SourceState.CONNECTING
    assert source.fps == 30.0
    source.close()  # closing a source never opened is fine


def test_file_uri_gives_the_path() -> None:
    source = open_source("file:///srv/takes/scene%2012.mov")
    assert isinstance(source, FileSource)
    assert source.path == Path("/srv/takes/scene 12.mov")


def test_existing_path_with_a_colon_is_a_file(tmp_path: Path) -> None:
    odd = tmp_path / "take:3.mp4"
    odd.write_bytes(b"")
    assert isinstance(open_source(str(odd)), FileSource)


@pytest.mark.parametrize("uri", ["ftp://host/take.mp4", "srt://127.0.0.1:9000", "webcam:0"])
def test_unknown_scheme_names_it_and_lists_the_forms(uri: str) -> None:
    scheme = uri.split(":", 1)[0]
    with pytest.raises(SourceError) as caught:
        open_source(uri)
    message = str(caught.value)
    assert repr(scheme) in message
    for form in ("demo", "testpattern", "v4l2://", "rtsp://", "udp://", "file://"):
        assert form in message


def test_empty_uri_lists_the_forms() -> None:
    with pytest.raises(SourceError, match="accepted sources"):
        open_source("  ")


def test_missing_camera_is_a_clear_error() -> None:
    source = open_source("v4l2:///dev/video-agecast-test-missing")
    with pytest.raises(
        SourceError,
        match="camera /dev/video-agecast-test-missing not found: check it is plugged in",
    ):
        source.open()


@pytest.mark.parametrize(
    ("uri", "device", "options"),
    [
        ("v4l2:///dev/video0", "/dev/video0", {}),
        ("v4l2:/dev/video2", "/dev/video2", {}),
        ("v4l2://dev/video1", "/dev/video1", {}),
        (
            "v4l2:///dev/video7?video_size=1280x720&framerate=30&input_format=mjpeg",
            "/dev/video7",
            {"video_size": "1280x720", "framerate": "30", "input_format": "mjpeg"},
        ),
    ],
)
def test_camera_uris_parse(uri: str, device: str, options: dict[str, str]) -> None:
    assert parse_camera_uri(uri) == (Path(device), options)


def test_a_device_that_is_not_a_camera_is_a_clear_error() -> None:
    with pytest.raises(SourceError, match="cannot open camera /dev/null"):
        open_source("v4l2:///dev/null", open_timeout_s=1.0).open()
