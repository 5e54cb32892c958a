"""NDI on the set LAN: find sources, receive one, publish pictures as a named source.

Through ``cyndilib``, whose wheel bundles the NDI runtime (nothing else to install); this is the
one module that imports it. NDI finds sources by mDNS; where the set LAN (or a container)
carries no multicast, :func:`configure` names the machines to ask directly (NDI's "extra IPs"),
which is also how the tests find a sender on 127.0.0.1.

Pictures are 8-bit RGB in and out (NDI's RGBA/RGBX with the alpha set opaque). A received
frame keeps the sender's timecode (NDI's 100 ns units, as POSIX seconds).
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from agecast.errors import SourceError, SourceLost

log = logging.getLogger(__name__)

INSTALL_HINT = "NDI needs the cyndilib package (pip install cyndilib: it bundles the NDI runtime)"
CONFIG_ENV = "NDI_CONFIG_DIR"
CONFIG_NAME = "ndi-config.v1.json"
# A receive call waits at most this long, so a close() is noticed soon.
POLL_MS = 50


def _lib() -> Any:
    try:
        import cyndilib
        import cyndilib.finder
        import cyndilib.sender
    except ImportError as exc:
        raise SourceError(INSTALL_HINT) from exc
    return cyndilib


def missing() -> str | None:
    """Why NDI cannot run here (None: it can)."""
    try:
        _lib()
    except SourceError as exc:
        return str(exc)
    return None


def configure(extra_ips: list[str], folder: Path) -> Path | None:
    """Have the NDI runtime also look for sources on ``extra_ips`` (machines or 127.0.0.1),
    through a config written in ``folder``; returns its folder, or None when there is nothing
    to add or the user points ``NDI_CONFIG_DIR`` at their own config (theirs wins). Call it
    before anything else here: the runtime reads its config once, when it starts."""
    if not extra_ips:
        return None
    if os.environ.get(CONFIG_ENV) and Path(os.environ[CONFIG_ENV]) != folder:
        log.info("NDI: using the config in %s=%s", CONFIG_ENV, os.environ[CONFIG_ENV])
        return None
    folder.mkdir(parents=True, exist_ok=True)
    config = {"ndi": {"networks": {"ips": ",".join(extra_ips)}}}
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=1) + "\n")
    os.environ[CONFIG_ENV] = str(folder)
    log.info("NDI: looking for sources on %s too", ", ".join(extra_ips))
    return folder


def find(timeout_s: float = 2.0) -> list[str]:
    """The NDI sources seen within ``timeout_s`` ("MACHINE (NAME)"), sorted."""
    finder_module = _lib().finder
    finder = finder_module.Finder()
    finder.open()
    try:
        deadline = time.monotonic() + timeout_s
        names: list[str] = []
        while time.monotonic() < deadline:
            finder.wait_for_sources(min(0.5, max(0.01, deadline - time.monotonic())))
            names = finder.get_source_names()
        return sorted(names)
    finally:
        finder.close()


def matches(wanted: str, seen: str) -> bool:
    """``wanted`` names ``seen``: the full "MACHINE (NAME)", or just NAME."""
    return seen == wanted or (seen.endswith(f"({wanted})") and " (" in seen)


@dataclass(frozen=True, slots=True)
class Received:
    rgb: np.ndarray  # HxWx3 uint8
    timecode_s: float  # the sender's timecode, POSIX seconds


class NdiReceiver:
    """One connection to the NDI source ``name``: raises :class:`SourceError` from the
    constructor when it is not found within ``open_timeout_s``, :class:`SourceLost` from
    :meth:`next` when no picture comes for ``read_timeout_s``."""

    def __init__(self, name: str, *, open_timeout_s: float, read_timeout_s: float) -> None:
        lib = _lib()
        from cyndilib.receiver import ReceiveFrameType, Receiver
        from cyndilib.video_frame import VideoRecvFrame
        from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

        self.name = name
        self._video = ReceiveFrameType.recv_video
        self._read_timeout_s = read_timeout_s
        self._finder = lib.finder.Finder()
        self._finder.open()
        seen: list[str] = []
        source = None
        deadline = time.monotonic() + open_timeout_s
        while source is None and time.monotonic() < deadline:
            self._finder.wait_for_sources(0.25)
            seen = self._finder.get_source_names()
            found = next((s for s in seen if matches(name, s)), None)
            source = self._finder.get_source(found) if found is not None else None
        if source is None:
            self._finder.close()
            raise SourceError(
                f"NDI source {name!r} not found in {open_timeout_s:g} s (seen: "
                f"{', '.join(seen) or 'none'}): check the sender is on and on this network "
                "('agecast sources ndi' lists what this machine sees; across subnets name the "
                "sender's machine in the ndi_extra_ips setting)"
            )
        self._receiver = Receiver(
            color_format=RecvColorFormat.RGBX_RGBA,
            bandwidth=RecvBandwidth.highest,
            recv_name="agecast",
        )
        self._frame = VideoRecvFrame()
        self._receiver.set_video_frame(self._frame)
        self._receiver.set_source(source)
        self.fps = 0.0

    def next(self) -> Received:
        """The next picture; :class:`SourceLost` after ``read_timeout_s`` with none."""
        deadline = time.monotonic() + self._read_timeout_s
        while time.monotonic() < deadline:
            got = self._receiver.receive(self._video, POLL_MS)
            if not got & self._video:
                continue
            width, height = self._frame.get_resolution()
            stride = self._frame.get_line_stride()
            if width <= 0 or height <= 0:
                continue
            data = np.empty(self._frame.get_data_size(), np.uint8)
            self._frame.fill_p_data(data)
            rate = self._frame.get_frame_rate()
            self.fps = float(rate) if rate else self.fps
            rows = data[: stride * height].reshape(height, stride)
            rgb = rows[:, : width * 4].reshape(height, width, 4)[:, :, :3]
            return Received(np.ascontiguousarray(rgb), self._frame.get_timecode_posix())
        raise SourceLost(f"NDI source {self.name!r} sent no picture for {self._read_timeout_s:g} s")

    def close(self) -> None:
        try:
            self._receiver.disconnect()
        finally:
            self._finder.close()


class NdiSender:
    """Publishes pictures as the NDI source ``name`` (HxWx3 uint8 RGB, any size: a new size
    re-declares the stream). Each picture may carry a metadata string (XML) that receivers get
    with it: agecast puts the frame's number and timecode there, the same on every output of a
    camera."""

    def __init__(self, name: str, fps: float) -> None:
        lib = _lib()
        self.name = name
        self._lib = lib
        self._rate = Fraction(round(fps * 1000), 1000).limit_denominator(1001)
        self._sender = lib.sender.Sender(name, clock_video=False)  # the source paces us
        self._frame: Any = None
        self._size: tuple[int, int] | None = None
        self._rgba: np.ndarray | None = None

    def _declare(self, width: int, height: int) -> None:
        from cyndilib.video_frame import VideoSendFrame
        from cyndilib.wrapper.ndi_structs import FourCC

        if self._frame is not None:
            self._sender.close()
            self._sender = self._lib.sender.Sender(self.name, clock_video=False)
        frame = VideoSendFrame()
        frame.set_resolution(width, height)
        frame.set_frame_rate(self._rate)
        frame.set_fourcc(FourCC.RGBA)
        self._sender.set_video_frame(frame)
        self._sender.open()
        self._frame, self._size = frame, (width, height)
        self._rgba = np.full((height, width, 4), 255, np.uint8)

    def send(self, rgb: np.ndarray, metadata: str | None = None) -> None:
        height, width = rgb.shape[0], rgb.shape[1]
        if self._size != (width, height):
            self._declare(width, height)
        assert self._rgba is not None
        self._rgba[:, :, :3] = rgb
        if metadata is not None:
            self._frame.set_metadata(metadata.encode())
        self._sender.write_video(self._rgba.reshape(-1))

    def connections(self) -> int:
        """Receivers connected now (0 before the first picture)."""
        return int(self._sender.get_num_connections(0)) if self._frame is not None else 0

    def close(self) -> None:
        if self._frame is not None:
            self._sender.close()
