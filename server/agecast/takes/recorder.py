"""Recording a take from the live pipeline: raw and aged pictures plus a sidecar, on a thread.

The live encode thread hands each :class:`~agecast.pipeline.runner.Output` to
:meth:`Recorder.offer`, which only puts a reference on a bounded queue (never blocks; a full
queue drops the frame from the take, counts it and says so). The recorder's thread encodes:

- ``raw.mp4``: libx264 at qp 0 (lossless in YCbCr) in 4:2:0, or 4:4:4 with ``take_raw_444``
  (High 4:4:4 Predictive). When the source decodes BT.601 4:2:0 (files, streams and the demo
  clip mostly do) the decoded picture itself is encoded: the raw take is bit-exact with the
  decoded source. Other sources (RGB pictures, BT.709 or full-range YCbCr) are converted from
  the RGB the pipeline saw: ≈ 46 dB PSNR of the decoded pictures in 4:2:0, ≈ 54 dB in 4:4:4 (only
  the 8-bit RGB→YCbCr rounding), the latter for ~4 ms more CPU per 720p frame. Source packets
  are not remuxed (a take starts on any frame, not on the source's next key frame).
- ``versions/v1/aged.mp4``: libx264 crf 12 (visually lossless), the aged picture as shown live.
  With the source's 4:2:0 at hand only the box the faces changed is converted from RGB; the rest
  of the picture is the decoded source's.
- ``versions/v1/sidecar.jsonl``: identity, every setting, each change at the frame it took
  effect, and the faces of every frame.

Both MP4s are fragmented with a key frame and a fragment every second and flushed as written,
so a ``kill -9`` loses at most about a second and the file still plays. Free disk space is
checked before a take starts and every second while it runs; a full disk or a write error stops
the take cleanly (status ``stopped: …``) and never touches the live monitor.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import logging
import os
import queue
import shutil
import threading
import time
from collections.abc import Callable
from datetime import datetime
from fractions import Fraction
from pathlib import Path
from typing import IO, Any

import av
import numpy as np
import torch

from agecast.errors import AgecastError, TakeError
from agecast.identities.runtime import IdentityModel
from agecast.pipeline.fx import Look
from agecast.pipeline.runner import Output
from agecast.settings import Settings
from agecast.stream.avframe import (
    Yuv420Patcher,
    changed_boxes,
    even_size,
    is_bt601_yuv420,
    rgb_frame,
)
from agecast.takes.store import IdentityRef, Take, TakeInfo, TakeStore

log = logging.getLogger(__name__)

# libx264 ultrafast: no look-ahead, no B-frames, so a packet leaves for every picture at once.
RAW_FORMAT, RAW_OPTIONS = "yuv420p", {"preset": "ultrafast", "qp": "0"}
RAW_FORMAT_444 = "yuv444p"
AGED_FORMAT, AGED_OPTIONS = "yuv420p", {"preset": "ultrafast", "crf": "12"}
# PyAV converts RGB→YUV with BT.601 coefficients; say so, or players assume BT.709.
COLOUR_TAGS = "colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m"
FRAGMENTED = {"movflags": "frag_keyframe+empty_moov+default_base_moof", "flush_packets": "1"}
QUEUE_S = 2.0  # seconds of frames the recorder may fall behind before it drops
TICK_S = 1.0  # take.json, sidecar flush and disk check this often
STOP_FRACTION = 0.25  # a running take stops when free space falls below this part of the minimum
# The recorder's thread runs at idle CPU priority (Linux SCHED_IDLE per thread, else nice): the
# live picture gets the cores first and the take catches up from its queue.
RECORDER_NICE = 10
GB = 1024**3

FreeBytes = Callable[[Path], int]


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


def wall_frames(wall_ns: int, fps: float) -> int:
    """Time of day (local) of a wall-clock instant, in frames: the timecode of a live feed."""
    moment = datetime.fromtimestamp(wall_ns / 1e9)
    seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
    return seconds * tc_base(fps) + int(moment.microsecond / 1e6 * tc_base(fps))


def source_timecode(uri: str) -> str | None:
    """The start timecode a file source carries (stream or container ``timecode``), if any."""
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
    faces = []
    for face in output.face_boxes:
        faces.append(
            {
                "box": [float(v) for v in face.box.tolist()],
                "landmarks5": [[float(x), float(y)] for x, y in face.landmarks5.tolist()],
                "score": float(face.score),
                "track": int(face.track_id),
            }
        )
    return faces


# writing -------------------------------------------------------------------------------------
def is_disk_full(exc: BaseException) -> bool:
    return getattr(exc, "errno", None) in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def to_array(picture: torch.Tensor) -> np.ndarray:
    """The picture as a view cut to even sizes (yuv420p needs them); written without a copy."""
    array = picture.detach().cpu().numpy()
    height, width = even_size(array)
    return array[:height, :width]


def source_yuv(output: Output, raw: np.ndarray) -> av.VideoFrame | None:
    """The source's decoded 4:2:0 picture of ``raw`` when it converts back exactly (BT.601,
    limited range, even size), else None: then pictures are converted from RGB."""
    source = output.raw_yuv
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
    """H.264 (libx264) in a fragmented MP4: a key frame and a fragment every second, flushed."""

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
        self._container = av.open(str(path), mode="w", format="mp4", options=FRAGMENTED)
        if timecode_start:
            self._container.metadata["timecode"] = timecode_start
        stream = self._container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = pix_fmt
        stream.options = {
            **options,
            "threads": "1",  # frame threads would hold pictures back (lost on a crash)
            "x264-params": f"{COLOUR_TAGS}:keyint={keyint}:min-keyint={keyint}:scenecut=0",
        }
        if timecode_start:
            stream.metadata["timecode"] = timecode_start
        self._stream = stream

    def write(self, picture: np.ndarray | av.VideoFrame) -> None:
        """One picture: HWC uint8 RGB, or a frame already in the stream's pixel format."""
        frame = picture if isinstance(picture, av.VideoFrame) else rgb_frame(picture)
        frame.pts = self.frames
        frame.time_base = 1 / self.rate
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        try:
            self._container.mux(self._stream.encode(None))
        finally:
            self._container.close()


class _Stop(Exception):
    """Ends a recording from inside its thread, with the reason for take.json."""


@dataclasses.dataclass(slots=True)
class _Item:
    output: Output
    faces: list[dict[str, Any]]
    notes: dict[str, Any]


class Recorder:
    """One take being recorded. :meth:`begin` makes one; :meth:`stop` finishes it."""

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
        free_bytes: FreeBytes | None = None,
        raw_444: bool = False,
    ) -> None:
        self.take = take
        self.fps = fps
        self.min_free_bytes = min_free_bytes
        self.stop_free_bytes = int(min_free_bytes * STOP_FRACTION)
        self._free_bytes = free_bytes
        self.raw_format = RAW_FORMAT_444 if raw_444 else RAW_FORMAT
        self.timecoder = Timecoder(fps, source_tc)
        self.queue_max = max(4, round(fps * QUEUE_S))
        self._queue: queue.Queue[_Item | None] = queue.Queue(self.queue_max)
        self.offered = 0
        self.frames = 0
        self.dropped = 0
        self._drop_burst = 0
        self.status_text = "recording"
        self.message = ""
        self.disk_free: int | None = None
        self.cpu_s = 0.0  # the recorder thread's CPU time for the frames written
        self.yuv_frames = 0  # frames written from the source's own 4:2:0 picture
        self._patcher = Yuv420Patcher()
        self._accepting = True
        self._notes: dict[str, Any] = {}
        self._notes_lock = threading.Lock()
        self._look = look
        self._identity = identity
        self._raw: FragmentedMp4 | None = None
        self._aged: FragmentedMp4 | None = None
        self._first_capture_ns: int | None = None
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
        look: Look,
        identity: IdentityModel,
        source_uri: str,
        fps: float,
        preset: str | None = None,
        free_bytes: FreeBytes | None = None,
    ) -> Recorder:
        """Check the names and the free space, create the take and start recording it."""
        store.check_new(scene, take, camera)
        store.root.mkdir(parents=True, exist_ok=True)
        min_free = int(settings.min_free_gb * GB)
        free = (free_bytes or disk_free)(store.root)
        if free < min_free:
            raise TakeError(
                f"only {free / GB:.2f} GB free in {store.root}; a take needs at least "
                f"{settings.min_free_gb:g} GB (free some space, or set min_free_gb / "
                "AGECAST_MIN_FREE_GB, or choose another takes_dir)"
            )
        ref = identity_ref(identity)
        created = store.create(
            scene, take, camera, source=source_uri, fps=fps, identity=ref, preset=preset
        )
        created.new_version()  # v1: the live recording
        doc = {**settings_doc(settings, look), "preset": preset}
        recorder = cls(
            created,
            fps=fps,
            settings=doc,
            look=look,
            identity=ref,
            source_tc=source_timecode(source_uri),
            min_free_bytes=min_free,
            free_bytes=free_bytes,
            raw_444=settings.take_raw_444,
        )
        log.info("recording take %s into %s", created.id, created.path)
        return recorder

    # live side (encode thread) ---------------------------------------------------------------
    @property
    def active(self) -> bool:
        return self._accepting

    def offer(self, output: Output) -> bool:
        """Queue ``output`` for the take; never blocks. False when dropped or not recording."""
        if not self._accepting:
            return False
        with self._notes_lock:
            notes, self._notes = self._notes, {}
        try:
            self._queue.put_nowait(_Item(output, face_records(output), notes))
        except queue.Full:
            with self._notes_lock:  # keep the notes for the next frame that makes it
                self._notes = {**notes, **self._notes}
            self.dropped += 1
            self._drop_burst += 1
            if self._drop_burst == 1:
                log.warning(
                    "take %s: the recorder is %d frames behind; dropping frames from the take "
                    "(the live monitor is not affected)",
                    self.take.id,
                    self.queue_max,
                )
            return False
        if self._drop_burst:
            log.warning("take %s: recorder caught up after %d dropped", self.take.id, self.dropped)
            self._drop_burst = 0
        self.offered += 1
        return True

    def note(self, values: dict[str, Any]) -> None:
        """Settings changed outside the look (preset, layout): logged at the next frame."""
        with self._notes_lock:
            self._notes.update(values)

    def stop(self, reason: str | None = None, timeout: float = 30.0) -> TakeInfo:
        """Finish the take: frames already queued are written, then the files are closed."""
        if self._accepting:
            self._accepting = False
            if reason:
                self.status_text = f"stopped: {reason}"
            self._queue.put(None)  # after every queued frame
        self._thread.join(timeout)
        if self._thread.is_alive():
            log.error("take %s: the recorder did not finish within %.0f s", self.take.id, timeout)
        return self.take.info

    def wait(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        seconds = self.frames / self.fps if self.fps else 0.0
        return {
            "take": self.take.id,
            "path": str(self.take.path),
            "recording": self._accepting,
            "status": self.status_text,
            "frames": self.frames,
            "seconds": round(seconds, 2),
            "queue": self._queue.qsize(),
            "queue_max": self.queue_max,
            "dropped": self.dropped,
            "cpu_ms_per_frame": round(1000 * self.cpu_s / self.frames, 2) if self.frames else None,
            "from_source_yuv": self.yuv_frames,
            "disk_free_gb": round(self.disk_free / GB, 2) if self.disk_free is not None else None,
            "message": self.message,
        }

    # recorder thread ---------------------------------------------------------------------------
    def _run(self) -> None:
        tid = threading.get_native_id()
        try:  # Linux: run only on CPU time the live threads leave idle; they preempt at once
            os.sched_setscheduler(tid, os.SCHED_IDLE, os.sched_param(0))
        except (OSError, AttributeError):
            with contextlib.suppress(OSError, AttributeError):  # else nice; else normal
                os.setpriority(os.PRIO_PROCESS, tid, RECORDER_NICE)
        next_tick = time.monotonic()
        try:
            while True:
                try:
                    item = self._queue.get(timeout=0.25)
                except queue.Empty:
                    pass  # nothing this time; still tick
                else:
                    if item is None:  # stop(): every frame before it is written
                        break
                    cpu = time.thread_time()
                    self._write(item)
                    self.cpu_s += time.thread_time() - cpu
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

    def _fail(self, reason: str) -> None:
        self._accepting = False
        self.status_text = f"stopped: {reason}"
        self.message = (
            f"take {self.take.id} stopped after {self.frames} frames: {reason}. "
            "The live monitor keeps running; free space or fix the disk before the next take."
        )
        log.error("%s", self.message)

    def _write(self, item: _Item) -> None:
        output = item.output
        raw = to_array(output.raw)
        aged = to_array(output.aged)
        if self._raw is None:
            self._open(output, raw)
        assert self._raw is not None and self._aged is not None
        if aged.shape != raw.shape:  # cannot happen in the pipeline; never mis-size a take
            aged = raw
        source = source_yuv(output, raw) if self.raw_format == RAW_FORMAT else None
        if source is not None:  # the source's own 4:2:0: raw as decoded, aged patched over it
            self._raw.write(self._patcher.frame(source))
            self._aged.write(aged_frame(self._patcher, source, raw, aged))
            self.yuv_frames += 1
        else:
            self._raw.write(raw)
            self._aged.write(aged)
        i = self.frames
        self._log_changes(i, output, item.notes)
        if self._first_capture_ns is None:
            self._first_capture_ns = output.capture_ns
        self._write_line(
            {
                "type": "frame",
                "i": i,
                "tc": self.timecoder(output.wall_ns, output.pts_s),
                "pts": round((output.capture_ns - self._first_capture_ns) / 1e9, 6),
                "fx": output.fx.value,
                "faces": item.faces,
                "src": output.index,
            }
        )
        self.frames += 1

    def _open(self, output: Output, raw: np.ndarray) -> None:
        height, width = raw.shape[:2]
        tc = self.timecoder(output.wall_ns, output.pts_s)
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

    def _tick(self) -> None:
        self._sidecar.flush()
        self.take.update_info(frames=self.frames)
        self.disk_free = (self._free_bytes or disk_free)(self.take.path)
        if self.disk_free < self.stop_free_bytes:
            raise _Stop(
                f"disk full ({self.disk_free / GB:.2f} GB free in {self.take.path.parent}, "
                f"below the {self.stop_free_bytes / GB:.2f} GB reserve)"
            )

    def _finish(self) -> None:
        self._accepting = False
        while True:  # frames still queued after a failure: let their pictures go
            try:
                self._queue.get_nowait()
            except queue.Empty:
                break
        for writer in (self._raw, self._aged):
            if writer is None:
                continue
            try:
                writer.close()
            except Exception as exc:  # a full disk may refuse the last fragment
                log.warning("take %s: closing %s: %s", self.take.id, writer.path, exc)
        try:
            self._sidecar.close()
        except OSError as exc:
            log.warning("take %s: closing the sidecar: %s", self.take.id, exc)
        status = self.status_text if self.status_text != "recording" else "complete"
        self.status_text = status
        try:
            self.take.update_info(frames=self.frames, status=status)
            self.take.release()
        except OSError as exc:
            log.error("take %s: could not write take.json: %s", self.take.id, exc)
        if self.dropped:
            log.warning("take %s: %d frame(s) dropped by the recorder", self.take.id, self.dropped)
        log.info("take %s: %s, %d frames", self.take.id, status, self.frames)


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
    """Headless: build the live pipeline, record ``seconds`` of it as a take, return its info."""
    from agecast.pipeline.build import build

    store = TakeStore(settings.resolved_takes_dir)
    store.check_new(scene, take, camera)  # before minutes of model loading, not after
    built = build(settings, mode="live")
    pipeline = built.pipeline
    pipeline.start()
    try:
        recorder = Recorder.begin(
            store,
            scene,
            take,
            camera,
            settings=settings,
            look=built.fx.look,
            identity=built.identity,
            source_uri=settings.source,
            fps=pipeline.source.fps,
            preset=preset,
        )
    except AgecastError:
        built.close()
        raise
    wanted = max(1, round(seconds * pipeline.source.fps))
    reason: str | None = None
    try:
        for output in pipeline.outputs():
            if not recorder.active:
                break
            if output is not None:
                recorder.offer(output)
                if progress is not None:
                    progress(recorder.offered, wanted)
            if recorder.offered + recorder.dropped >= wanted:
                break
    except KeyboardInterrupt:
        reason = "interrupted (Ctrl-C)"
        raise
    finally:
        info = recorder.stop(reason)
        built.close()
    if pipeline.error is not None and info.frames == 0:
        raise pipeline.error
    return info
