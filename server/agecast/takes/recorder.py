"""Recording a take: every source frame (raw), the live aged pictures beside it, a sidecar.

Two feeds meet on the recorder's own thread, each hand-off a reference on a bounded queue that
never blocks the live path:

- the capture side (:attr:`Pipeline.tap <agecast.pipeline.runner.Pipeline.tap>`): every frame
  the source delivers, before the live path's newest-wins hand-offs may drop it. ``raw.mp4``
  holds them all at the source's own timestamps (a file's or stream's pts where they run in
  step; the capture clock across a loop or a jump), so a take plays at its true speed however
  slow the pipeline was. libx264 qp 0 (lossless in YCbCr) in 4:2:0, or 4:4:4 with
  ``take_raw_444``. From a BT.601 4:2:0 source (files, streams, the demo clip) the decoded
  picture itself is encoded: bit-exact with the decoded source. Other sources are converted
  from the RGB the pipeline saw (≈ 46 dB in 4:2:0, ≈ 54 dB in 4:4:4). Source packets are not
  remuxed (a take starts on any frame, not on the source's next key frame).
- the encode thread (:meth:`Recorder.offer`): the live aged pictures, matched to the raw frames
  by frame index. ``versions/v1/aged.mp4`` has one picture per raw frame at the same timestamps;
  a frame the live path dropped repeats the aged picture before it (``held``), counted in
  take.json and listed in the sidecar (its frame record says ``held`` and which frame it shows;
  the end record lists them all). libx264 crf 12, only the boxes the faces changed converted
  from RGB over the source's 4:2:0.
- ``versions/v1/sidecar.jsonl``: identity, every setting, each change at the frame it took
  effect, the faces of every aged frame, each frame's timecode: the file's start timecode plus
  the frame's time, so the container's timecode and the sidecar's agree frame for frame.

A source frame the recorder cannot queue (it is :data:`QUEUE_S` behind) is lost from the take,
counted (``dropped``) and logged. Both MP4s are fragmented with a key frame and a fragment every
second and flushed as written, so a ``kill -9`` loses at most about a second and the file still
plays. Free disk space is checked before a take starts and every second while it runs; a full
disk or a write error stops the take cleanly (status ``stopped: …``) and never touches the live
monitor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
import numpy as np
import torch

from agecast.cast.router import tag_of
from agecast.errors import AgecastError, TakeError
from agecast.frames import Frame
from agecast.identities.runtime import IdentityModel
from agecast.media.avframe import (
    BT601_X264,
    Yuv420Patcher,
    changed_boxes,
    even_size,
    is_bt601_yuv420,
    rgb_frame,
)
from agecast.pipeline.build import Built
from agecast.pipeline.fx import Look
from agecast.pipeline.runner import Output, Pipeline
from agecast.settings import Settings
from agecast.takes.store import IdentityRef, Take, TakeInfo, TakeStore

log = logging.getLogger(__name__)

# libx264 ultrafast: no look-ahead, no B-frames, so a packet leaves for every picture at once.
RAW_FORMAT, RAW_OPTIONS = "yuv420p", {"preset": "ultrafast", "qp": "0"}
RAW_FORMAT_444 = "yuv444p"
AGED_FORMAT, AGED_OPTIONS = "yuv420p", {"preset": "ultrafast", "crf": "12"}
# PyAV converts RGB→YUV with BT.601 coefficients; say so, or players assume BT.709.
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
QUEUE_S = 2.0  # seconds of source frames the recorder may fall behind before it loses some
# More than half that behind, the live device thread waits up to this long per frame
# (:meth:`Recorder.make_room`): the take's frames come before the monitor's frame rate.
MAKE_ROOM_S = 0.1
TICK_S = 1.0  # take.json, sidecar flush and disk check this often
WAKE_S = 0.05  # the recorder's thread looks for work at least this often
# A source frame waits this long for its aged picture; then the live path has dropped it and
# the aged take holds the picture before. After a stop, aged pictures are awaited this long.
HOLD_WAIT_S = 1.0
STOP_WAIT_S = 1.0
# MP4 timestamps: 1/90000 s holds 24, 25, 30, 50, 60 fps and their /1.001 rates exactly.
TIME_BASE = Fraction(1, 90000)
# A source timestamp that moves forward more than this (or not at all) is a jump: a looping
# file starting over, a stream's discontinuity; the capture clock bridges it.
MAX_PTS_STEP_S = 1.0
STOP_FRACTION = 0.25  # a running take stops when free space falls below this part of the minimum
# The recorder's thread runs at a lower CPU priority (nice, per thread on Linux): the live
# picture gets the cores first. Not SCHED_IDLE: on a box the live path saturates (it always
# works flat out when it cannot keep up) an idle-class thread never runs and the take would
# lose source frames; at nice 5 it still gets about a quarter of a busy core.
RECORDER_NICE = 5
GB = 1024**3


def disk_free(path: Path) -> int:
    """Bytes free on the file system holding ``path``."""
    return shutil.disk_usage(path).free


# timecode ------------------------------------------------------------------------------------
def tc_base(fps: float) -> int:
    """Frames per timecode second (non-drop): 30 for 29.97."""
    return max(1, round(fps))


def timecode(frames: int, fps: float) -> str:
    """``HH:MM:SS:FF`` for a frame count at ``fps`` (wraps at 24 h)."""
    base = tc_base(fps)
    frames %= 24 * 3600 * base
    seconds, ff = divmod(frames, base)
    return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}:{ff:02d}"


def tc_frames(text: str, fps: float) -> int:
    """The frame count of ``HH:MM:SS:FF`` (``;`` drop-frame separators read as ``:``)."""
    parts = text.replace(";", ":").split(":")
    if len(parts) != 4 or not all(p.isdigit() for p in parts):
        raise ValueError(f"timecode {text!r} is not HH:MM:SS:FF")
    hh, mm, ss, ff = (int(p) for p in parts)
    return ((hh * 60 + mm) * 60 + ss) * tc_base(fps) + ff


def local_utc_offset_s() -> float:
    """This machine's offset from UTC now, in seconds (the zone of :func:`wall_frames`)."""
    offset = datetime.now().astimezone().utcoffset()
    return offset.total_seconds() if offset is not None else 0.0


def wall_frames(wall_ns: int, fps: float) -> int:
    """Time of day (local) of a wall-clock instant, in frames: the timecode of a live feed."""
    moment = datetime.fromtimestamp(wall_ns / 1e9)
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
    return seconds * tc_base(fps) + int(moment.microsecond / 1e6 * tc_base(fps))


def source_timecode(uri: str) -> str | None:
    """The start timecode a file source carries (stream or container ``timecode``), if any.
    An NDI source's frames carry the sender's time of day as their pts (sources/ndi.py), so
    its takes count from midnight."""
    if uri.startswith("ndi://"):
        return "00:00:00:00"
    path = Path(uri[len("file://") :] if uri.startswith("file://") else uri).expanduser()
    if not path.is_file():
        return None
    try:
        with av.open(str(path)) as container:
            for stream in container.streams:
                if "timecode" in stream.metadata:
                    return str(stream.metadata["timecode"])
            value = container.metadata.get("timecode")
            return str(value) if value else None
    except (OSError, av.FFmpegError):
        return None


class Timecoder:
    """Per-frame timecode: the source's (start + pts) where it has one, else the wall clock."""

    def __init__(self, fps: float, source_tc: str | None) -> None:
        self.fps = fps
        self.source_start: int | None = None
        if source_tc:
            try:
                self.source_start = tc_frames(source_tc, fps)
            except ValueError:
                log.warning("ignoring the source's timecode %r: not HH:MM:SS:FF", source_tc)

    def frames(self, wall_ns: int, pts_s: float | None) -> int:
        if self.source_start is not None and pts_s is not None:
            return self.source_start + round(pts_s * tc_base(self.fps))
        return wall_frames(wall_ns, self.fps)

    def __call__(self, wall_ns: int, pts_s: float | None) -> str:
        return timecode(self.frames(wall_ns, pts_s), self.fps)


# identity and settings -----------------------------------------------------------------------
def identity_ref(identity: IdentityModel) -> IdentityRef:
    manifest = identity.manifest
    return IdentityRef(
        id=manifest.id, version=manifest.provenance.created or None, sha256=manifest.model.sha256
    )


def look_dict(look: Look) -> dict[str, Any]:
    return dataclasses.asdict(look)


def settings_doc(settings: Settings, look: Look) -> dict[str, Any]:
    """Every pipeline setting with the live look over it (the look is what frames used)."""
    return {**settings.model_dump(mode="json"), **look_dict(look)}


def face_records(output: Output) -> list[dict[str, Any]]:
    """Each face of the frame; with a cast, also who it was recognised as (re-render replays
    the routing as recorded: the member, or none for an unknown or ambiguous face)."""
    faces = []
    for face in output.face_boxes:
        record: dict[str, Any] = {
            "box": [float(v) for v in face.box.tolist()],
            "landmarks5": [[float(x), float(y)] for x, y in face.landmarks5.tolist()],
            "score": float(face.score),
            "track": int(face.track_id),
        }
        tag = tag_of(face)
        if tag is not None:
            record["cast"] = tag.record()
            member = output.look.member(tag.member) if output.look and tag.member else None
            if member is not None and not member.bypass:  # the identity this face was given
                main = output.identity.manifest.id if output.identity is not None else None
                record["cast"]["identity"] = member.identity or main
        faces.append(record)
    return faces


# writing -------------------------------------------------------------------------------------
def is_disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def to_array(picture: torch.Tensor) -> np.ndarray:
    """The picture as a view cut to even sizes (yuv420p needs them); written without a copy."""
    array = picture.detach().cpu().numpy()
    height, width = even_size(array)
    return array[:height, :width]


def source_yuv(source: object, raw: np.ndarray) -> av.VideoFrame | None:
    """The source's decoded 4:2:0 picture of ``raw`` (``Frame.yuv``) when it converts back
    exactly (BT.601, limited range, even size), else None: then pictures are converted from RGB."""
    if is_bt601_yuv420(source, raw.shape[0], raw.shape[1]):
        assert isinstance(source, av.VideoFrame)
        return source
    return None


def aged_frame(
    patcher: Yuv420Patcher, source: av.VideoFrame, raw: np.ndarray, aged: np.ndarray
) -> av.VideoFrame:
    """The aged picture in 4:2:0: the source's samples, with the boxes where aged differs from
    raw (its faces, its mark) converted from RGB."""
    return patcher.frame(source, aged, changed_boxes(raw, aged) if aged is not raw else [])


class FragmentedMp4:
    """H.264 (libx264) in a fragmented MP4: a key frame and a fragment every second, flushed.

    Timestamps are in :data:`TIME_BASE`: each picture is written at its own time (a take keeps
    the source's timestamps, gaps and all), or at the next frame of the nominal rate."""

    def __init__(
        self,
        path: Path,
        fps: float,
        width: int,
        height: int,
        options: dict[str, str],
        *,
        pix_fmt: str = "yuv420p",
        timecode_start: str | None = None,
    ) -> None:
        self.path = path
        self.rate = Fraction(fps).limit_denominator(1001)
        keyint = max(1, round(fps))
        self.frames = 0
        self._last_pts = -1
        self._container = av.open(str(path), mode="w", format="mp4", options=FRAGMENTED)
        if timecode_start:
            self._container.metadata["timecode"] = timecode_start
        stream = self._container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt
        stream.time_base = TIME_BASE
        stream.codec_context.time_base = TIME_BASE
        stream.options = {
            **options,
            "threads": "1",  # frame threads would hold pictures back (lost on a crash)
            "x264-params": f"{BT601_X264}:keyint={keyint}:min-keyint={keyint}:scenecut=0",
        }
        if timecode_start:
            stream.metadata["timecode"] = timecode_start
        self._stream = stream

    def write(self, picture: np.ndarray | av.VideoFrame, at_s: float | None = None) -> None:
        """One picture (HWC uint8 RGB, or a frame in the stream's pixel format) at ``at_s``
        seconds from the file's start; None: one nominal frame after the previous picture."""
        frame = picture if isinstance(picture, av.VideoFrame) else rgb_frame(picture)
        if at_s is None:
            pts = round(self.frames / self.rate / TIME_BASE)
        else:
            pts = round(at_s / TIME_BASE)
        pts = max(pts, self._last_pts + 1)  # a muxer needs rising timestamps
        frame.pts = self._last_pts = pts
        frame.time_base = TIME_BASE
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    @property
    def end_s(self) -> float:
        """Where the file ends: the last picture's time plus one nominal frame."""
        return 0.0 if self.frames == 0 else float(self._last_pts * TIME_BASE + 1 / self.rate)

    def close(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()


class TakeClock:
    """Each captured frame's time in a take (seconds from its first frame), from the source's
    own timestamps where they run forward in step; where they do not (a source without them, a
    looping file starting over, a stream's jump) the capture clock bridges the gap."""

    def __init__(self) -> None:
        self._anchor: tuple[float, float] | None = None  # (take time, source pts) in step
        self._last: tuple[float, int] | None = None  # (take time, capture ns) of the last frame

    def __call__(self, frame: Frame) -> float:
        pts = frame.pts_s
        at = 0.0
        if self._last is not None:
            last_at, last_ns = self._last
            at = -1.0
            if self._anchor is not None and pts is not None:
                at = self._anchor[0] + (pts - self._anchor[1])
            if not 0 < at - last_at <= MAX_PTS_STEP_S:
                at = last_at + max((frame.capture_ns - last_ns) / 1e9, float(TIME_BASE))
                self._anchor = None
        if self._anchor is None and pts is not None:
            self._anchor = (at, pts)
        self._last = (at, frame.capture_ns)
        return at


class _Stop(Exception):
    """Ends a recording from inside its thread, with the reason for take.json."""


@dataclasses.dataclass(slots=True)
class _Aged:
    output: Output
    faces: list[dict[str, Any]]
    notes: dict[str, Any]


class Recorder:
    """One take being recorded. :meth:`begin` makes one; :meth:`stop` finishes it.

    Two feeds meet on the recorder's thread: every frame the source delivers
    (:meth:`offer_raw`, from the capture thread) and the live pipeline's aged pictures
    (:meth:`offer`, from the encode thread), matched by frame index. A frame whose aged picture
    never comes (the live path dropped it) gets the last aged picture again, counted and
    listed as held."""

    def __init__(
        self,
        take: Take,
        *,
        fps: float,
        settings: dict[str, Any],
        look: Look,
        identity: IdentityRef,
        source_tc: str | None,
        min_free_bytes: int,
        raw_444: bool = False,
        max_frames: int | None = None,
        source_dropped: Callable[[], int] | None = None,
    ) -> None:
        self.take = take
        info = take.info
        self._names = (info.scene, info.take, info.camera)
        self.fps = fps
        self.min_free_bytes = min_free_bytes
        self.stop_free_bytes = int(min_free_bytes * STOP_FRACTION)
        self.raw_format = RAW_FORMAT_444 if raw_444 else RAW_FORMAT
        self.timecoder = Timecoder(fps, source_tc)
        self.clock = TakeClock()
        self.queue_max = max(4, round(fps * QUEUE_S))
        self.max_frames = max_frames
        self._source_dropped = source_dropped or (lambda: 0)
        self._source_dropped_at_start = self._source_dropped()
        self._cond = threading.Condition()
        self._raw_in: deque[Frame] = deque()
        self._aged_in: deque[_Aged] = deque()
        self.captured = 0  # source frames handed to the take
        self.frames = 0  # take frames written (raw and aged alike)
        self.aged = 0  # of which the aged picture is that frame's own
        self.held: list[int] = []  # take frames showing an earlier aged picture again
        self.dropped = 0  # source frames lost from the take: the recorder fell behind
        self.live_waited_s = 0.0  # how long the live path waited for the recorder to catch up
        self._drop_burst = 0
        self.status_text = "recording"
        self.message = ""
        self.disk_free: int | None = None
        self.cpu_s = 0.0  # the recorder thread's CPU time for the frames written
        self.yuv_frames = 0  # raw frames written from the source's own 4:2:0 picture
        self.started_wall_ns = time.time_ns()
        self._started_ns = time.monotonic_ns()
        self._stopped_ns: int | None = None
        self._patcher = Yuv420Patcher()
        self._recording = True  # taking source frames
        self._finished = False  # the thread is done: nothing more is taken
        self._stop_deadline: float | None = None
        self._notes: dict[str, Any] = {}
        self._look = look
        self._identity = identity
        self._raw: FragmentedMp4 | None = None
        self._aged: FragmentedMp4 | None = None
        self._tc_start: int | None = None  # the first frame's timecode, in frames
        self._last_aged: tuple[av.VideoFrame | np.ndarray, int, str] | None = None
        self._sidecar: IO[str] = take.sidecar_path("v1").open("w")
        self._write_line({"type": "start", "identity": identity.model_dump(), "settings": settings})
        self._sidecar.flush()
        self._thread = threading.Thread(
            target=self._run, name=f"agecast-record-{take.id}", daemon=True
        )
        self._thread.start()

    @classmethod
    def begin(
        cls,
        store: TakeStore,
        scene: str,
        take: str,
        camera: str | None = None,
        *,
        settings: Settings,
        built: Built,
        preset: str | None = None,
        max_frames: int | None = None,
    ) -> Recorder:
        """Check the names and the free space, create the take and start recording it from
        ``built``'s pipeline: its capture side (every source frame) and its aged output, with
        the look and identity its FX runs now."""
        look, identity, pipeline = built.fx.look, built.fx.identity, built.pipeline
        store.check_new(scene, take, camera)
        store.root.mkdir(parents=True, exist_ok=True)
        min_free = int(settings.min_free_gb * GB)
        free = disk_free(store.root)
        if free < min_free:
            raise TakeError(
                f"only {free / GB:.2f} GB free in {store.root}; a take needs at least "
                f"{settings.min_free_gb:g} GB (free some space, or set min_free_gb / "
                "AGECAST_MIN_FREE_GB, or choose another takes_dir)"
            )
        source = pipeline.source
        ref = identity_ref(identity)
        created = store.create(
            scene, take, camera, source=source.uri, fps=source.fps, identity=ref, preset=preset
        )
        created.new_version()  # v1: the live recording
        doc = {**settings_doc(settings, look), "preset": preset}
        recorder = cls(
            created,
            fps=source.fps,
            settings=doc,
            look=look,
            identity=ref,
            source_tc=source_timecode(source.uri),
            min_free_bytes=min_free,
            raw_444=settings.take_raw_444,
            max_frames=max_frames,
            source_dropped=lambda: int(getattr(source, "dropped", 0)),
        )
        pipeline.tap = recorder.offer_raw
        pipeline.pause = recorder.make_room
        log.info("recording take %s into %s", created.id, created.path)
        return recorder

    # live side (capture and encode threads) --------------------------------------------------
    @property
    def active(self) -> bool:
        """Whether the take is still taking source frames."""
        return self._recording

    @property
    def finished(self) -> bool:
        """Whether the take is written and closed."""
        return self._finished

    def offer_raw(self, frame: Frame) -> bool:
        """Queue a source frame (capture thread); never blocks. False when not taken."""
        if not self._recording:
            return False
        with self._cond:
            if self.max_frames is not None and self.captured + self.dropped >= self.max_frames:
                self._close_raw()
                return False
            if len(self._raw_in) >= self.queue_max:
                self.dropped += 1
                self._drop_burst += 1
                burst = self._drop_burst
            else:
                self._raw_in.append(frame)
                self.captured += 1
                self._cond.notify()
                burst = -self._drop_burst
                self._drop_burst = 0
        if burst == 1:
            log.warning(
                "take %s: the recorder is %d frames behind; source frames are lost from the "
                "take (the live monitor is not affected)",
                self.take.id,
                self.queue_max,
            )
        elif burst < 0:
            log.warning("take %s: recorder caught up after %d lost", self.take.id, -burst)
        return burst == 0

    def offer(self, output: Output) -> bool:
        """Queue an aged picture (encode thread); never blocks. False when not taken (its
        frame then holds the aged picture before it)."""
        if self._finished:
            return False
        with self._cond:
            if len(self._aged_in) >= self.queue_max:
                return False
            notes, self._notes = self._notes, {}
            self._aged_in.append(_Aged(output, face_records(output), notes))
            self._cond.notify()
        return True

    def make_room(self) -> None:
        """Device thread (:attr:`Pipeline.pause`): while the take is more than half its queue
        behind, wait up to :data:`MAKE_ROOM_S` so the recorder gets the CPU. The live path
        drops the frames it skips meanwhile, as it does whenever it cannot keep up."""
        if not self._recording or len(self._raw_in) <= self.queue_max // 2:
            return
        started = time.monotonic()
        while (
            self._recording
            and len(self._raw_in) > self.queue_max // 2
            and time.monotonic() - started < MAKE_ROOM_S
        ):
            time.sleep(0.005)
        self.live_waited_s += time.monotonic() - started

    def note(self, values: dict[str, Any]) -> None:
        """Settings changed outside the look (preset, layout): logged at the next aged frame."""
        with self._cond:
            self._notes.update(values)

    def _close_raw(self) -> None:
        """No more source frames (caller holds the lock); aged pictures are awaited a while."""
        if self._recording:
            self._recording = False
            self._stopped_ns = time.monotonic_ns()
            self._stop_deadline = time.monotonic() + STOP_WAIT_S
            self._cond.notify()

    def stop(self, reason: str | None = None, timeout: float = 30.0) -> TakeInfo:
        """Finish the take: frames already taken are written, then the files are closed."""
        with self._cond:
            if self._recording and reason:
                self.status_text = f"stopped: {reason}"
            self._close_raw()
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("take %s: the recorder did not finish within %.0f s", self.take.id, timeout)
        return self.take.info

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    @property
    def elapsed_s(self) -> float:
        """Wall time from the start of the take to now, or to its stop."""
        end = self._stopped_ns if self._stopped_ns is not None else time.monotonic_ns()
        return (end - self._started_ns) / 1e9

    def status(self) -> dict[str, Any]:
        """The take for ``/api/status`` → ``recording`` (see the README, "Takes")."""
        raw = self._raw
        return {
            "take": self.take.id,
            "path": str(self.take.path),
            "recording": self._recording,
            "finished": self._finished,
            "status": self.status_text,
            "started_at_ms": self.started_wall_ns // 1_000_000,
            "captured": self.captured,
            "frames": self.frames,
            "seconds": round(self.elapsed_s, 2),  # the REC timer: wall time, frozen at the stop
            "written_s": round(raw.end_s if raw is not None else 0.0, 2),  # raw.mp4 so far
            "timecode_start": self._timecode(0.0) if self._tc_start is not None else None,
            "aged_frames": self.aged,
            "held": len(self.held),
            "queue": len(self._raw_in),
            "queue_max": self.queue_max,
            "dropped": self.dropped + self.source_dropped,
            "live_waited_s": round(self.live_waited_s, 2),
            "cpu_ms_per_frame": round(1000 * self.cpu_s / self.frames, 2) if self.frames else None,
            "from_source_yuv": self.yuv_frames,
            "disk_free_gb": round(self.disk_free / GB, 2) if self.disk_free is not None else None,
            "message": self.message,
            # the take name a next take at this scene would get (the page's take field)
            "next_take": TakeStore(self.take.path.parent).next_take(*self._names),
        }

    @property
    def source_dropped(self) -> int:
        """Frames the source itself replaced before the capture thread took them."""
        return max(0, self._source_dropped() - self._source_dropped_at_start)

    # recorder thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        tid = threading.get_native_id()
        with contextlib.suppress(OSError, AttributeError):  # Linux: per thread; else normal
            os.setpriority(os.PRIO_PROCESS, tid, RECORDER_NICE)
        next_tick = time.monotonic()
        raw: deque[Frame] = deque()
        aged: deque[_Aged] = deque()
        try:
            while True:
                with self._cond:
                    if not self._raw_in and not self._aged_in:
                        self._cond.wait(WAKE_S)
                    raw.extend(self._raw_in)
                    aged.extend(self._aged_in)
                    self._raw_in.clear()
                    self._aged_in.clear()
                    closing = not self._recording
                    deadline = self._stop_deadline
                final = closing and (deadline is None or time.monotonic() >= deadline)
                cpu = time.thread_time()
                self._merge(raw, aged, final=final)
                self.cpu_s += time.thread_time() - cpu
                if closing and not raw:
                    break
                if time.monotonic() >= next_tick:
                    self._tick()
                    next_tick = time.monotonic() + TICK_S
        except _Stop as stop:
            self._fail(str(stop))
        except Exception as exc:
            if is_disk_full(exc):
                self._fail(f"disk full ({exc})")
            else:
                log.exception("take %s: recording failed", self.take.id)
                self._fail(f"write error ({type(exc).__name__}: {exc})")
        finally:
            self._finish()

    def _merge(self, raw: deque[Frame], aged: deque[_Aged], *, final: bool) -> None:
        """Write every source frame whose aged picture is in, or will never come: the live path
        went past it, it is :data:`HOLD_WAIT_S` old, or the take is closing."""
        now_ns = time.monotonic_ns()
        while raw:
            frame = raw[0]
            while aged and aged[0].output.index < frame.index:
                aged.popleft()  # the aged picture of a frame before the take (or lost from it)
            own = aged[0] if aged and aged[0].output.index == frame.index else None
            waited = (now_ns - frame.capture_ns) / 1e9
            if own is None and not aged and not final and waited < HOLD_WAIT_S:
                return  # its aged picture may still be on its way
            raw.popleft()
            if own is not None:
                aged.popleft()
            self._write(frame, own)

    def _fail(self, reason: str) -> None:
        with self._cond:
            self._close_raw()
        self.status_text = f"stopped: {reason}"
        self.message = (
            f"take {self.take.id} stopped after {self.frames} frames: {reason}. "
            "The live monitor keeps running; free space or fix the disk before the next take."
        )
        log.error("%s", self.message)

    def _timecode(self, at_s: float) -> str:
        assert self._tc_start is not None
        return timecode(self._tc_start + round(at_s * tc_base(self.fps)), self.fps)

    def _write(self, frame: Frame, own: _Aged | None) -> None:
        raw = to_array(frame.image)
        at = self.clock(frame)
        if self._raw is None:
            self._open(frame, raw)
        assert self._raw is not None and self._aged is not None
        source = source_yuv(frame.yuv, raw) if self.raw_format == RAW_FORMAT else None
        if source is not None:  # the source's own 4:2:0, as decoded
            self._raw.write(self._patcher.frame(source), at)
            self.yuv_frames += 1
        else:
            self._raw.write(raw, at)
        i = self.frames
        record: dict[str, Any] = {
            "type": "frame", "i": i, "tc": self._timecode(at), "pts": round(at, 6),
            "src": frame.index,
        }  # fmt: skip
        if own is not None:
            picture = self._aged_picture(own.output, frame, raw)
            self._aged.write(picture, at)
            self._last_aged = (picture, i, own.output.fx.value)
            self._log_changes(i, own.output, own.notes)
            record.update(fx=own.output.fx.value, faces=own.faces)
            self.aged += 1
        else:  # the live path dropped this frame: the aged take holds its last picture
            if self._last_aged is None:  # nothing aged yet: the raw picture, flagged
                held: av.VideoFrame | np.ndarray = (
                    raw if source is None else self._patcher.frame(source)
                )
                shown, fx = None, "bypass"
            else:
                held, shown, fx = self._last_aged
                held = self._patcher.frame(held) if isinstance(held, av.VideoFrame) else held
            self._aged.write(held, at)
            record.update(fx=fx, held=True, shows=shown)
            self.held.append(i)
        self._write_line(record)
        self.frames += 1

    def _aged_picture(
        self, output: Output, frame: Frame, raw: np.ndarray
    ) -> av.VideoFrame | np.ndarray:
        aged = to_array(output.aged)
        if aged.shape != raw.shape:  # cannot happen in the pipeline; never mis-size a take
            aged = raw
        source = source_yuv(output.raw_yuv, raw)
        if source is None:
            return aged
        return aged_frame(self._patcher, source, raw, aged)  # the faces over the source's 4:2:0

    def _open(self, frame: Frame, raw: np.ndarray) -> None:
        height, width = raw.shape[:2]
        self._tc_start = self.timecoder.frames(frame.wall_ns, frame.pts_s)
        tc = self._timecode(0.0)
        self.take.update_info(width=width, height=height, timecode_start=tc)
        self._raw = FragmentedMp4(
            self.take.raw_path, self.fps, width, height, RAW_OPTIONS,
            pix_fmt=self.raw_format, timecode_start=tc,
        )  # fmt: skip
        self._aged = FragmentedMp4(
            self.take.aged_path("v1"), self.fps, width, height, AGED_OPTIONS,
            pix_fmt=AGED_FORMAT, timecode_start=tc,
        )  # fmt: skip

    def _log_changes(self, i: int, output: Output, notes: dict[str, Any]) -> None:
        values = dict(notes)
        if output.look is not None and output.look != self._look:
            old, new = look_dict(self._look), look_dict(output.look)
            values.update({k: v for k, v in new.items() if old[k] != v})
            self._look = output.look
        if output.identity is not None:
            ref = identity_ref(output.identity)
            if ref != self._identity:
                values["identity"] = ref.model_dump()
                self._identity = ref
        if values:
            self._write_line({"type": "set", "i": i, "values": values})

    def _write_line(self, record: dict[str, Any]) -> None:
        self._sidecar.write(json.dumps(record, separators=(",", ":")) + "\n")

    def _counts(self) -> dict[str, Any]:
        return {
            "frames": self.frames,
            "duration_s": round(self._raw.end_s, 6) if self._raw is not None else 0.0,
            "aged_frames": self.aged,
            "held_frames": len(self.held),
            "dropped_frames": self.dropped + self.source_dropped,
        }

    def _tick(self) -> None:
        self._sidecar.flush()
        self.take.update_info(**self._counts())
        self.disk_free = disk_free(self.take.path)
        if self.disk_free < self.stop_free_bytes:
            raise _Stop(
                f"disk full ({self.disk_free / GB:.2f} GB free in {self.take.path.parent}, "
                f"below the {self.stop_free_bytes / GB:.2f} GB reserve)"
            )

    def _finish(self) -> None:
        with self._cond:
            self._close_raw()
            self._finished = True
            self._raw_in.clear()  # frames still queued after a failure: let their pictures go
            self._aged_in.clear()
        for writer in (self._raw, self._aged):
            if writer is None:
                continue
            try:
                writer.close()
            except Exception as exc:  # a full disk may refuse the last fragment
                log.warning("take %s: closing %s: %s", self.take.id, writer.path, exc)
        counts = self._counts()
        try:
            self._write_line({"type": "end", **counts, "held": self.held})
            self._sidecar.close()
        except OSError as exc:
            log.warning("take %s: closing the sidecar: %s", self.take.id, exc)
        status = self.status_text if self.status_text != "recording" else "complete"
        self.status_text = status
        try:
            self.take.update_info(**counts, status=status)
            self.take.release()
        except OSError as exc:
            log.error("take %s: could not write take.json: %s", self.take.id, exc)
        if counts["dropped_frames"]:
            log.warning(
                "take %s: %d source frame(s) lost from the take", self.take.id,
                counts["dropped_frames"],
            )  # fmt: skip
        log.info(
            "take %s: %s, %d frames (%.2f s), %d aged, %d held",
            self.take.id, status, self.frames, counts["duration_s"], self.aged, len(self.held),
        )  # fmt: skip


def record(
    settings: Settings,
    scene: str,
    take: str,
    camera: str | None = None,
    *,
    seconds: float,
    preset: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> TakeInfo:
    """Headless: build the live pipeline, record ``seconds`` of its source as a take (every
    source frame raw, the live aged pictures beside them), return its info."""
    from agecast.pipeline.build import build

    store = TakeStore(settings.resolved_takes_dir)
    store.check_new(scene, take, camera)  # before minutes of model loading, not after
    built = build(settings, mode="live")
    pipeline = built.pipeline
    pipeline.start()
    wanted = max(1, round(seconds * pipeline.source.fps))
    try:
        recorder = Recorder.begin(
            store, scene, take, camera, settings=settings, built=built, preset=preset,
            max_frames=wanted,
        )  # fmt: skip
    except AgecastError:
        built.close()
        raise
    reason: str | None = None
    try:
        for output in pipeline.outputs(poll_s=0.1):
            if output is not None:
                recorder.offer(output)
            if progress is not None:
                progress(recorder.captured, wanted)
            if not recorder.active or not pipeline.running:
                break
    except KeyboardInterrupt:
        reason = "interrupted (Ctrl-C)"
        raise
    finally:
        # the aged pictures of the last frames are still coming: take them while stop() waits
        drain = threading.Thread(target=_drain, args=(pipeline, recorder), daemon=True)
        drain.start()
        info = recorder.stop(reason)
        pipeline.tap = pipeline.pause = None
        built.close()
        drain.join(timeout=2)
    if pipeline.error is not None and info.frames == 0:
        raise pipeline.error
    return info


def _drain(pipeline: Pipeline, recorder: Recorder) -> None:
    for output in pipeline.outputs(poll_s=0.1):
        if output is not None and not recorder.offer(output) and recorder.finished:
            return
        if output is None and recorder.finished:
            return
