"""A live source that outlives its feed: reconnects with backoff and never raises on a loss.

A capture thread owns the connection (it is the only thread touching the decoder) and hands
pictures to ``read`` through a one-picture slot: live, the newest picture wins and the older one
is counted as dropped; in render mode the thread waits for the consumer instead.

On set, "no signal" must show within half a second of a feed stopping, long before FFmpeg's
read timeout gives up on the connection: a live source whose last picture is older than
:func:`stall_after` reads as NO_SIGNAL at once (the stall detector), and LIVE again with the
next picture, on the same connection or a new one. Retries are spaced from the start of the
previous attempt, so an attempt that spent seconds listening (UDP) is followed by the next at
once, and capped at :data:`RECENT_BACKOFF_MAX_S` for the first minute of an outage so a feed
that returns is back within a couple of seconds.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Protocol

from agecast.errors import SourceError, SourceLost
from agecast.sources.base import Decoded, Source, SourceState

log = logging.getLogger(__name__)

BACKOFF_START_S = 0.25
BACKOFF_MAX_S = 2.0
# For the first RECENT_OUTAGE_S of an outage retries come at least this often: a camera or
# encoder rebooting on set comes back within seconds and should be on screen at once.
RECENT_BACKOFF_MAX_S = 0.5
RECENT_OUTAGE_S = 60.0
# A live feed with no picture for this long (or 2.5 frame periods, if longer) reads NO_SIGNAL.
STALL_S = 0.35
# How often a consumer waiting in read() wakes to notice a stall (and log it).
WAKE_S = 0.1
# How long close() waits for the capture thread; a thread stuck in a network call leaves on its
# own once FFmpeg's timeout fires (it is a daemon and closes its own connection).
JOIN_WAIT_S = 0.2


class FrameReader(Protocol):
    """One connection to a feed (see :class:`agecast.sources.av_source.AVReader`)."""

    fps: float

    def next(self) -> Decoded | None:
        """The next picture; None at the end of the stream; raises SourceLost when cut off."""

    def close(self) -> None: ...


Connect = Callable[[], FrameReader]


class _Slot:
    """One-picture hand-off between the capture thread and the consumer."""

    def __init__(self, *, drop_oldest: bool) -> None:
        self._cond = threading.Condition()
        self._item: Decoded | None = None
        self._finished = False
        self._drop_oldest = drop_oldest
        self.dropped = 0

    def put(self, item: Decoded, closing: threading.Event) -> None:
        with self._cond:
            if self._drop_oldest:
                if self._item is not None:
                    self.dropped += 1
            else:
                while self._item is not None and not closing.is_set():
                    self._cond.wait(0.1)
            self._item = item
            self._cond.notify_all()

    def take(
        self, closing: threading.Event, idle: Callable[[], None] | None = None
    ) -> Decoded | None:
        """The waiting picture; blocks until one comes, the feed finishes, or ``closing``.

        ``idle`` is called (outside the lock) each time :data:`WAKE_S` passes with nothing."""
        while True:
            with self._cond:
                if self._item is None and not self._finished and not closing.is_set():
                    self._cond.wait(WAKE_S)
                if closing.is_set():
                    return None
                if self._item is not None or self._finished:
                    item, self._item = self._item, None
                    self._cond.notify_all()
                    return item
            if idle is not None:
                idle()

    @property
    def finished(self) -> bool:
        return self._finished

    def finish(self) -> None:
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()


def stall_after(fps: float) -> float:
    """Seconds without a picture after which a live feed at ``fps`` reads NO_SIGNAL."""
    return max(STALL_S, 2.5 / fps) if fps > 0 else STALL_S


def retry_cap(outage_s: float | None) -> float:
    """The longest wait between attempts ``outage_s`` into an outage (None: not in one)."""
    if outage_s is None or outage_s < RECENT_OUTAGE_S:
        return min(BACKOFF_MAX_S, RECENT_BACKOFF_MAX_S)
    return BACKOFF_MAX_S


class ReconnectingSource(Source):
    """A network stream or camera that may drop out and come back.

    ``connect`` opens one connection (raising :class:`SourceError` when it cannot); ``preflight``
    checks what no retry can fix (a camera device that does not exist) and raises from
    :meth:`open`. With ``strict_open`` a failing first connection raises too; otherwise it is an
    outage like any other. While the feed is down ``state`` is NO_SIGNAL and ``read`` waits; a
    live feed is also NO_SIGNAL while its connection is up but no picture came for
    :func:`stall_after` seconds.
    """

    def __init__(
        self,
        uri: str,
        connect: Connect,
        *,
        label: str,
        live: bool,
        open_timeout_s: float,
        preflight: Callable[[], None] | None = None,
        strict_open: bool = False,
    ) -> None:
        self._state = SourceState.CONNECTING
        self._last_picture: float | None = None  # monotonic s of the newest decoded picture
        super().__init__(uri, live=live, paced=False)
        self._connect = connect
        self._label = label
        self._preflight = preflight
        self._strict_open = strict_open
        self._open_timeout_s = open_timeout_s
        self._first_attempt = threading.Event()
        # Rendering a stream ends with it; a live feed that ends is an outage.
        self._end_at_eof = not live
        self._slot = _Slot(drop_oldest=live)
        self._thread: threading.Thread | None = None
        self._outage_since: float | None = None
        self._note_lock = threading.Lock()

    @property
    def state(self) -> SourceState:
        """LIVE only while pictures keep coming: a stalled live feed reads NO_SIGNAL at once."""
        state = self._state
        if state is SourceState.LIVE and self.stalled_s() is not None:
            return SourceState.NO_SIGNAL
        return state

    @state.setter
    def state(self, value: SourceState) -> None:
        self._state = value

    def stalled_s(self) -> float | None:
        """Seconds since the last picture when that is past :func:`stall_after`; else None."""
        last = self._last_picture
        if not self.live or last is None or self._closing.is_set():
            return None
        age = time.monotonic() - last
        return age if age > stall_after(self.fps) else None

    @property
    def dropped(self) -> int:
        """Pictures replaced in the slot before the consumer took them (live only)."""
        return self._slot.dropped

    def _open_impl(self) -> None:
        if self._preflight is not None:
            self._preflight()
        reader: FrameReader | None = None
        if self._strict_open:
            reader = self._connect()
            self.fps = reader.fps
            self._first_attempt.set()
        self._thread = threading.Thread(
            target=self._run, args=(reader,), name=f"capture {self._label}", daemon=True
        )
        self._thread.start()
        # Wait for the first attempt, so fps is known when the feed is there; a feed that is
        # not there yet keeps the capture thread trying while open() returns.
        self._first_attempt.wait(self._open_timeout_s)

    def _grab(self) -> Decoded | None:
        return self._slot.take(self._closing, idle=self._check_stall)

    def _interrupt(self) -> None:
        self._slot.wake()

    def _release(self) -> None:
        pass  # the capture thread closes its own connection when it sees the close

    def close(self) -> None:
        super().close()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(JOIN_WAIT_S)
            if thread.is_alive():
                log.debug("%s: capture thread still in a network call; it exits on its own", self)

    # -- capture thread -----------------------------------------------------------------------

    def _run(self, reader: FrameReader | None) -> None:
        delay = BACKOFF_START_S
        while not self._closing.is_set():
            attempt_at = time.monotonic()
            if reader is None:
                reader = self._try_connect()
            if reader is not None:
                delivered = self._serve(reader)
                reader = None
                if delivered:
                    delay = BACKOFF_START_S
                if self._slot_finished():
                    return
            # Spaced from the attempt's start: one that listened for seconds waits no more.
            if self._closing.wait(max(0.0, delay - (time.monotonic() - attempt_at))):
                break
            delay = min(delay * 2.0, retry_cap(self._outage_age()))
        self._slot.finish()

    def _try_connect(self) -> FrameReader | None:
        try:
            reader = self._connect()
        except SourceError as exc:
            self._note_outage(exc)
            return None
        except Exception as exc:  # never let a surprise kill the capture thread
            log.exception("%s: unexpected error while connecting", self._label)
            self._note_outage(exc)
            return None
        finally:
            self._first_attempt.set()
        self.fps = reader.fps
        return reader

    def _serve(self, reader: FrameReader) -> int:
        """Pump pictures from one connection into the slot; how many were delivered."""
        delivered = 0
        # (monotonic s, pts s) of the last picture delivered
        previous: tuple[float, float | None] | None = None
        try:
            while not self._closing.is_set():
                decoded = reader.next()
                if decoded is None:
                    if self._end_at_eof:
                        self._slot.finish()
                    else:
                        self._note_outage(SourceLost(f"{self._label} ended its stream"))
                    break
                now = time.monotonic()
                if self.live and self._stale(previous, now, decoded.pts_s):
                    continue
                previous = (now, decoded.pts_s)
                self._last_picture = now
                if delivered == 0 or self._outage_since is not None:
                    self._note_signal()
                delivered += 1
                self._slot.put(decoded, self._closing)
        except SourceError as exc:
            self._note_outage(exc)
        except Exception as exc:
            log.exception("%s: unexpected error while reading", self._label)
            self._note_outage(exc)
        finally:
            try:
                reader.close()
            except Exception:
                log.debug("%s: closing the connection failed", self._label, exc_info=True)
        return delivered

    def _stale(
        self, previous: tuple[float, float | None] | None, now: float, pts: float | None
    ) -> bool:
        """Whether a picture is one of the feed's last, flushed out late as the connection dies.

        MPEG-TS ends a picture only when the next one starts, so when a sender stops, its last
        pictures come out of the demuxer with FFmpeg's read timeout, seconds late: a picture
        that follows the last one delivered closely in stream time but not in arrival time is
        one of those, not the feed coming back (which jumps in stream time, or restarts it)."""
        if previous is None or pts is None or previous[1] is None:
            return False
        limit = stall_after(self.fps)
        pts_gap, wall_gap = pts - previous[1], now - previous[0]
        if 0.0 <= pts_gap < limit and wall_gap - pts_gap > limit:
            log.debug("%s: dropped a picture %.1f s late (stream ending)", self._label, wall_gap)
            return True
        return False

    def _slot_finished(self) -> bool:
        return self._end_at_eof and self._slot.finished

    # -- outages ------------------------------------------------------------------------------

    def _check_stall(self) -> None:
        """From a waiting reader: log a stalled feed as an outage (``state`` already says so)."""
        stalled = self.stalled_s()
        if stalled is not None and self._outage_since is None:
            self._begin_outage(SourceLost(f"no picture for {stalled:.1f} s"), stalled)

    def _outage_age(self) -> float | None:
        since = self._outage_since
        return None if since is None else time.monotonic() - since

    def _note_outage(self, exc: BaseException) -> None:
        """NO_SIGNAL, with one log line per outage."""
        if self._closing.is_set():
            return
        self.state = SourceState.NO_SIGNAL
        self._begin_outage(exc, 0.0)

    def _begin_outage(self, exc: BaseException, ago_s: float) -> None:
        with self._note_lock:
            if self._outage_since is not None or self._closing.is_set():
                return
            self._outage_since = time.monotonic() - ago_s
        log.warning(
            "%s: no signal (%s); retrying every %s–%s s until it returns",
            self._label,
            exc,
            BACKOFF_START_S,
            retry_cap(0.0),
        )

    def _note_signal(self) -> None:
        with self._note_lock:
            since, self._outage_since = self._outage_since, None
            self.state = SourceState.LIVE
        if since is not None:
            log.info("%s: signal back after %.1f s", self._label, time.monotonic() - since)
