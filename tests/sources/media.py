"""Test media made with PyAV: clips, a UDP MPEG-TS sender, and a consumer thread."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path

import av
import numpy as np
from av.video.stream import VideoStream
from numpy.typing import NDArray

from agecast.frames import Frame
from agecast.sources import Source

log = logging.getLogger(__name__)


def pattern_frame(index: int, width: int, height: int) -> NDArray[np.uint8]:
    """A picture whose mean brightness and bright bar position encode ``index``."""
    image = np.full((height, width, 3), 40 + (index * 7) % 180, dtype=np.uint8)
    x = (index * 8) % max(1, width - 8)
    image[:, x : x + 8] = (255, 255, 255)
    return image


def write_clip(
    path: Path,
    *,
    frames: int = 30,
    width: int = 160,
    height: int = 96,
    fps: int = 30,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
) -> Path:
    """Encode ``frames`` pattern pictures to ``path`` (container from the suffix)."""
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(codec, rate=fps)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        for index in range(frames):
            picture = av.VideoFrame.from_ndarray(pattern_frame(index, width, height), "rgb24")
            picture.pts = index
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return path


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class UdpSender:
    """Encodes pattern pictures with x264 into MPEG-TS over UDP at ``fps`` from a thread."""

    def __init__(self, port: int, *, width: int = 160, height: int = 96, fps: int = 30) -> None:
        self.url = f"udp://127.0.0.1:{port}?pkt_size=1316"
        self.width, self.height, self.fps = width, height, fps
        self.sent = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error: BaseException | None = None

    def start(self) -> UdpSender:
        self._stop.clear()
        self._thread = threading.Thread(target=self._run, name="udp sender", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5.0)
            self._thread = None

    def _run(self) -> None:
        try:
            with av.open(self.url, mode="w", format="mpegts") as out:
                stream = out.add_stream(
                    "libx264", rate=self.fps, options={"preset": "ultrafast", "tune": "zerolatency"}
                )
                stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
                stream.gop_size = 10  # a joining receiver needs a key frame soon
                started = time.monotonic()
                index = 0
                while not self._stop.is_set():
                    image = pattern_frame(index, self.width, self.height)
                    picture = av.VideoFrame.from_ndarray(image, "rgb24")
                    picture.pts = index
                    out.mux(stream.encode(picture))
                    self.sent = index = index + 1
                    self._stop.wait(max(0.0, started + index / self.fps - time.monotonic()))
                out.mux(stream.encode(None))
        except BaseException as exc:  # surfaced by the test that owns the sender
            log.exception("udp sender failed")
            self.error = exc


def wait_for(condition: Callable[[], bool], timeout_s: float, step_s: float = 0.02) -> bool:
    """Poll ``condition`` until it holds or ``timeout_s`` passes; whether it held."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(step_s)
    return condition()


class Consumer:
    """Reads a source from its own thread, as the pipeline would, keeping what it saw."""

    def __init__(self, source: Source) -> None:
        self.source = source
        self.frames: list[Frame] = []
        self.errors: list[BaseException] = []
        self.finished_at: float | None = None
        self._thread = threading.Thread(target=self._run, name="consumer", daemon=True)

    def start(self) -> Consumer:
        self._thread.start()
        return self

    def join(self, timeout_s: float) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()

    @property
    def last_index(self) -> int:
        return self.frames[-1].index if self.frames else -1

    def _run(self) -> None:
        try:
            while (frame := self.source.read()) is not None:
                self.frames.append(frame)
        except BaseException as exc:
            self.errors.append(exc)
        self.finished_at = time.monotonic()
