"""Damaged media for fault tests: clips with garbage spliced in, and a UDP MPEG-TS sender that
sends garbage datagrams between the good ones."""

from __future__ import annotations

import io
import logging
import random
import socket
import struct
import threading
import time
from pathlib import Path

import av
import numpy as np
from av.video.stream import VideoStream

from tests.sources.media import pattern_frame

log = logging.getLogger(__name__)

DATAGRAM = 1316  # 7 TS packets, as FFmpeg's udp output sends them
VIDEO_PID = 0x100  # FFmpeg's MPEG-TS muxer puts the first stream here


def textured_frame(index: int, width: int, height: int, rng: np.random.Generator) -> np.ndarray:
    """A pattern picture with noise on it, so every frame costs real bytes to encode."""
    noise = rng.integers(0, 40, size=(height, width, 3), dtype=np.uint8)
    return pattern_frame(index, width, height) // 2 + noise


def write_clip(path: Path, *, frames: int = 60, width: int = 320, height: int = 180,
               options: dict[str, str] | None = None) -> Path:  # fmt: skip
    """An H.264 clip (container from the suffix) with a key frame every 15 frames."""
    rng = np.random.default_rng(0)
    with av.open(str(path), mode="w", options=options or {}) as out:
        stream = out.add_stream("libx264", rate=30, options={"preset": "ultrafast"})
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.gop_size = 15
        for index in range(frames):
            image = textured_frame(index, width, height, rng)
            picture = av.VideoFrame.from_ndarray(image, "rgb24")
            picture.pts = index
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))
    return path


def mp4_media_range(data: bytes) -> tuple[int, int]:
    """(start, end) of the ``mdat`` payload of an MP4 (top-level boxes with 32-bit sizes)."""
    offset = 0
    while offset + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind == b"mdat":
            return offset + 8, offset + size
        if size < 8:
            break
        offset += size
    raise ValueError("no mdat box")


def splice(path: Path, out: Path, *, at: int, garbage: bytes, replace: bool) -> Path:
    """``path`` with ``garbage`` put in at byte ``at``: written over what was there, or
    inserted (shifting the rest)."""
    data = path.read_bytes()
    rest = data[at + len(garbage) :] if replace else data[at:]
    out.write_bytes(data[:at] + garbage + rest)
    return out


class GarbledUdpSender:
    """Encodes pattern pictures into MPEG-TS and sends them over UDP at ``fps``, with a random
    garbage datagram after every ``every``-th good one (seeded: the same garbage every run)."""

    def __init__(self, port: int, *, every: int = 5, width: int = 320, height: int = 180,
                 fps: int = 30, seed: int = 7) -> None:  # fmt: skip
        self.url = f"udp://127.0.0.1:{port}"
        self.port, self.every, self.width, self.height, self.fps = port, every, width, height, fps
        self.sent = self.garbage = 0
        self.error: BaseException | None = None
        self._rng = random.Random(seed)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="garbled sender", daemon=True)

    def start(self) -> GarbledUdpSender:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5.0)

    def _run(self) -> None:
        buffer = io.BytesIO()
        try:
            with (
                socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock,
                av.open(buffer, mode="w", format="mpegts") as out,
            ):
                stream = out.add_stream(
                    "libx264", rate=self.fps, options={"preset": "ultrafast", "tune": "zerolatency"}
                )
                assert isinstance(stream, VideoStream)
                stream.width, stream.height, stream.pix_fmt = self.width, self.height, "yuv420p"
                stream.gop_size = 10
                started, index, pending = time.monotonic(), 0, b""
                noise = np.random.default_rng(0)
                while not self._stop.is_set():
                    image = textured_frame(index, self.width, self.height, noise)
                    picture = av.VideoFrame.from_ndarray(image, "rgb24")
                    picture.pts = index
                    out.mux(stream.encode(picture))
                    pending += buffer.getvalue()
                    buffer.seek(0)
                    buffer.truncate()
                    while len(pending) >= DATAGRAM:
                        self._send(sock, pending[:DATAGRAM])
                        pending = pending[DATAGRAM:]
                    index += 1
                    self._stop.wait(max(0.0, started + index / self.fps - time.monotonic()))
        except BaseException as exc:  # surfaced by the test that owns the sender
            log.exception("garbled udp sender failed")
            self.error = exc

    def _send(self, sock: socket.socket, datagram: bytes) -> None:
        sock.sendto(datagram, ("127.0.0.1", self.port))
        self.sent += 1
        if self.sent % self.every == 0:
            sock.sendto(self._junk(), ("127.0.0.1", self.port))
            self.garbage += 1

    def _junk(self) -> bytes:
        """Random bytes, a third of the time shaped as TS packets of the video stream (so the
        garbage reaches the decoder), a third as TS packets of no stream."""
        kind = self._rng.randrange(3)
        if kind == 0:
            return self._rng.randbytes(self._rng.choice([1, 188, self._rng.randrange(2, DATAGRAM)]))
        pid = VIDEO_PID if kind == 1 else self._rng.randrange(0x20, 0x1FFF)
        packets = []
        for _ in range(self._rng.randrange(1, 8)):
            # sync byte, PID, payload only, a random continuity counter; random payload
            header = bytes([0x47, (pid >> 8) & 0x1F, pid & 0xFF, 0x10 | self._rng.randrange(16)])
            packets.append(header + self._rng.randbytes(184))
        return b"".join(packets)
