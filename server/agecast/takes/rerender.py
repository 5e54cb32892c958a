"""Re-render a take with changed settings, through the same pipeline as live, into a new version.

raw.mp4 is decoded and every frame goes through :class:`~agecast.pipeline.runner.Pipeline` in
``render`` mode (lossless hand-offs: no frame is dropped) with the ``aged`` layout, so the face
stages, colour transfer, paste-back and the visible AI mark are the live ones. The faces are
replayed from the source version's sidecar (exactly the faces recorded live), and each setting
change the sidecar logged is made again at its frame, unless the re-render overrides that
setting. With nothing overridden, the new version reproduces the recorded aged picture up to
the raw picture's codec rounding. Each render writes ``versions/vN/`` (aged.mp4, sidecar.jsonl,
render.json); nothing is overwritten.

Also here: :func:`export_take` (MP4 remux or ProRes, timecode kept) and :class:`RenderJobs`,
one background render at a time for the API.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import IO, Any, Literal

import av
import torch
from pydantic import ValidationError

from agecast.cast.router import CAST_KEY, CastTag
from agecast.errors import AgecastError, SettingsError, TakeError
from agecast.frames import FaceBox, Frame, Replayed
from agecast.media.avframe import Yuv420Patcher
from agecast.pipeline.build import Built, assemble, device_and_backend
from agecast.pipeline.controls import LOOK_FIELDS
from agecast.pipeline.fx import Look
from agecast.pipeline.runner import Output
from agecast.settings import Settings, explain
from agecast.sources.av_source import FileSource
from agecast.takes.recorder import (
    AGED_FORMAT,
    AGED_OPTIONS,
    FragmentedMp4,
    aged_frame,
    face_records,
    identity_ref,
    look_dict,
    settings_doc,
    source_yuv,
    to_array,
)
from agecast.takes.store import IdentityRef, RenderInfo, Take, now_iso, write_json_atomic

log = logging.getLogger(__name__)

RENDER_KEYS = (
    "identity", "age", "age_offsets", "blend", "color_transfer", "mask_feather", "ai_mark",
)  # fmt: skip
# Recorded settings a re-render keeps (the rest — devices, folders — are this machine's).
CARRIED = (
    "detect_every", "faces", "max_faces", "smoothing", "detector_threshold", "insightface_dir",
    "blend", "color_transfer", "mask_feather", "age", "age_offsets", "ai_mark",
)  # fmt: skip

Progress = Callable[[int, int, float], None]  # frames done, frames in all, frames per second


def parse_sets(items: list[str]) -> dict[str, Any]:
    """``["blend=0.5", "age=none", …]`` → checked overrides (:class:`SettingsError` if bad)."""
    values: dict[str, Any] = {}
    for item in items:
        key, sep, text = item.partition("=")
        key = key.strip().replace("-", "_")
        if not sep or not key:
            raise SettingsError(f"--set {item!r}: write key=value, e.g. --set blend=0.5")
        text = text.strip()
        # age=none: the identity's own age; every other value is taken as written
        values[key] = None if key == "age" and text.lower() in ("none", "null", "") else text
    return check_overrides(values)


def check_overrides(values: dict[str, Any]) -> dict[str, Any]:
    """Only re-renderable settings, each valid (strings converted as settings would be)."""
    unknown = sorted(set(values) - set(RENDER_KEYS))
    unset = sorted(k for k, v in values.items() if v is None and k != "age")
    if unset:
        raise SettingsError(f"re-render setting(s) {', '.join(unset)} need a value")
    if unknown:
        raise SettingsError(
            f"cannot re-render with {', '.join(unknown)}; settings a re-render changes: "
            f"{', '.join(RENDER_KEYS)}"
        )
    try:
        checked = Settings.model_validate({k: v for k, v in values.items() if v is not None})
    except ValidationError as exc:
        raise SettingsError(f"cannot re-render: {explain(exc)}") from exc
    return {k: (getattr(checked, k) if values[k] is not None else None) for k in values}


@dataclass
class _Recorded:
    """What a version's sidecar says: the start, faces per frame, changes per frame."""

    start: dict[str, Any]
    frames: dict[int, dict[str, Any]]
    changes: dict[int, dict[str, Any]]

    @classmethod
    def read(cls, take: Take, version: str) -> _Recorded:
        path = take.sidecar_path(version)
        if not path.is_file():
            raise TakeError(f"take {take.id} {version} has no sidecar ({path}); cannot re-render")
        records = take.read_sidecar(version)
        if not records or records[0].get("type") != "start":
            raise TakeError(f"{path} does not begin with a start record; cannot re-render")
        frames = {r["i"]: r for r in records if r.get("type") == "frame"}
        changes: dict[int, dict[str, Any]] = {}
        for r in records:
            if r.get("type") == "set":
                changes.setdefault(r["i"], {}).update(r.get("values", {}))
        return cls(records[0], frames, changes)

    @property
    def settings(self) -> dict[str, Any]:
        return dict(self.start.get("settings", {}))

    @property
    def identity(self) -> IdentityRef:
        return IdentityRef.model_validate(self.start["identity"])


def _faces(record: dict[str, Any]) -> list[FaceBox]:
    faces = []
    for face in record.get("faces", []):
        tag = face.get("cast")
        faces.append(
            FaceBox(
                box=torch.tensor(face["box"], dtype=torch.float32),
                score=float(face.get("score", 1.0)),
                landmarks5=torch.tensor(face["landmarks5"], dtype=torch.float32),
                track_id=int(face.get("track", -1)),
                extras={CAST_KEY: CastTag.from_record(tag)} if isinstance(tag, dict) else {},
            )
        )
    return faces


class ReplaySource(FileSource):
    """A take's raw picture, each frame carrying what the take recorded for it (its faces, and
    the look changes and identity switch made there, less what the re-render overrides): the
    re-render's source; the FX does again what the frame says (``Frame.replayed``)."""

    def __init__(self, take: Take, recorded: _Recorded, overrides: dict[str, Any]) -> None:
        super().__init__(str(take.raw_path), take.raw_path, live=False, loop=False)
        self.recorded = recorded
        self.overrides = overrides
        self.replayed = 0  # frames whose faces came from the sidecar
        self.tracked = 0  # frames past the sidecar's end (or held live): faces found again

    def read(self) -> Frame | None:
        frame = super().read()
        if frame is None:
            return None
        return dataclasses.replace(frame, replayed=self._replayed(frame.index))

    def _replayed(self, index: int) -> Replayed:
        change = self.recorded.changes.get(index, {})
        look = {k: v for k, v in change.items() if k in LOOK_FIELDS and k not in self.overrides}
        ident = change.get("identity")
        identity = None
        if isinstance(ident, dict) and "identity" not in self.overrides:
            identity = str(ident["id"])
        record = self.recorded.frames.get(index)
        faces = None
        if record is None or record.get("held"):  # no faces recorded for it: find them
            self.tracked += 1
        else:
            self.replayed += 1
            faces = _faces(record)
        return Replayed(faces, look, identity)


def _initial_look(settings: dict[str, Any], overrides: dict[str, Any]) -> Look:
    base = {k: settings[k] for k in LOOK_FIELDS if k in settings}
    base.update({k: v for k, v in overrides.items() if k in LOOK_FIELDS})
    return Look(**base)


def _render_settings(
    machine: Settings, recorded: _Recorded, overrides: dict[str, Any], identity: str
) -> Settings:
    values = machine.model_dump()
    carried = recorded.settings
    for key in CARRIED:
        if key in carried:
            values[key] = carried[key]
    if values.get("insightface_dir") and not Path(values["insightface_dir"]).is_dir():
        log.warning("recorded insightface_dir %s is not here; masks as without it", carried)
        values["insightface_dir"] = None
    values.update({k: v for k, v in overrides.items() if k != "identity"})
    values["identity"] = identity
    return Settings.model_validate(values)


class _VersionWriter:
    """The new version's aged.mp4 and sidecar, frame indices and timecodes from the source."""

    def __init__(self, take: Take, version: str, recorded: _Recorded, fps: float) -> None:
        self.take, self.version, self.recorded, self.fps = take, version, recorded, fps
        self.frames = 0
        self._mp4: FragmentedMp4 | None = None
        self._sidecar: IO[str] = take.sidecar_path(version).open("w")
        self._look: Look | None = None
        self._identity: IdentityRef | None = None
        self._patcher = Yuv420Patcher()

    def start(
        self, identity: IdentityRef, settings: dict[str, Any], look: Look, **extra: Any
    ) -> None:
        self._look, self._identity = look, identity
        self._line(
            {"type": "start", "identity": identity.model_dump(), "settings": settings, **extra}
        )

    def write(self, output: Output) -> None:
        aged = to_array(output.aged)
        if self._mp4 is None:
            height, width = aged.shape[:2]
            self._mp4 = FragmentedMp4(
                self.take.aged_path(self.version), self.fps, width, height, AGED_OPTIONS,
                pix_fmt=AGED_FORMAT, timecode_start=self.take.info.timecode_start,
            )  # fmt: skip
        raw = to_array(output.raw)
        yuv = source_yuv(output.raw_yuv, raw) if raw.shape == aged.shape else None
        at = output.pts_s  # the raw take's own timestamps
        if yuv is not None:  # the raw take's own 4:2:0 outside the faces
            self._mp4.write(aged_frame(self._patcher, yuv, raw, aged), at)
        else:
            self._mp4.write(aged, at)
        i = output.index
        changes: dict[str, Any] = {}
        if output.look is not None and output.look != self._look:
            old, new = look_dict(self._look or output.look), look_dict(output.look)
            changes.update({k: v for k, v in new.items() if old[k] != v})
            self._look = output.look
        if output.identity is not None and identity_ref(output.identity) != self._identity:
            self._identity = identity_ref(output.identity)
            changes["identity"] = self._identity.model_dump()
        if changes:
            self._line({"type": "set", "i": i, "values": changes})
        source = self.recorded.frames.get(i, {})
        self._line(
            {
                "type": "frame",
                "i": i,
                "tc": source.get("tc"),
                "pts": source.get("pts", round(i / self.fps, 6)),
                "fx": output.fx.value,
                "faces": face_records(output),
            }
        )
        self.frames += 1

    def _line(self, record: dict[str, Any]) -> None:
        self._sidecar.write(json.dumps(record, separators=(",", ":")) + "\n")

    def close(self) -> None:
        try:
            if self._mp4 is not None:
                self._mp4.close()
        finally:
            self._sidecar.close()


def rerender(
    take: Take,
    overrides: dict[str, Any],
    settings: Settings,
    *,
    from_version: str = "v1",
    progress: Progress | None = None,
) -> str:
    """Render ``take`` again from its raw picture with ``overrides``; returns the new version.

    ``settings`` supplies this machine's side (identities folder, backend, device)."""
    overrides = check_overrides(overrides)
    take.require_version(from_version)
    if not take.raw_path.is_file():
        raise TakeError(f"take {take.id} has no raw picture ({take.raw_path}); cannot re-render")
    if take.info.status == "recording":
        raise TakeError(f"take {take.id} is still recording; stop it before re-rendering")
    recorded = _Recorded.read(take, from_version)
    run = _Run.open(take, recorded, overrides, settings)
    try:
        version = take.new_version()
        render_info = RenderInfo.model_validate(
            {
                "from": from_version,
                "settings": overrides,
                "created": now_iso(),
                "identity": identity_ref(run.built.identity),
                "status": "rendering",
            }
        )
        data = render_info.model_dump(mode="json", by_alias=True)
        write_json_atomic(take.render_path(version), data)
        log.info("re-rendering take %s %s → %s with %s", take.id, from_version, version, overrides)
        writer = _VersionWriter(take, version, recorded, take.info.fps or 30.0)
        doc = settings_doc(run.settings, run.built.fx.look)
        extra = {"from": from_version, "overrides": overrides}
        writer.start(identity_ref(run.built.identity), doc, run.built.fx.look, **extra)
        error, elapsed = run.render(writer, max(take.info.frames, len(recorded.frames)), progress)
    finally:
        run.close()
    return _finish(take, version, render_info, writer.frames, elapsed, error, run.replay)


@dataclass
class _Run:
    """A re-render's pipeline: the take's raw picture (a :class:`ReplaySource`) through the
    recorded (or overridden) look, faces and identity switches done again as recorded."""

    settings: Settings
    built: Built
    replay: ReplaySource

    @classmethod
    def open(
        cls, take: Take, recorded: _Recorded, overrides: dict[str, Any], machine: Settings
    ) -> _Run:
        identity_name = str(overrides.get("identity") or recorded.identity.id)
        settings = _render_settings(machine, recorded, overrides, identity_name)
        device, backend = device_and_backend(settings)  # as every run: engines_dir included
        replay = ReplaySource(take, recorded, overrides)
        built = assemble(
            settings, device, backend, str(take.raw_path), mode="render", loop=False,
            layout="aged", source=replay,
        )  # fmt: skip
        identity = built.identity
        if "age" in overrides and overrides["age"] is not None and identity.age_control is None:
            built.close()
            raise SettingsError(
                f"identity {identity.manifest.id} has no age control; re-render without age, or "
                "pick an identity with one"
            )
        if (
            "identity" not in overrides
            and identity.manifest.model.sha256 != recorded.identity.sha256
        ):
            log.warning(
                "take %s was recorded with %s sha256 %s; the installed one is %s",
                take.id, recorded.identity.id, recorded.identity.sha256,
                identity.manifest.model.sha256,
            )  # fmt: skip
        built.fx.look = _initial_look(recorded.settings, overrides)
        return cls(settings, built, replay)

    def render(
        self, writer: _VersionWriter, total: int, progress: Progress | None
    ) -> tuple[AgecastError | None, float]:
        """Every frame into ``writer``; (the error that ended it, if any, and the seconds)."""
        started = time.monotonic()
        error: AgecastError | None = None
        try:
            self.built.pipeline.start()
            for output in self.built.pipeline.outputs():
                if output is None:
                    continue
                writer.write(output)
                if progress is not None:
                    elapsed = max(1e-6, time.monotonic() - started)
                    progress(writer.frames, max(total, writer.frames), writer.frames / elapsed)
            error = self.built.pipeline.error
        except AgecastError as exc:
            error = exc
        finally:
            self.built.pipeline.stop()
            writer.close()
        return error, time.monotonic() - started

    def close(self) -> None:
        self.built.close()  # with the identities the take switched to (the FX's pool)


def _finish(
    take: Take,
    version: str,
    render_info: RenderInfo,
    frames: int,
    elapsed: float,
    error: AgecastError | None,
    replay: ReplaySource,
) -> str:
    """Write the version's render record; TakeError if it failed."""
    status: Literal["complete", "failed"] = "failed" if error or frames == 0 else "complete"
    render_info = render_info.model_copy(
        update={
            "status": status,
            "error": str(error) if error else None if frames else "no frames decoded",
        }
    )
    data = render_info.model_dump(mode="json", by_alias=True)
    data.update(
        frames=frames,
        seconds=round(elapsed, 3),
        fps=round(frames / max(elapsed, 1e-6), 2),
        faces_replayed=replay.replayed,
        faces_tracked=replay.tracked,
    )
    write_json_atomic(take.render_path(version), data)
    if status == "failed":
        raise TakeError(f"re-render of take {take.id} into {version} failed: {data['error']}")
    log.info(
        "take %s %s: %d frames in %.1f s (%.1f fps)",
        take.id, version, frames, elapsed, data["fps"],
    )  # fmt: skip
    return version


# export ----------------------------------------------------------------------------------------
ExportFormat = Literal["mp4", "prores"]


def export_take(take: Take, version: str, fmt: ExportFormat, out: Path) -> Path:
    """Write ``version`` ("raw" or vN) of ``take`` to ``out``, its start timecode kept.

    mp4: the H.264 stream copied into a plain (unfragmented) MP4, no re-encode. prores: ProRes
    422 HQ (prores_ks, 10-bit 4:2:2) in a QuickTime .mov."""
    src = take.picture(version)
    tc = take.info.timecode_start
    out.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "mp4":
        _remux(src, out, tc)
    elif fmt == "prores":
        if "prores_ks" not in av.codecs_available:
            raise TakeError("this PyAV's FFmpeg has no prores_ks encoder; export --format mp4")
        _prores(src, out, tc)
    else:
        raise TakeError(f"unknown export format {fmt!r}; use mp4 or prores")
    log.info("exported take %s %s to %s (%s, timecode %s)", take.id, version, out, fmt, tc)
    return out


def _remux(src: Path, out: Path, tc: str) -> None:
    with av.open(str(src)) as inp, av.open(str(out), "w", format="mp4") as dst:
        video = inp.streams.video[0]
        stream = dst.add_stream_from_template(video)
        # the MP4 muxer writes a timecode track only for a stream with a frame rate
        stream.codec_context.framerate = video.average_rate or video.guessed_rate or Fraction(30)
        stream.metadata["timecode"] = tc
        dst.metadata["timecode"] = tc
        for packet in inp.demux(video):
            if packet.dts is None:
                continue
            packet.stream = stream
            dst.mux(packet)


def _prores(src: Path, out: Path, tc: str) -> None:
    with av.open(str(src)) as inp, av.open(str(out), "w", format="mov") as dst:
        video = inp.streams.video[0]
        rate = Fraction(video.average_rate or video.guessed_rate or 30)
        stream = dst.add_stream("prores_ks", rate=rate)
        stream.width, stream.height = video.codec_context.width, video.codec_context.height
        stream.pix_fmt = "yuv422p10le"
        stream.options = {"profile": "3"}  # 422 HQ
        stream.metadata["timecode"] = tc
        dst.metadata["timecode"] = tc
        for n, frame in enumerate(inp.decode(video)):
            picture = frame.reformat(format="yuv422p10le")
            picture.pts = n
            picture.time_base = 1 / rate
            dst.mux(stream.encode(picture))
        dst.mux(stream.encode(None))


# background jobs (API) -------------------------------------------------------------------------
@dataclass
class RenderJob:
    id: str
    take: str
    overrides: dict[str, Any]
    state: Literal["running", "complete", "failed"] = "running"
    done: int = 0
    total: int = 0
    fps: float = 0.0
    version: str | None = None
    error: str | None = None
    started: str = dataclasses.field(default_factory=now_iso)

    def public(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class RenderJobs:
    """Re-renders for the API: one at a time, each on its own thread, progress readable."""

    def __init__(self) -> None:
        self.jobs: dict[str, RenderJob] = {}
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def busy(self) -> RenderJob | None:
        return next((j for j in self.jobs.values() if j.state == "running"), None)

    def start(
        self,
        take: Take,
        overrides: dict[str, Any],
        settings: Settings,
        on_done: Callable[[RenderJob], None] | None = None,
    ) -> RenderJob:
        overrides = check_overrides(overrides)
        with self._lock:
            running = self.busy
            if running is not None:
                raise TakeError(
                    f"a re-render is running (take {running.take}, job {running.id}, "
                    f"{running.done}/{running.total}); one at a time — try again when it ends"
                )
            job = RenderJob(uuid.uuid4().hex[:12], take.id, overrides, total=take.info.frames)
            self.jobs[job.id] = job

        def progress(done: int, total: int, fps: float) -> None:
            job.done, job.total, job.fps = done, total, round(fps, 2)

        def run() -> None:
            try:
                job.version = rerender(take, overrides, settings, progress=progress)
                job.state = "complete"
            except Exception as exc:  # reported through the job, never lost
                log.exception("re-render job %s of take %s failed", job.id, take.id)
                job.error, job.state = str(exc), "failed"
            if on_done is not None:
                on_done(job)

        self._thread = threading.Thread(target=run, name=f"agecast-render-{job.id}", daemon=True)
        self._thread.start()
        return job

    def get(self, job_id: str) -> RenderJob:
        job = self.jobs.get(job_id)
        if job is None:
            raise TakeError(f"no render job {job_id!r}; jobs: {', '.join(self.jobs) or 'none'}")
        return job

    def wait(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)
