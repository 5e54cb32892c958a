"""The one source interface: open, read frames, close.

Every source decodes or draws pictures in :meth:`Source._grab`; the base class does the rest once
for all of them: numbering delivered frames, pacing file-like sources at their native rate when
live, stamping the delivery time, and a ``close()`` that may come from another thread.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import StrEnum
from types import TracebackType
from typing import Self

import torch

from agecast.errors import SourceError
from agecast.frames import Frame, stamp_now

log = logging.getLogger(__name__)

DEFAULT_FPS = 30.0
# A paced source whose consumer is up to this late delivers the frames it owes at once.
CATCH_UP_S = 0.2
# A close() waits this long for a read in progress to finish before leaving the clean-up to it.
CLOSE_WAIT_S = 0.5


class SourceState(StrEnum):
    CONNECTING = "connecting"
    LIVE = "live"
    NO_SIGNAL = "no signal"
    ENDED = "ended"


@dataclass(frozen=True, slots=True)
class Decoded:
    """A picture from a source before it is numbered and stamped: HWC uint8 RGB, CPU."""

    image: torch.Tensor
    pts_s: float | None = None
    yuv: object | None = None  # the decoded picture ``image`` was converted from, if any


def sane_fps(value: float | None) -> float:
    """The nominal rate to use: ``value`` when plausible, else :data:`DEFAULT_FPS`."""
    if value is None or not 0.5 <= value <= 1000.0:
        return DEFAULT_FPS
    return float(value)


class Source(ABC):
    """A stream of frames from a URI.

    ``state`` and ``fps`` may be read from any thread. ``read`` is for one consumer thread;
    ``close`` may be called from any thread and makes a blocked ``read`` return None soon.
    """

    def __init__(self, uri: str, *, live: bool, paced: bool, fps: float = DEFAULT_FPS) -> None:
        self.uri = uri
        self.live = live
        self.state = SourceState.CONNECTING
        self.fps = fps
        self._paced = paced
        self._closing = threading.Event()
        self._io_lock = threading.Lock()
        self._opened = False
        self._released = False
        self._index = 0
        self._due: float | None = None

    # -- what a source implements -------------------------------------------------------------

    @abstractmethod
    def _open_impl(self) -> None:
        """Acquire what the source needs; raise :class:`SourceError` with a clear message."""

    @abstractmethod
    def _grab(self) -> Decoded | None:
        """Block for the next picture; None at the end or once ``self._closing`` is set."""

    @abstractmethod
    def _release(self) -> None:
        """Free what ``_open_impl`` acquired. Called once, never during ``_grab``."""

    def _interrupt(self) -> None:  # noqa: B027 - only sources that block on a wait need it
        """Wake a ``_grab`` blocked in a wait (called by ``close`` from any thread)."""

    # -- the interface ------------------------------------------------------------------------

    def open(self) -> None:
        """Open the source; raises :class:`SourceError` saying what is wrong and what to do."""
        if self._closing.is_set():
            raise SourceError(f"source {self.uri} was closed: build a new one with open_source()")
        if self._opened:
            return
        self._open_impl()
        self._opened = True

    def read(self) -> Frame | None:
        """The next frame; None at the end of the stream or after :meth:`close`."""
        if not self._opened:
            raise SourceError(f"source {self.uri} is not open: call open() (or use `with`) first")
        if self._closing.is_set():
            return None
        with self._io_lock:
            decoded = self._grab()
            if self._closing.is_set():
                self._release_once()
                return None
        if decoded is None:
            self.state = SourceState.ENDED
            return None
        if self._paced and not self._wait_until_due():
            return None
        capture_ns, wall_ns = stamp_now()
        frame = Frame(self._index, decoded.image, capture_ns, wall_ns, decoded.pts_s, decoded.yuv)
        self._index += 1
        return frame

    def close(self) -> None:
        """Stop the source; safe from any thread and more than once."""
        self._closing.set()
        self.state = SourceState.ENDED
        self._interrupt()
        if self._io_lock.acquire(timeout=CLOSE_WAIT_S):
            try:
                self._release_once()
            finally:
                self._io_lock.release()
        # else a read is still in _grab: it releases on its way out.

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.uri!r}, state={self.state.value!r}, fps={self.fps:g})"

    # -- shared machinery ---------------------------------------------------------------------

    def _release_once(self) -> None:
        if self._released or not self._opened:
            return
        self._released = True
        try:
            self._release()
        except Exception:  # a failing clean-up must not hide the close
            log.exception("closing source %s failed", self.uri)

    def _wait_until_due(self) -> bool:
        """Sleep to a monotonic schedule at ``fps``; False when closed while waiting.

        A consumer up to :data:`CATCH_UP_S` late gets the frames it is owed at once, as from a
        camera's driver queue (a busy box must not shorten a take's clock); later than that the
        schedule re-anchors instead of bursting many frames to catch up.
        """
        period = 1.0 / self.fps
        now = time.monotonic()
        due = self._due
        if due is None or now - due > max(period, CATCH_UP_S):
            due = now
        elif due > now and self._closing.wait(due - now):
            return False
        self._due = due + period
        return not self._closing.is_set()
