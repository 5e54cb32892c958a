"""The one-frame hand-off between threads.

``latest`` mode: ``put`` never waits; a value nobody took yet is replaced and counted as dropped
(a slow stage costs frames, never seconds of lag). ``lossless`` mode (offline render): ``put``
waits until the previous value was taken, so every frame goes through.
"""

from __future__ import annotations

import threading
from typing import Generic, Literal, TypeVar

T = TypeVar("T")


class SlotClosed(Exception):
    """The slot was closed: the producer or consumer is shutting down."""


class Slot(Generic[T]):
    def __init__(self, name: str, mode: Literal["latest", "lossless"] = "latest") -> None:
        self.name = name
        self.mode = mode
        self._value: T | None = None
        self._full = False
        self._closed = False
        self._cond = threading.Condition()
        self.dropped = 0
        self.passed = 0

    def put(self, value: T) -> None:
        with self._cond:
            if self.mode == "lossless":
                while self._full and not self._closed:
                    self._cond.wait()
            if self._closed:
                raise SlotClosed(self.name)
            if self._full:
                self.dropped += 1
            self._value = value
            self._full = True
            self._cond.notify_all()

    def get(self, timeout: float | None = None) -> T | None:
        """The newest value, waiting up to ``timeout`` s; None on timeout.

        Raises :class:`SlotClosed` once closed and drained.
        """
        with self._cond:
            if not self._cond.wait_for(lambda: self._full or self._closed, timeout):
                return None
            if not self._full:
                raise SlotClosed(self.name)
            value = self._value
            self._value = None
            self._full = False
            self.passed += 1
            self._cond.notify_all()
            return value

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed
