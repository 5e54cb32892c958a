"""Sources decoded by PyAV: opening containers, decoding pictures, and the file source."""

from __future__ import annotations

import logging
import os
from collections import deque
from collections.abc import Iterator
from pathlib import Path

import av
import av.error
import torch
from av.container import InputContainer
from av.packet import Packet
from av.video.frame import VideoFrame

from agecast.errors import SourceError, SourceLost
from agecast.media.avframe import rgb_array
from agecast.redact import hide_in
from agecast.sources.base import Decoded, Source, SourceState, sane_fps

log = logging.getLogger(__name__)


def to_rgb_tensor(frame: VideoFrame) -> torch.Tensor:
    """HWC uint8 RGB tensor sharing the converted picture's memory (copied only if padded)."""
    return torch.from_numpy(rgb_array(frame))


class AVReader:
    """Decodes the first video stream of an open container, one picture at a time.

    A packet the decoder rejects is logged and skipped. A demuxer failure (lost network, read
    timeout, truncated file) raises :class:`SourceLost`; the caller decides whether that ends
    the stream or starts a reconnect.
    """

    def __init__(self, container: InputContainer, label: str) -> None:
        if not container.streams.video:
            container.close()
            raise SourceError(f"{label} has no video stream: give a video file or stream")
        self._container = container
        self._label = label
        self._stream = container.streams.video[0]
        # Slice threading only. Frame threading holds frames back (a live feed wants them now),
        # and on a file with a corrupt stretch closing the container could hang in FFmpeg's
        # frame-thread teardown (seen in tests/faults/test_corrupt_stream.py, about 1 run in 6).
        self._stream.codec_context.thread_type = "SLICE"
        rate = self._stream.average_rate or self._stream.guessed_rate
        self.fps = sane_fps(float(rate) if rate else None)
        self.bad_packets = 0
        self._packets: Iterator[Packet] = container.demux(self._stream)
        self._pending: deque[VideoFrame] = deque()
        self._at_end = False

    def next(self) -> Decoded | None:
        """The next picture, or None at the end of the stream."""
        while not self._pending:
            if self._at_end:
                return None
            self._decode_one_packet()
        frame = self._pending.popleft()
        return Decoded(to_rgb_tensor(frame), frame.time, frame)

    def close(self) -> None:
        self._container.close()

    def _decode_one_packet(self) -> None:
        try:
            packet = next(self._packets)
        except StopIteration:
            self._at_end = True
            return
        except av.error.FFmpegError as exc:
            self._at_end = True
            if isinstance(exc, av.error.ExitError):  # FFmpeg's read timeout fired
                raise SourceLost(f"{self._label}: no data within the read timeout") from exc
            raise SourceLost(f"{self._label} stopped delivering data: {exc}") from exc
        try:
            self._pending.extend(packet.decode())
        except av.error.FFmpegError as exc:
            self.bad_packets += 1
            if self.bad_packets == 1 or self.bad_packets % 100 == 0:
                log.warning(
                    "%s: skipped %s undecodable packet(s), latest at pts %s: %s",
                    self._label,
                    self.bad_packets,
                    packet.pts,
                    exc,
                )


def open_container(
    target: str,
    *,
    label: str,
    hint: str,
    fmt: str | None = None,
    options: dict[str, str] | None = None,
    timeout: tuple[float, float] | None = None,
) -> InputContainer:
    """``av.open`` for reading, with every failure turned into a :class:`SourceError`.

    ``label`` names the thing in messages ("video file /x.mp4"); ``hint`` says what to do.
    """
    try:
        return av.open(target, mode="r", format=fmt, options=options or {}, timeout=timeout)
    except av.error.InvalidDataError as exc:
        why = hide_in(str(exc), target)  # FFmpeg names the address, password and all
        raise SourceError(f"{label} is not a video FFmpeg can read ({why}): {hint}") from None
    except (av.error.FFmpegError, OSError) as exc:
        why = hide_in(str(exc), target)
        raise SourceError(f"cannot open {label} ({why}): {hint}") from None


class FileSource(Source):
    """A video file, paced at its frame rate when live, restarted at its end when looping."""

    def __init__(self, uri: str, path: Path | None, *, live: bool, loop: bool) -> None:
        super().__init__(uri, live=live, paced=live)
        self.loop = loop
        self._path = path
        self._reader: AVReader | None = None
        self._delivered_this_pass = 0

    @property
    def path(self) -> Path:
        if self._path is None:
            self._path = self._resolve_path()
        return self._path

    def _resolve_path(self) -> Path:
        raise SourceError(f"source {self.uri} names no file")

    def _open_impl(self) -> None:
        self._reader = self._open_reader()
        self.fps = self._reader.fps
        self.state = SourceState.LIVE

    def _open_reader(self) -> AVReader:
        path = self.path
        label = f"video file {path}"
        if not path.exists():
            raise SourceError(
                f"{label} not found: check the path (relative paths start at {Path.cwd()})"
            )
        if path.is_dir():
            raise SourceError(f"{path} is a folder, not a video file: name a file inside it")
        if not os.access(path, os.R_OK):
            raise SourceError(f"cannot read {label}: permission denied; check its permissions")
        container = open_container(
            str(path), label=label, hint="check the file is a complete video (mp4, mov, mkv, ts…)"
        )
        return AVReader(container, label)

    def _grab(self) -> Decoded | None:
        while self._reader is not None and not self._closing.is_set():
            try:
                decoded = self._reader.next()
            except SourceLost as exc:
                log.warning("%s; ending it here", exc)
                decoded = None
            if decoded is not None:
                self._delivered_this_pass += 1
                return decoded
            if not self._restart():
                return None
        return None

    def _restart(self) -> bool:
        """Reopen at the start when looping; False when the stream ends instead."""
        if not self.loop or self._delivered_this_pass == 0 or self._reader is None:
            return False
        self._reader.close()
        self._reader = None
        self._delivered_this_pass = 0
        try:
            self._reader = self._open_reader()
        except SourceError as exc:
            log.warning("cannot loop %s: %s", self.uri, exc)
            return False
        return True

    def _release(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
