"""The server-side review player: two pictures of a take in step, by frame index, on the wire.

A review compares two pictures of one take — raw and an aged version (``raw`` | ``v1``) by
default, or two versions (``v1`` | ``v2``). Each file is decoded by *frame index* (frame i is the
i-th picture in presentation order, the same i in every file of the take), the pair is laid out
with the live path's :func:`~agecast.compose.layout.layout_canvas` (A where raw goes, B where
aged goes) and encoded by a review's own :class:`~agecast.media.encoder.H264Encoder` (or JPEG)
into the same messages as ``/ws/monitor`` — so the browser shows it with the live views, and the
live encoder and its viewers never see a review.

pacing thread: transport state → decode A, B → layout → encode → ``publish(message)``
"""

from __future__ import annotations

import bisect
import json
import logging
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import av
import numpy as np
import torch
from PIL import Image

from agecast.compose.layout import layout_canvas
from agecast.compose.marks import Marker
from agecast.errors import TakeError
from agecast.frames import FxState
from agecast.media.encoder import H264Encoder, encode_jpeg
from agecast.media.fanout import Message
from agecast.media.protocol import Flags, LayoutCode, PictureHeader
from agecast.takes.recorder import tc_frames, timecode
from agecast.takes.store import Take

log = logging.getLogger(__name__)

MIN_SPEED, MAX_SPEED = 0.25, 2.0
CACHE_BYTES = 64 * 1024 * 1024  # decoded YUV frames kept per file (frame-step back, loops)
THUMBNAIL = "thumbnail.jpg"  # beside take.json, remade when its picture file is newer
THUMBNAIL_WIDTH = 320
MAX_LATE_S = 0.25  # further behind than this while playing: restart the clock (play slower)

Codec = Literal["h264", "jpeg"]


def thumbnail(take: Take, width: int = THUMBNAIL_WIDTH) -> Path:
    """A JPEG of the take's middle frame — aged v1, or raw when there is no v1 — cached in the
    take's folder."""
    sources = []
    for name in ("v1", "raw"):
        try:
            sources.append(take.picture(name))
        except TakeError:
            continue
    if not sources:
        raise TakeError(f"take {take.id} has no pictures yet")
    source = sources[0]
    out = take.path / THUMBNAIL
    if out.is_file() and out.stat().st_mtime_ns >= source.stat().st_mtime_ns:
        return out
    reader = FrameReader(source, cache_bytes=0)
    try:
        image = Image.fromarray(reader.get(len(reader) // 2))
    finally:
        reader.close()
    image.thumbnail((width, width))
    tmp = out.with_name(f".{THUMBNAIL}.{os.getpid()}.{threading.get_ident()}.tmp")
    image.save(tmp, format="JPEG", quality=80)
    os.replace(tmp, out)  # concurrent requests: each writes its own, one wins whole
    return out


def timecode_at(start: str, fps: float, index: int) -> str:
    """Non-drop timecode ``HH:MM:SS:FF`` of frame ``index`` counted from ``start``."""
    try:
        first = tc_frames(start, fps)
    except ValueError:
        first = 0
    return timecode(first + index, fps)


def recorded_timecodes(take: Take) -> dict[int, str]:
    """Each frame's timecode as recorded (the v1 sidecar): the source's, or the wall clock's,
    which skips where the live picture dropped frames. Empty when there is no sidecar."""
    try:
        records = take.read_sidecar("v1")
    except (OSError, TakeError):
        return {}
    return {
        r["i"]: r["tc"]
        for r in records
        if r.get("type") == "frame" and isinstance(r.get("i"), int) and isinstance(r.get("tc"), str)
    }


LOOK_KEYS = ("age", "age_offsets", "blend", "color_transfer", "mask_feather")


def version_look(take: Take, version: str) -> dict[str, Any]:
    """Identity and look a version was made with (its sidecar's start record), for the panel."""
    try:
        with take.sidecar_path(version).open() as fh:
            start = json.loads(fh.readline() or "{}")
    except (OSError, ValueError, TakeError):
        return {}
    if not isinstance(start, dict) or start.get("type") != "start":
        return {}
    settings, identity = start.get("settings"), start.get("identity")
    settings = settings if isinstance(settings, dict) else {}
    identity = identity if isinstance(identity, dict) else {}
    return {"identity": identity.get("id"), **{k: settings[k] for k in LOOK_KEYS if k in settings}}


class FrameReader:
    """Decodes one video file by frame index: seek to the key frame at or before the frame and
    decode forward; sequential reads continue the decoder; recent frames are cached as decoded
    (YUV, no conversion: a seek decodes a whole GOP, and most of it is never shown).

    The packet index is read once on open (demux only, no decode). Seeking goes by the key
    frame's *decode* timestamp, since that is what the demuxer's index holds — with B-frames
    a seek by presentation time can land after the frame wanted.
    """

    def __init__(self, path: Path, *, cache_bytes: int = CACHE_BYTES) -> None:
        self.path = path
        try:
            self._container = av.open(str(path))
        except (OSError, av.FFmpegError) as exc:
            raise TakeError(f"cannot open {path}: {exc}") from exc
        if not self._container.streams.video:
            self._container.close()
            raise TakeError(f"{path} has no video stream")
        self._stream = self._container.streams.video[0]
        pts: list[int] = []
        keys: list[tuple[int, int]] = []  # (pts, dts) of key frames
        try:
            for packet in self._container.demux(self._stream):
                stamp = packet.pts if packet.pts is not None else packet.dts
                if stamp is None:
                    continue
                pts.append(stamp)
                if packet.is_keyframe:
                    keys.append((stamp, packet.dts if packet.dts is not None else stamp))
        except av.FFmpegError as exc:  # a torn tail (crash mid-take): keep what was read
            log.warning("%s: stopped indexing after %d frame(s): %s", path, len(pts), exc)
        pts.sort()
        keys.sort()
        self._pts = pts
        self._index_of = {p: i for i, p in enumerate(pts)}
        self._key_indices = [self._index_of[p] for p, _ in keys]
        self._key_dts = [d for _, d in keys]
        self.width = int(self._stream.codec_context.width)
        self.height = int(self._stream.codec_context.height)
        frame_bytes = max(1, self.width * self.height * 3 // 2)  # yuv420p
        self._cache_size = max(4, min(240, cache_bytes // frame_bytes))
        self._cache: OrderedDict[int, av.VideoFrame] = OrderedDict()
        self._frames: Iterator[av.VideoFrame] | None = None
        self._next = -1  # the index the decoder outputs next, -1: nothing open
        self.decoded = 0  # pictures decoded (for tests and logs)
        self.seeks = 0
        if not pts or not keys:
            self.close()
            raise TakeError(f"{path} holds no decodable pictures")

    def __len__(self) -> int:
        return len(self._pts)

    def _key_before(self, index: int) -> int:
        """Position in the key-frame lists of the last key frame at or before ``index``."""
        return max(0, bisect.bisect_right(self._key_indices, index) - 1)

    def get(self, index: int) -> np.ndarray:
        """Frame ``index`` as HWC uint8 RGB."""
        return self.frame(index).to_ndarray(format="rgb24")

    def frame(self, index: int) -> av.VideoFrame:
        """Frame ``index`` as decoded."""
        if not 0 <= index < len(self._pts):
            raise TakeError(f"{self.path}: no frame {index} (it has {len(self._pts)})")
        found = self._cache.get(index)
        if found is not None:
            self._cache.move_to_end(index)
            return found
        key = self._key_before(index)
        # Decode on from where the decoder is when no key frame lies between it and the frame.
        if not (0 <= self._next <= index and self._key_indices[key] <= self._next):
            self._seek(key)
        try:
            return self._decode_to(index)
        except TakeError:
            if key == 0:
                raise
            log.warning("%s: seeking to frame %d missed; decoding from the start", self.path, index)
            self._seek(0)
            return self._decode_to(index)

    def _seek(self, key: int) -> None:
        self._container.seek(self._key_dts[key], stream=self._stream, backward=True)
        self._frames = self._container.decode(self._stream)
        self._next = self._key_indices[key]
        self.seeks += 1

    def _decode_to(self, index: int) -> av.VideoFrame:
        assert self._frames is not None
        keep_from = index - self._cache_size + 1
        for frame in self._frames:
            stamp = frame.pts
            at = self._index_of.get(stamp) if stamp is not None else None
            self.decoded += 1
            if at is None:
                continue
            self._next = at + 1
            if at >= keep_from:
                self._put(at, frame)
            if at >= index:
                break
        found = self._cache.get(index)
        if found is None:
            self._next = -1  # the decoder ran past or out: the next read seeks again
            raise TakeError(f"{self.path}: frame {index} did not decode")
        return found

    def _put(self, index: int, frame: av.VideoFrame) -> None:
        self._cache[index] = frame
        self._cache.move_to_end(index)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def close(self) -> None:
        self._frames = None
        self._container.close()


@dataclass(frozen=True, slots=True)
class Position:
    """Where a review stands: what the transport bar shows."""

    frame: int
    frames: int
    timecode: str
    playing: bool
    speed: float
    loop_in: int | None
    loop_out: int | None
    a: str
    b: str

    def to_json(self) -> dict[str, Any]:
        return {
            "type": "position",
            "frame": self.frame,
            "frames": self.frames,
            "timecode": self.timecode,
            "playing": self.playing,
            "speed": self.speed,
            "in": self.loop_in,
            "out": self.loop_out,
            "a": self.a,
            "b": self.b,
        }


class ReviewPlayer:
    """Plays pictures ``a`` | ``b`` of ``take`` side by side to ``publish`` (called on the
    pacing thread with each encoded :class:`Message`). Transport methods are thread-safe."""

    def __init__(
        self,
        take: Take,
        a: str = "raw",
        b: str = "v1",
        *,
        codec: Codec = "h264",
        mark: str | None = None,
        publish: Callable[[Message], None],
        cache_bytes: int = CACHE_BYTES,
    ) -> None:
        self.take = take
        info = take.info
        self.fps = info.fps if info.fps > 0 else 30.0
        self.timecode_start = info.timecode_start
        self._timecodes = recorded_timecodes(take)
        self._created_ns = _iso_ns(info.created)
        self.codec = codec
        self.mark = mark
        self._publish = publish
        self._cache_bytes = cache_bytes
        self.encoder = H264Encoder(self.fps)
        self._marker = Marker()
        self._cond = threading.Condition()  # transport state
        self._decode_lock = threading.Lock()  # the readers, while a frame is made or they change
        self._readers: dict[str, FrameReader] = {}
        self.a, self.b = a, b
        self._open_pair(a, b)
        self.frame = 0
        self.playing = False
        self.speed = 1.0
        self.loop_in: int | None = None
        self.loop_out: int | None = None
        self.sent = 0
        self.skipped = 0  # frames decoded but not sent, to keep the speed when behind
        self._dirty = True  # show self.frame now (a seek, step, pair change or key request)
        self._closed = False
        self._t0 = 0.0  # the pacing clock: frame self._f0 + n is due at _t0 + n / (fps·speed)
        self._ticks = 0
        self._thread: threading.Thread | None = None

    # pictures --------------------------------------------------------------------------------
    def _open_pair(self, a: str, b: str) -> None:
        paths = {name: self.take.picture(name) for name in (a, b)}
        opened: dict[str, FrameReader] = {}
        try:
            for name, path in paths.items():
                reader = self._readers.get(name)
                opened[name] = reader or FrameReader(path, cache_bytes=self._cache_bytes)
        except TakeError:
            for name, reader in opened.items():
                if name not in self._readers:
                    reader.close()
            raise
        for name, reader in self._readers.items():
            if name not in opened:
                reader.close()
        self._readers = opened
        self.a, self.b = a, b

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the pictures sent: A and B side by side."""
        reader = self._readers[self.a]
        return 2 * reader.width, reader.height

    @property
    def frames(self) -> int:
        """Frames playable: both pictures have them (a crashed take may be short in one)."""
        return min(len(r) for r in self._readers.values())

    def compare(self, a: str, b: str) -> None:
        """Show pictures ``a`` | ``b`` from now on, at the same frame."""
        with self._decode_lock:
            self._open_pair(a, b)
        with self._cond:
            self.frame = min(self.frame, self.frames - 1)
            self._clip_loop()
            self._show_now()

    # transport (any thread) ------------------------------------------------------------------
    def play(self) -> None:
        with self._cond:
            if not self.playing:
                if self.loop_out is None and self.frame >= self.frames - 1:
                    self.frame = 0  # at the end: play from the start
                    self._dirty = True
                self.playing = True
                self._restart_clock()
                self._cond.notify_all()

    def pause(self) -> None:
        with self._cond:
            self.playing = False
            self._cond.notify_all()

    def seek(self, frame: int) -> None:
        with self._cond:
            self.frame = self._clamp(frame)
            self._show_now()

    def step(self, by: int) -> None:
        """Pause and move ``by`` frames (within the loop range while one is set)."""
        with self._cond:
            self.playing = False
            first, last = self._range()
            self.frame = max(first, min(last, self.frame + by))
            self._show_now()

    def set_speed(self, speed: float) -> None:
        if not MIN_SPEED <= speed <= MAX_SPEED:
            raise TakeError(f"speed {speed} is outside {MIN_SPEED}–{MAX_SPEED}×")
        with self._cond:
            self.speed = float(speed)
            self._restart_clock()
            self._cond.notify_all()

    def set_loop(self, loop_in: int | None, loop_out: int | None) -> None:
        """Loop frames [in, out] while playing (None, None: no loop)."""
        with self._cond:
            last = self.frames - 1
            for name, value in (("in", loop_in), ("out", loop_out)):
                if value is not None and not 0 <= value <= last:
                    raise TakeError(f"loop {name} {value} is outside the take's frames 0–{last}")
            if loop_in is not None and loop_out is not None and loop_in > loop_out:
                raise TakeError(f"loop in {loop_in} is after loop out {loop_out}")
            self.loop_in, self.loop_out = loop_in, loop_out
            first, end = self._range()
            if not first <= self.frame <= end:
                self.frame = first
                self._show_now()
            self._cond.notify_all()

    def request_key_frame(self, mark: str | None = None) -> None:
        """The viewer joined or lost sync: send the frame shown again, as a key frame."""
        self.encoder.request_key_frame()
        with self._cond:
            if not self.playing:
                self._show_now()

    def position(self) -> Position:
        with self._cond:
            return Position(
                self.frame,
                self.frames,
                self.timecode(self.frame),
                self.playing,
                self.speed,
                self.loop_in,
                self.loop_out,
                self.a,
                self.b,
            )

    def timecode(self, index: int) -> str:
        """Frame ``index``'s timecode: as recorded where the sidecar has it."""
        return self._timecodes.get(index) or timecode_at(self.timecode_start, self.fps, index)

    def _clamp(self, frame: int) -> int:
        return max(0, min(self.frames - 1, frame))

    def _range(self) -> tuple[int, int]:
        first = self.loop_in if self.loop_in is not None else 0
        last = self.loop_out if self.loop_out is not None else self.frames - 1
        return first, last

    def _clip_loop(self) -> None:
        last = self.frames - 1
        if self.loop_in is not None and self.loop_in > last:
            self.loop_in = None
        if self.loop_out is not None and self.loop_out > last:
            self.loop_out = last

    def _show_now(self) -> None:
        self._dirty = True
        self._cond.notify_all()

    def _restart_clock(self) -> None:
        self._t0 = time.monotonic()
        self._ticks = 0

    # pacing thread ---------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="agecast-review", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=5)
        with self._decode_lock:
            for reader in self._readers.values():
                reader.close()

    def _run(self) -> None:
        while True:
            with self._cond:
                job = self._next_job()
            if job is None:
                return
            index, send = job
            try:
                with self._decode_lock:
                    self.render(index, send=send)
            except Exception:  # one bad frame (a torn file tail) must not end the review
                log.exception("review of %s: frame %d failed", self.take.id, index)
                with self._cond:
                    self.playing = False

    def _next_job(self) -> tuple[int, bool] | None:
        """Under the lock: the next frame to show and whether to send it; waits as needed."""
        while not self._closed:
            if self._dirty:
                self._dirty = False
                self._restart_clock()
                return self.frame, True
            if not self.playing:
                self._cond.wait()
                continue
            following = self._following(self.frame)
            if following is None:  # the end, no loop: stop on the last frame
                self.playing = False
                continue
            due = self._t0 + (self._ticks + 1) / (self.fps * self.speed)
            late = time.monotonic() - due
            if late < 0:
                self._cond.wait(-late)  # a command may change the plan meanwhile
                continue
            self.frame = following
            if late > MAX_LATE_S:  # far behind (slow box): play slower rather than skip on
                self._restart_clock()
                return following, True
            self._ticks += 1
            # More than a frame behind: decode (the decoder must go through it) but skip the
            # encode, so the speed holds where the encode is what is slow.
            return following, late <= 1.0 / (self.fps * self.speed)
        return None

    def _following(self, frame: int) -> int | None:
        first, last = self._range()
        if frame < last:
            return frame + 1
        return first if self.loop_out is not None or self.loop_in is not None else None

    # one frame -------------------------------------------------------------------------------
    def compose(self, index: int) -> torch.Tensor:
        """Pictures A | B of frame ``index``, laid out side by side as the live path does."""
        readers = self._readers
        a = torch.from_numpy(readers[self.a].get(index))
        b = torch.from_numpy(readers[self.b].get(index))
        picture, canvas = layout_canvas(a, "side-by-side")
        assert canvas is not None
        if b.shape != canvas.shape:  # versions of one take share a size; be safe anyway
            b = _fit(b, canvas.shape[0], canvas.shape[1])
        canvas.copy_(b)
        return picture

    def render(self, index: int, *, send: bool = True) -> Message | None:
        """Compose, encode and publish frame ``index`` (decode only when ``send`` is False)."""
        if not send:
            for reader in self._readers.values():
                reader.frame(index)
            self.skipped += 1
            return None
        picture = self.compose(index)
        if self.mark is not None:  # this viewer's label burnt in, as on the live stream
            self._marker.burn(picture, self.mark, "bottom-left")
        height, width = int(picture.shape[0]), int(picture.shape[1])
        if self.codec == "jpeg":
            payload, key, flags = encode_jpeg(picture), True, Flags.KEY | Flags.JPEG
        else:
            encoded = self.encoder.encode(picture)
            payload, key = encoded.data, encoded.key
            width, height = encoded.width, encoded.height
            flags = Flags.KEY if key else Flags(0)
        wall_ns = self._created_ns + round(index * 1e9 / self.fps)
        header = PictureHeader(
            flags, LayoutCode.SIDE_BY_SIDE, FxState.ON, index, wall_ns, time.time_ns(),
            width, height, len(payload),
        )  # fmt: skip
        data = header.pack() + payload
        message = Message(
            index,
            key,
            data if self.codec == "h264" else None,
            data if self.codec == "jpeg" else None,
            self.mark,
        )
        self.sent += 1
        self._publish(message)
        return message


def _fit(image: torch.Tensor, height: int, width: int) -> torch.Tensor:
    chw = image.permute(2, 0, 1).unsqueeze(0).float()
    out = torch.nn.functional.interpolate(chw, size=(height, width), mode="bilinear")
    return out.squeeze(0).permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8)


def _iso_ns(created: str) -> int:
    """ns since the epoch of an ISO 8601 time (the take's start), 0 when unreadable."""
    try:
        return int(datetime.fromisoformat(created).timestamp() * 1e9)
    except ValueError:
        return 0
