"""Is the device thread still getting through frames? A heartbeat per frame, watched.

The device thread calls :meth:`Watchdog.begin` when it picks a frame (and :meth:`stage` as it
moves through it), :meth:`Watchdog.end` when the frame is done and :meth:`Watchdog.idle` while
it waits for one. A frame in processing for longer than ``threshold_s`` (longer for the first
few frames, which warm the models up) is a stall: reported by :meth:`Watchdog.report` at once,
logged once when a watching thread (:meth:`Watchdog.watch`) notices it and once when it ends.
Meanwhile the capture thread keeps replacing the frame waiting in the slot and counts each one
as dropped, so a stall costs frames, never lag.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

WATCHDOG_S = 1.0  # a frame in processing longer than this is a stall
CHECK_S = 0.1  # how often the watching thread looks
# The first frames through a model are slow by nature (lazy initialisation, allocator growth,
# cuDNN autotuning on a GPU: seconds): they are judged against a longer threshold.
WARMUP_FRAMES = 3
WARMUP_S = 10.0


class Watchdog:
    def __init__(
        self,
        name: str,
        threshold_s: float = WATCHDOG_S,
        *,
        warmup_frames: int = WARMUP_FRAMES,
        warmup_s: float = WARMUP_S,
    ) -> None:
        self.name = name
        self.steady_threshold_s = threshold_s
        self.warmup_frames = warmup_frames
        self.warmup_s = max(warmup_s, threshold_s)
        self.frames = 0  # frames finished
        self.stalls = 0
        self.longest_s = 0.0
        self._lock = threading.Lock()
        self._busy_since: float | None = None  # monotonic s the frame in processing was picked
        self._frame: int | None = None
        self._stage = "idle"
        self._beat = time.monotonic()  # also when the current stage began
        self._slowest = ("idle", 0.0)  # the frame's slowest stage so far, and its seconds
        self._flagged = False  # a stall was logged as started and has not ended

    @property
    def threshold_s(self) -> float:
        """The threshold in force: longer while the first frames warm the models up."""
        warming = self.frames < self.warmup_frames
        return self.warmup_s if warming else self.steady_threshold_s

    # -- from the watched thread --------------------------------------------------------------

    def begin(self, frame: int, stage: str) -> None:
        with self._lock:
            self._busy_since = self._beat = time.monotonic()
            self._frame, self._stage, self._slowest = frame, stage, (stage, 0.0)

    def stage(self, stage: str) -> None:
        with self._lock:
            self._next_stage(stage, time.monotonic())

    def _next_stage(self, stage: str, now: float) -> None:
        took = now - self._beat
        if took > self._slowest[1]:
            self._slowest = (self._stage, took)
        self._stage, self._beat = stage, now

    def end(self) -> None:
        """The frame is done (or given up): log the end of a stall it was in."""
        now = time.monotonic()
        with self._lock:
            took = 0.0 if self._busy_since is None else now - self._busy_since
            stalled = took > self.threshold_s
            self._next_stage("idle", now)
            frame, (stage, stage_s), flagged = self._frame, self._slowest, self._flagged
            if stalled and not flagged:
                self.stalls += 1  # too short for the watching thread to catch in the act
            if stalled:
                self.longest_s = max(self.longest_s, took)
            self._busy_since, self._frame, self._flagged = None, None, False
            self.frames += 1
        if stalled:
            log.warning(
                "%s: stall over: frame %s took %.2f s, %.2f s of it in stage %s",
                self.name, frame, took, stage_s, stage,
            )  # fmt: skip

    def idle(self) -> None:
        """Waiting for a frame: alive, nothing in processing."""
        with self._lock:
            if self._busy_since is None:
                self._beat = time.monotonic()

    # -- from any thread ----------------------------------------------------------------------

    def check(self) -> bool:
        """Whether a frame is stalled now; logs the start of a stall once."""
        with self._lock:
            since = self._since(time.monotonic())
            stalled = since > self.threshold_s
            starting = stalled and not self._flagged
            if starting:
                self._flagged = True
                self.stalls += 1
            frame, stage = self._frame, self._stage
        if starting:
            log.warning(
                "%s: stalled: frame %s in stage %s for %.2f s (over %.2f s); the capture thread "
                "drops frames until it moves again",
                self.name, frame, stage, since, self.threshold_s,
            )  # fmt: skip
        return stalled

    def report(self) -> dict[str, Any]:
        """``stalled``; ``since_s``: how long the frame in processing has been (0 when idle);
        ``stage`` it is in ("idle" when none); ``frame`` index; ``heartbeat_age_s``: since the
        watched thread last showed it was alive; ``stalls`` and ``longest_s`` so far."""
        now = time.monotonic()
        with self._lock:
            since = self._since(now)
            stalled = since > self.threshold_s
            return {
                "stalled": stalled,
                "since_s": round(since, 3),
                "stage": self._stage,
                "frame": self._frame,
                "threshold_s": self.threshold_s,
                "heartbeat_age_s": round(now - self._beat, 3),
                "stalls": self.stalls,
                "longest_s": round(max(self.longest_s, since if stalled else 0.0), 3),
            }

    def watch(self, stop: threading.Event, alive: Callable[[], bool]) -> None:
        """Check every :data:`CHECK_S` until ``stop`` is set or the watched thread is gone."""
        while not stop.wait(CHECK_S) and alive():
            self.check()

    def _since(self, now: float) -> float:
        return 0.0 if self._busy_since is None else now - self._busy_since
