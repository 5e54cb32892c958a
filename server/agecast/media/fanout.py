"""Fan-out of encoded pictures to viewers on the asyncio loop.

Each viewer holds at most one unsent message (its send queue, newest wins). If a new picture
arrives before the viewer took the last, the viewer is behind: its pending picture is dropped
and it skips to the next key frame. A viewer that takes nothing for :data:`STALL_S` while
pictures keep coming is dropped (closed). A slow viewer never slows the encoder or another
viewer.

Key frames are shared: one H.264 stream serves every viewer of it, so a forced IDR costs every
one of them bandwidth. The key-frame budget: a viewer that needs a key frame (joined, fell
behind, or asked) forces one only when nobody else watches that stream in sync and it has not
forced one in the last :data:`KEY_BUDGET_S`; otherwise it waits for the encoder's own next IDR
(one a second). So no viewer raises another's key-frame rate above the encoder's cadence.

Viewers whose link asks for a burnt-in label (``mark``) get a stream encoded for that label;
everyone else shares the one main encode.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

KEY_BUDGET_S = 1.0  # a viewer forces at most one IDR this often
STALL_S = 10.0  # a viewer that takes no picture for this long while they come is dropped


@dataclass(frozen=True, slots=True)
class Message:
    """One picture, ready for the wire in both forms the viewers may need."""

    index: int
    key: bool
    h264: bytes | None  # header + Annex-B access unit
    jpeg: bytes | None  # header + JPEG
    mark: str | None = None  # the label burnt into these pictures (None: the main stream)


@dataclass(eq=False)
class Viewer:
    codec: str  # "h264" | "jpeg"
    label: str = ""
    mark: str | None = None  # burn this label into what this viewer receives
    id: int = field(default_factory=itertools.count(1).__next__)
    sent: int = 0
    dropped: int = 0
    need_key: bool = True
    _pending: bytes | None = None
    _ready: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    stalled: bool = False  # dropped for taking nothing for STALL_S
    key_forced_at: float = -KEY_BUDGET_S  # monotonic time this viewer last forced an IDR
    taken_at: float = field(default_factory=time.monotonic)  # last time it took a picture

    def offer(self, message: Message) -> bool:
        """Queue ``message``; returns True if this viewer now needs a key frame."""
        payload = message.jpeg if self.codec == "jpeg" else message.h264
        if payload is None or message.mark != self.mark or self.closed:
            return False
        if self._pending is not None and time.monotonic() - self.taken_at > STALL_S:
            log.warning(
                "viewer %d (%s) took nothing for %gs: dropped", self.id, self.label, STALL_S
            )
            self.stalled = True
            self.close()
            return False
        if self.codec == "jpeg":  # every JPEG stands alone: newest wins
            if self._pending is not None:
                self.dropped += 1
            self._pending = payload
            self._ready.set()
            return False
        if self._pending is not None:  # behind: drop, wait for the next IDR
            self._pending = None
            self.dropped += 1
            self.need_key = True
        if self.need_key and not message.key:
            return True
        self.need_key = False
        self._pending = payload
        self._ready.set()
        return False

    async def next(self) -> bytes | None:
        """The next message to send (None once closed)."""
        while self._pending is None and not self.closed:
            self._ready.clear()
            await self._ready.wait()
        payload, self._pending = self._pending, None
        if payload is not None:
            self.sent += 1
        self.taken_at = time.monotonic()
        return payload

    def lose_sync(self) -> None:
        """The viewer's decoder lost its place: send nothing until the next key frame."""
        self._pending = None
        self.need_key = True

    def close(self) -> None:
        self.closed = True
        self._ready.set()


class Fanout:
    """Owned by the event loop; the encoder thread publishes through :meth:`publish_threadsafe`."""

    def __init__(self, request_key_frame: Callable[[str | None], None]) -> None:
        """``request_key_frame(mark)`` asks the encoder of that stream for an IDR."""
        self._request_key = request_key_frame
        self.viewers: set[Viewer] = set()
        self.loop: asyncio.AbstractEventLoop | None = None
        # (codec, mark) pairs being watched, replaced whole on every join/leave so the encode
        # thread can read it while the loop changes the viewer set
        self._streams: frozenset[tuple[str, str | None]] = frozenset()

    def add(self, viewer: Viewer) -> None:
        self.loop = asyncio.get_running_loop()
        self.viewers.add(viewer)
        self._streams = frozenset((v.codec, v.mark) for v in self.viewers)
        if viewer.codec == "h264":
            self.ask_key_frame(viewer)
        log.info(
            "viewer %d joined (%s %s); %d watching",
            viewer.id,
            viewer.codec,
            viewer.label,
            len(self.viewers),
        )

    def remove(self, viewer: Viewer) -> None:
        viewer.close()
        self.viewers.discard(viewer)
        self._streams = frozenset((v.codec, v.mark) for v in self.viewers)
        log.info("viewer %d left after %d sent, %d dropped", viewer.id, viewer.sent, viewer.dropped)

    def wants(self, codec: str, mark: str | None = None) -> bool:
        """Thread-safe: someone watches this codec of this stream."""
        return (codec, mark) in self._streams

    def marks(self) -> set[str | None]:
        """Thread-safe: the streams someone watches: None (main) and each burnt-in label."""
        return {mark for _, mark in self._streams}

    def publish(self, message: Message) -> None:
        for viewer in [v for v in self.viewers if v.offer(message)]:
            self._ask(viewer)

    def ask_key_frame(self, viewer: Viewer) -> None:
        """``viewer`` needs a key frame: it waits for one, forcing it only within its budget."""
        viewer.lose_sync()
        self._ask(viewer)

    def _ask(self, viewer: Viewer) -> None:
        now = time.monotonic()
        if now - viewer.key_forced_at < KEY_BUDGET_S:
            return
        in_sync = any(
            v is not viewer
            and v.codec == "h264"
            and v.mark == viewer.mark
            and not v.need_key
            and not v.closed
            for v in self.viewers
        )
        if in_sync:  # others would pay for it: wait for the encoder's own IDR
            return
        viewer.key_forced_at = now
        self._request_key(viewer.mark)

    def publish_threadsafe(self, message: Message) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.publish, message)

    def close(self) -> None:
        for viewer in list(self.viewers):
            viewer.close()
