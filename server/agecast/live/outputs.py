"""What video village takes from a camera besides the monitor page: the NDI sources
(:mod:`agecast.live.ndi_out`) and the program stream for hardware decoders
(:mod:`agecast.live.program_out`).

Each is fed from the encode side, after the live path is done with a picture: ``offer`` only
swaps a reference into a one-picture slot (a picture still waiting there is replaced and
counted in ``dropped``), and a thread of the output's own converts and sends. So a slow
receiver, network or conversion drops that output's pictures, never the live path's.
"""

from __future__ import annotations

import logging
import threading
import time
from abc import ABC, abstractmethod
from collections import deque

import torch

from agecast.pipeline.runner import Output

log = logging.getLogger(__name__)


def picture_of(output: Output, kind: str) -> torch.Tensor:
    """The HWC uint8 picture ``kind`` (aged, raw or side-by-side) of ``output``."""
    if kind == "aged":
        return output.aged
    if kind == "raw":
        return output.raw
    if output.layout == "side-by-side":
        return output.picture
    return torch.cat([output.raw, output.aged], dim=1)


class OutputFeed(ABC):
    """A one-picture slot and the thread that sends what lands in it (module docstring)."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.dropped = 0
        self._sent_at: deque[float] = deque()  # when pictures went out in the last second
        self._cond = threading.Condition()
        self._waiting: Output | None = None
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=label, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def offer(self, output: Output) -> None:
        """Hand ``output`` over; never waits (an unsent one still waiting is dropped)."""
        with self._cond:
            if self._waiting is not None:
                self.dropped += 1
            self._waiting = output
            self._cond.notify()

    @abstractmethod
    def send(self, output: Output) -> bool:
        """Send one picture (on the feed's own thread); False when it was not sent (an NDI
        output nobody receives)."""

    def fps(self) -> float:
        """Pictures sent in the last second."""
        self._trim(time.monotonic())
        return float(len(self._sent_at))

    def _count_sent(self) -> None:
        now = time.monotonic()
        self._sent_at.append(now)
        self._trim(now)

    def _trim(self, now: float) -> None:
        while self._sent_at and self._sent_at[0] < now - 1.0:
            self._sent_at.popleft()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._waiting is None and not self._closing:
                    self._cond.wait()
                output, self._waiting = self._waiting, None
                if self._closing or output is None:
                    return
            try:
                if self.send(output):
                    self._count_sent()
            except Exception:  # a failing output must not end the others or the monitor
                log.exception("%s: frame %d failed", self.label, output.index)

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout=2)
        self.release()

    @abstractmethod
    def release(self) -> None:
        """Free what the feed holds (after its thread has stopped)."""
