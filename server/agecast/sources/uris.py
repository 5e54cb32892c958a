"""From a source URI to the source that reads it."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlsplit

from agecast.errors import SourceError
from agecast.redact import SourceURI, reveal
from agecast.sources.av_source import FileSource
from agecast.sources.base import Source
from agecast.sources.demo import DEMO_URI, DemoSource
from agecast.sources.live_av import NETWORK_SCHEMES, camera_source, network_source
from agecast.sources.ndi import NDI_SCHEME, ndi_source
from agecast.sources.testpattern import TESTPATTERN_SCHEME, TestPatternSource, parse_testpattern

ACCEPTED_FORMS = (
    "demo",
    "a video file path or file:///path/to/take.mp4",
    "testpattern[:WxH[@FPS]] (e.g. testpattern:1280x720@30)",
    "v4l2:///dev/video0 (options as ?video_size=1280x720&framerate=30&input_format=mjpeg)",
    "rtsp://host[:port]/path",
    "rtmp://host[:port]/app/stream",
    "udp://host:port (MPEG-TS)",
    "http(s)://host/path",
    "ndi://SOURCE NAME (e.g. ndi://CART (CAM A); agecast sources ndi lists them)",
)
# Two letters or more, so a Windows drive ("C:") reads as a path.
_SCHEME = re.compile(r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]+):")


def _accepted() -> str:
    return "accepted sources: " + "; ".join(ACCEPTED_FORMS)


def open_source(
    uri: str,
    *,
    live: bool = True,
    loop: bool = False,
    open_timeout_s: float = 5.0,
    read_timeout_s: float = 2.0,
) -> Source:
    """Build (without opening) the source for ``uri``.

    ``live`` paces file-like sources at their frame rate and lets a live feed drop stale
    pictures; ``live=False`` (render) delivers every frame as fast as it can. ``loop`` restarts
    a file at its end; the demo and the test pattern loop anyway when live.
    """
    text = reveal(uri).strip()
    uri = SourceURI(text)  # what the source prints and reports: its password hidden
    if not text:
        raise SourceError(f"no source given: {_accepted()}")
    if text == DEMO_URI:
        return DemoSource(live=live, loop=loop or live)
    if text == TESTPATTERN_SCHEME or text.startswith(TESTPATTERN_SCHEME + ":"):
        width, height, fps = parse_testpattern(text)
        return TestPatternSource(uri, width, height, fps, live=live)
    match = _SCHEME.match(text)
    if match is None or Path(text).exists():
        return FileSource(uri, Path(text).expanduser(), live=live, loop=loop)
    scheme = match["scheme"].lower()
    if scheme == "file":
        return FileSource(uri, _local_path(text), live=live, loop=loop)
    if scheme == "v4l2":
        device, options = parse_camera_uri(text)
        return camera_source(
            uri,
            device,
            options,
            live=live,
            open_timeout_s=open_timeout_s,
            read_timeout_s=read_timeout_s,
        )
    if scheme in NETWORK_SCHEMES:
        return network_source(
            uri, scheme, live=live, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s
        )
    if scheme == NDI_SCHEME:
        return ndi_source(
            text, live=live, open_timeout_s=open_timeout_s, read_timeout_s=read_timeout_s
        )
    raise SourceError(f"unknown source scheme {scheme!r} in {uri!r}: {_accepted()}")


def parse_camera_uri(uri: str) -> tuple[Path, dict[str, str]]:
    """(device, FFmpeg v4l2 options) from ``v4l2:///dev/video0?video_size=1280x720&…``."""
    return _local_path(uri), dict(parse_qsl(urlsplit(uri).query))


def _local_path(uri: str) -> Path:
    """The path in ``file:///x``, ``file:x`` or ``v4l2:///dev/video0`` (``v4l2://dev/…`` too)."""
    parts = urlsplit(uri)
    path = unquote(parts.path)
    if parts.netloc and parts.netloc != "localhost":
        path = f"/{parts.netloc}{path}"
    if not path:
        raise SourceError(f"{uri!r} names no path: write e.g. file:///path/to/take.mp4")
    return Path(path).expanduser()
