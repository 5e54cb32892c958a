"""Fan-out of encoded pictures to viewers on the asyncio loop.

Each viewer holds at most one unsent message. If a new picture arrives before the viewer took
the last, the viewer is behind: its pending picture is dropped and it skips to the next key
frame (an IDR is requested). A slow viewer never slows the encoder or another viewer.

Viewers whose link asks for a burnt-in label (``mark``) get a stream encoded for that label;
everyone else shares the one main encode.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


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

    def offer(self, message: Message) -> bool:
        """Queue ``message``; returns True if this viewer now needs a key frame."""
        payload = message.jpeg if self.codec == "jpeg" else message.h264
        if payload is None or message.mark != self.mark:
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
        return payload

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
            self._request_key(viewer.mark)
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
        if any([v.offer(message) for v in self.viewers]):
            self._request_key(message.mark)

    def publish_threadsafe(self, message: Message) -> None:
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.publish, message)

    def close(self) -> None:
        for viewer in list(self.viewers):
            viewer.close()
