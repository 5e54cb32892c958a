"""Live feeds through PyAV: network streams and v4l2 cameras, each behind a reconnect."""

from __future__ import annotations

from functools import partial
from pathlib import Path

from agecast.errors import SourceError
from agecast.redact import SourceURI, reveal
from agecast.sources.av_source import AVReader, open_container
from agecast.sources.reconnect import ReconnectingSource

NETWORK_SCHEMES = ("rtsp", "rtmp", "udp", "http", "https")
# How much of a live stream FFmpeg reads to learn its codec parameters before the first picture
# (FFmpeg reads on past this until it has them, e.g. to the next key frame). FFmpeg's default,
# 5 s for MPEG-TS, cost ≈ 0.7 s on every (re)connect to a 30 fps UDP feed; 0.25 s costs ≈ 0.25 s.
PROBE_US = 250_000


def network_options(scheme: str, *, live: bool) -> tuple[str | None, dict[str, str]]:
    """(forced container format, FFmpeg options) for a network ``scheme``."""
    options: dict[str, str] = {}
    if live:
        # A short probe, and no "fflags=nobuffer": that flag throws away the packets read while
        # probing, so the first picture waited for the key frame after the probe (up to a GOP,
        # seconds on some encoders); kept, they start at once and the live slot drops the few
        # stale ones.
        options["analyzeduration"] = str(PROBE_US)
    if scheme == "rtsp":
        # UDP transport loses packets on busy set networks and smears the picture.
        options["rtsp_transport"] = "tcp"
    return ("mpegts" if scheme == "udp" else None), options


def connect_network(
    url: str, scheme: str, *, live: bool, open_timeout_s: float, read_timeout_s: float
) -> AVReader:
    fmt, options = network_options(scheme, live=live)
    label = f"stream {SourceURI(url)}"  # the address without its password
    container = open_container(
        reveal(url),
        label=label,
        hint="check the sender is running and the address, port and path are right",
        fmt=fmt,
        options=options,
        timeout=(open_timeout_s, read_timeout_s),
    )
    return AVReader(container, label)


def network_source(
    url: str, scheme: str, *, live: bool, open_timeout_s: float, read_timeout_s: float
) -> ReconnectingSource:
    """A network stream; a sender that is not there yet (or goes away) is NO_SIGNAL, not an
    error."""
    if scheme not in NETWORK_SCHEMES:
        raise SourceError(f"{scheme!r} is not a network scheme ({', '.join(NETWORK_SCHEMES)})")
    connect = partial(
        connect_network,
        url,
        scheme,
        live=live,
        open_timeout_s=open_timeout_s,
        read_timeout_s=read_timeout_s,
    )
    return ReconnectingSource(
        SourceURI(url), connect, label=f"stream {SourceURI(url)}", live=live,
        open_timeout_s=open_timeout_s,
    )  # fmt: skip


def check_camera(device: Path) -> None:
    if not device.exists():
        raise SourceError(
            f"camera {device} not found: check it is plugged in / the device path (ls /dev/video*)"
        )


def connect_camera(
    device: Path, options: dict[str, str], *, open_timeout_s: float, read_timeout_s: float
) -> AVReader:
    label = f"camera {device}"
    check_camera(device)
    container = open_container(
        str(device),
        label=label,
        hint="check no other program is using it and the options (video_size, framerate, "
        "input_format) are ones it supports (v4l2-ctl --list-formats-ext)",
        fmt="v4l2",
        options=options,
        timeout=(open_timeout_s, read_timeout_s),
    )
    return AVReader(container, label)


def camera_source(
    uri: str,
    device: Path,
    options: dict[str, str],
    *,
    live: bool,
    open_timeout_s: float,
    read_timeout_s: float,
) -> ReconnectingSource:
    """A v4l2 camera: a missing device or one that cannot be opened raises from ``open``; a
    camera unplugged later is NO_SIGNAL until it is back."""
    connect = partial(
        connect_camera,
        device,
        options,
        open_timeout_s=open_timeout_s,
        read_timeout_s=read_timeout_s,
    )
    return ReconnectingSource(
        uri,
        connect,
        label=f"camera {device}",
        live=live,
        open_timeout_s=open_timeout_s,
        preflight=partial(check_camera, device),
        strict_open=True,
    )
