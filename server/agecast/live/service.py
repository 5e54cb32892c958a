"""The live service: pipeline → encode thread → fan-out, plus status and operator controls.

capture thread → device thread → (slot) → encode thread → asyncio loop → viewers

One service per camera: several cameras (the ``cameras`` setting) share one backend and run a
service each (:func:`live_services`); a camera that fails stops only its own.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections import deque
from functools import partial
from typing import Any

from pydantic import ValidationError

from agecast.cast.matching import Recognition
from agecast.cast.router import tag_of
from agecast.compose.marks import Marker
from agecast.errors import AgecastError, SettingsError, SourceError, TakeError
from agecast.frames import FxState
from agecast.inference.triton_backend import TritonModel
from agecast.live.ndi_out import NdiOutputs
from agecast.live.outputs import OutputFeed
from agecast.live.program_out import ProgramOut, camera_url
from agecast.live.rtsp_out import RtspOut, listen_address
from agecast.live.status import CameraStatus
from agecast.media.encoder import H264Encoder, encode_jpeg
from agecast.media.fanout import Fanout, Message
from agecast.media.protocol import LAYOUT_CODES, Flags, PictureHeader
from agecast.media.rtsp import Gate
from agecast.pipeline.build import Built, build, load_identity
from agecast.pipeline.cameras import build_cameras
from agecast.pipeline.controls import CONTROL_KEYS, LOOK_KEYS, MEMBER_KEYS
from agecast.pipeline.fx import MemberLook
from agecast.pipeline.metrics import Timings, percentiles
from agecast.pipeline.runner import Output
from agecast.pipeline.transfer import to_host
from agecast.settings import Settings, explain
from agecast.sources import SourceState
from agecast.takes.recorder import Recorder
from agecast.takes.store import Take, TakeInfo, TakeStore

log = logging.getLogger(__name__)


def live_services(settings: Settings) -> list[LiveService]:
    """A service per camera of ``settings.cameras`` on one backend, or one for ``source``."""
    if not settings.cameras:
        return [LiveService(settings)]
    built = build_cameras(settings, settings.cameras, mode="live")
    return [
        LiveService(settings, camera, name=camera.name, index=i)
        for i, camera in enumerate(built.cameras)
    ]


class LiveService:
    """One camera's live monitor. ``built`` (e.g. a camera of ``build_cameras``) is used as is;
    without it the pipeline is built from ``settings.source``. A ``name`` marks the camera as
    one of several: errors name it and its takes are labelled with it by default."""

    def __init__(
        self,
        settings: Settings,
        built: Built | None = None,
        *,
        name: str | None = None,
        index: int = 0,
    ) -> None:
        self.settings = settings
        self.name = name or "cam1"
        self.index = index  # its place among the cameras (program_out: port + index)
        self._named = name is not None
        self.built: Built = built if built is not None else build(settings, mode="live")
        self.encoder = H264Encoder(30.0)  # the main stream, shared by every unlabelled viewer
        self._labelled: dict[str, H264Encoder] = {}  # one per burnt-in viewer label
        self.marker = Marker()  # used on the encode thread only
        self.fanout = Fanout(self.request_key_frame)
        self.timings = Timings(cache_s=1.0)  # encode ms, frame→packet ms
        # every viewer's socket asks for status each second: summarise timings once a second
        self.built.pipeline.timings.cache_s = 1.0
        self.glass_ms: deque[float] = deque(maxlen=2000)
        self.last_output: Output | None = None
        self.fx_state = FxState.ON  # the last picture's
        self._thread: threading.Thread | None = None
        self._control_lock = threading.Lock()
        self.recorder: Recorder | None = None  # the take being (or last) recorded
        self.preset: str | None = None  # the preset last applied
        self.ndi: NdiOutputs | None = None  # this camera's NDI sources (ndi_out), once started
        self.program: ProgramOut | None = None  # its MPEG-TS program stream (program_out)
        self.rtsp: RtspOut | None = None  # its RTSP stream (rtsp_out)
        self.gate: Gate | None = None  # who may pull the RTSP stream (set by the server)
        self.ndi_error: str | None = None  # why the NDI outputs asked for are not running

    # lifecycle -------------------------------------------------------------------------------
    def open_source(self) -> None:
        """Open the source now (``start`` would): a missing file or camera fails before
        anything is served."""
        try:
            self.built.pipeline.source.open()
        except SourceError as exc:
            if not self._named:
                raise
            raise SourceError(f"camera {self.name}: {exc}") from exc

    def start(self) -> None:
        pipeline = self.built.pipeline
        self.open_source()
        pipeline.start()  # the source is open: opening it again does nothing
        self.encoder = H264Encoder(pipeline.source.fps)
        self._start_outputs(pipeline.source.fps, pipeline.source.uri)
        self._thread = threading.Thread(
            target=self._encode_loop, name="agecast-encode", daemon=True
        )
        self._thread.start()

    def _start_outputs(self, fps: float, uri: str) -> None:
        """The NDI sources and the program stream the settings ask for (video village)."""
        settings = self.settings
        if settings.ndi_out:
            try:
                self.ndi = NdiOutputs(
                    self.name, list(settings.ndi_out), prefix=settings.ndi_name, fps=fps,
                    source_uri=uri, label=settings.ndi_label,
                )  # fmt: skip
            except AgecastError as exc:  # the monitor runs without NDI, and says so
                self.ndi_error = f"NDI out is off: {exc}"
                log.error("camera %s: %s", self.name, self.ndi_error)
        if settings.program_out:
            self.program = ProgramOut(
                camera_url(settings.program_out, self.index), settings.program_kind, fps,
                camera=self.name, label=settings.ndi_label,
            )  # fmt: skip
        if settings.rtsp_out:
            if self.gate is None:
                raise SettingsError(
                    "rtsp_out needs the server's links to let viewers in: run it with "
                    "`agecast serve`"
                )
            self.rtsp = RtspOut(
                listen_address(settings.rtsp_out, self.index), settings.program_kind, fps,
                camera=self.name, gate=self.gate, label=settings.ndi_label,
                program=self.program,  # both on: one H.264 encode for both
            )  # fmt: skip

    @property
    def feeds(self) -> list[OutputFeed]:
        """The video village outputs running: NDI, program stream, RTSP."""
        return [f for f in (self.ndi, self.program, self.rtsp) if f is not None]

    def stop(self) -> None:
        if self.recorder is not None and self.recorder.active:
            self.recorder.stop("the monitor was shut down")
        self.fanout.close()
        for feed in self.feeds:
            feed.close()
        self.built.close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    # encode thread ---------------------------------------------------------------------------
    def _encode_loop(self) -> None:
        for output in self.built.pipeline.outputs():
            if output is None:
                continue
            self.last_output = output
            self.fx_state = output.fx
            recorder = self.recorder
            if recorder is not None and not recorder.finished:  # also the last, after a stop
                recorder.offer(output)  # a reference on a queue: never blocks the live path
            for feed in self.feeds:  # the same: a slot each, their own drops
                feed.offer(output)
            for mark in self.fanout.marks():  # nobody watching: no encode at all
                try:
                    self.fanout.publish_threadsafe(self._encode(output, mark))
                except Exception:  # an encoder failure must not end the live monitor
                    log.exception("encoding frame %d (%s) failed", output.index, mark or "main")
            for gone in set(self._labelled) - self.fanout.marks():
                del self._labelled[gone]

    def request_key_frame(self, mark: str | None = None) -> None:
        encoder = self.encoder if mark is None else self._labelled.get(mark)
        if encoder is not None:  # a new labelled encoder starts with an IDR anyway
            encoder.request_key_frame()

    def _encode(self, output: Output, mark: str | None) -> Message:
        t0 = time.perf_counter_ns()
        h264 = jpeg = None
        key = False
        flags = Flags.FX_ERROR if output.fx is FxState.ERROR else Flags(0)
        picture = output.picture
        encoder = self.encoder
        if mark is not None:  # this viewer's own copy, its label burnt in (traceable if leaked)
            picture = picture.clone()
            self.marker.burn(picture, mark, "bottom-left")
            encoder = self._labelled.setdefault(mark, H264Encoder(self.encoder.rate_fps))
        copies = self.built.pipeline.copies
        height, width = picture.shape[0], picture.shape[1]
        if self.fanout.wants("h264", mark):
            # a GPU picture comes down as 4:2:0 made on the GPU (half RGB's bytes), counted
            encoded = encoder.encode(picture, on_download=partial(copies.add, "d2h"))
            key = encoded.key
            key_flag = Flags.KEY if key else Flags(0)
            h264 = self._header(output, flags | key_flag, width, height, encoded.data)
        if self.fanout.wants("jpeg", mark):  # only while a viewer needs JPEG: RGB comes down
            data = encode_jpeg(to_host(picture, copies))
            jpeg = self._header(output, flags | Flags.KEY | Flags.JPEG, width, height, data)
        if mark is None:
            self.timings.add("encode", (time.perf_counter_ns() - t0) / 1e6)
            self.timings.add("frame_to_packet", (time.monotonic_ns() - output.capture_ns) / 1e6)
        return Message(output.index, key, h264, jpeg, mark)

    @staticmethod
    def _header(output: Output, flags: Flags, width: int, height: int, payload: bytes) -> bytes:
        header = PictureHeader(
            flags,
            LAYOUT_CODES[output.layout],
            output.fx,
            output.index,
            output.wall_ns,
            time.time_ns(),
            width,
            height,
            len(payload),
        )
        return header.pack() + payload

    # controls --------------------------------------------------------------------------------
    def control(self, values: dict[str, Any]) -> dict[str, Any]:
        """Apply operator changes (validated as settings); takes effect on the next frame."""
        unknown = sorted(set(values) - CONTROL_KEYS)
        if unknown:
            raise SettingsError(
                f"unknown control(s) {', '.join(unknown)}; valid: {', '.join(sorted(CONTROL_KEYS))}"
            )
        with self._control_lock:
            look_values = {k: v for k, v in values.items() if k in LOOK_KEYS}
            try:
                checked = Settings.model_validate(
                    {
                        **self.settings.model_dump(),
                        **{k: v for k, v in values.items() if k not in ("bypass", "members")},
                    }
                )
            except ValidationError as exc:  # a 422 in the settings' own words, never a 500
                raise SettingsError(f"invalid control: {explain(exc)}") from exc
            if "bypass" in values and not isinstance(values["bypass"], bool):
                raise SettingsError(f"bypass must be true or false (got {values['bypass']!r})")
            fx = self.built.fx
            if "identity" in values and values["identity"] != fx.identity.manifest.id:
                self._swap_identity(str(values["identity"]))
            if "members" in values:
                look_values["members"] = self._members(values["members"])
            if look_values:
                fx.set_look(
                    **{
                        k: (v if k in ("bypass", "members") else getattr(checked, k))
                        for k, v in look_values.items()
                    }
                )
            if "layout" in values:
                self.built.pipeline.layout = checked.layout
            self.settings = checked
            recorder = self.recorder
            # a take logs look and identity changes at the frame that used them; layout here
            if recorder is not None and recorder.active and "layout" in values:
                recorder.note({"layout": checked.layout})
            log.info("operator changed %s", ", ".join(f"{k}={v!r}" for k, v in values.items()))
        return self.status()

    def _members(self, changes: object) -> tuple[MemberLook, ...]:
        """The cast's controls with ``changes`` ({name: {identity, age, blend, bypass}}) made;
        a member's new identity is loaded here, before any frame asks for it."""
        fx = self.built.fx
        members = {m.name: m for m in fx.look.members}
        if not isinstance(changes, dict):
            raise SettingsError("members must be an object: {NAME: {identity, age, blend, bypass}}")
        for name, change in changes.items():
            if name not in members:
                known = ", ".join(members) or "no cast is loaded"
                raise SettingsError(f"no cast member called {name!r} ({known})")
            if not isinstance(change, dict) or not set(change) <= MEMBER_KEYS:
                raise SettingsError(
                    f"members.{name} takes {', '.join(sorted(MEMBER_KEYS))} (got {change!r})"
                )
            identity = change.get("identity", members[name].identity)
            if identity is not None and identity != fx.identity.manifest.id:
                fx.member_identity(str(identity))  # IdentityError names it; nothing changes
            try:
                members[name] = dataclasses.replace(members[name], **change)
            except TypeError as exc:
                raise SettingsError(f"members.{name}: {exc}") from exc
        return tuple(members.values())

    def _swap_identity(self, name: str) -> None:
        identity = load_identity(self.settings, self.built.backend, name, installed_only=True)
        # the FX closes the old model once no frame is using it (one may be mid-way with it)
        self.built.fx.set_identity(identity)
        self.built.identity = identity

    # takes -----------------------------------------------------------------------------------
    def start_recording(self, scene: str, take: str, camera: str | None = None) -> Take:
        """Start recording a take of the live pictures (TakeError: bad name, exists, disk)."""
        with self._control_lock:
            if self.recorder is not None and self.recorder.active:
                raise TakeError(
                    f"already recording take {self.recorder.take.id}; stop it before the next"
                )
            if camera is None and self._named:
                camera = self.name  # takes of several cameras at one scene/take do not collide
            self.recorder = Recorder.begin(
                TakeStore(self.settings.resolved_takes_dir), scene, take, camera,
                settings=self.settings, built=self.built, preset=self.preset,
            )  # fmt: skip
            return self.recorder.take

    def stop_recording(self) -> TakeInfo:
        """Finish the take being recorded (queued frames are written first)."""
        recorder = self.recorder
        if recorder is None or not recorder.active:
            raise TakeError("not recording: start a take first")
        info = recorder.stop()
        self.built.pipeline.tap = self.built.pipeline.pause = None
        return info

    # status ----------------------------------------------------------------------------------
    def record_glass(self, values: list[float]) -> None:
        self.glass_ms.extend(v for v in values if 0 <= v < 60_000)

    def status(self) -> dict[str, Any]:
        pipeline = self.built.pipeline
        stats = pipeline.stats()
        manifest = self.built.fx.identity.manifest
        look = self.built.fx.look
        source_state = pipeline.source.state
        stopped = not pipeline.running and pipeline.error is not None
        fx = FxState.NO_SIGNAL if source_state != SourceState.LIVE or stopped else self.fx_state
        encode = self.timings.summary()
        packet = encode.get("frame_to_packet", percentiles([]))
        glass = percentiles(list(self.glass_ms)[-300:])
        last = self.last_output
        total = stats["frame_to_output_ms"]
        status = {
            "camera": self.name,
            "source": {
                "uri": pipeline.source.uri,
                "state": str(source_state),
                "fps": pipeline.source.fps,
            },
            "identity": {
                "id": manifest.id,
                "display_name": manifest.display_name,
                "actor": manifest.actor,
                "age_label": manifest.age_label,
                "purpose": manifest.purpose,
                "age_control": self.built.fx.identity.age_control,
                "local_ages": self.built.fx.identity.local_ages,
            },
            "fx": fx,
            "fx_errors": stats["fx_errors"],
            "watchdog": stats["watchdog"],
            "device_errors": stats["device_errors"],
            "look": dataclasses.asdict(look),
            "layout": pipeline.layout,
            "backend": self.built.backend.name,
            "device": str(self.built.device),
            "fps_in": stats["fps_in"],
            "fps_out": stats["fps_out"],
            "frames_in": stats["frames_in"],
            "frames_out": stats["frames_out"],
            "dropped": stats["dropped"],
            "stages_ms": {
                **stats["stages_ms"],
                **{k: v for k, v in encode.items() if k == "encode"},
            },
            "server_latency_ms": {"p50": packet["p50"], "p95": packet["p95"]},
            "frame_to_output_ms": {"p50": total["p50"], "p95": total["p95"]},
            "glass_to_glass_ms": {
                "p50": glass["p50"],
                "p95": glass["p95"],
                "count": glass["count"],
            },
            "viewers": len(self.fanout.viewers),
            "width": int(last.picture.shape[1]) if last is not None else None,
            "height": int(last.picture.shape[0]) if last is not None else None,
            "codec": self.encoder.codec,
            "error": str(pipeline.error) if isinstance(pipeline.error, AgecastError) else None,
            "recording": self.recorder.status() if self.recorder is not None else None,
            "preset": self.preset,
            "cast": self._cast_status(),
            "ndi": self.ndi.status() if self.ndi is not None else None,
            "ndi_error": self.ndi_error,
            "program": self.program.status() if self.program is not None else None,
            "rtsp": self.rtsp.status() if self.rtsp is not None else None,
            "triton": _triton_status(self.built.fx.identity.model),
        }
        return CameraStatus.model_validate(status).model_dump(mode="json")

    def _cast_status(self) -> dict[str, Any] | None:
        """The cast's members and their controls, who is in the picture, the faces by
        recognition and what recognising costs (None: no cast, one identity for the main face)."""
        fx = self.built.fx
        router = fx.cast
        if router is None:
            return None
        last = self.last_output  # one frame for who is in the picture and the counts
        tags = [
            tag for face in (last.face_boxes if last is not None else [])
            if (tag := tag_of(face)) is not None
        ]  # fmt: skip
        present = {tag.member: tag.score for tag in tags if tag.member is not None}
        counts = {state.value: 0 for state in Recognition}
        for tag in tags:
            counts[tag.state.value] += 1
        main = fx.identity.manifest.id
        members = [
            {
                "name": m.name,
                "identity": m.identity or main,
                "age": m.age,
                "blend": m.blend,
                "bypass": m.bypass,
                "in_picture": m.name in present,
                "score": round(present[m.name], 3) if m.name in present else None,
            }
            for m in fx.look.members
        ]
        embed = percentiles(router.embed_ms())
        return {
            "members": members,
            "faces": counts,
            "faces_total": dict(router.counts),
            "recognise_face_ms": {"p50": embed["p50"], "p95": embed["p95"]},
            "threshold": router.policy.threshold,
            "recheck_frames": router.recheck_frames,
        }

    def face_tags(self) -> dict[str, Any] | None:
        """The last picture's faces with who they are, for the monitor's name tags: boxes as
        fractions of the camera frame (the page places them over the aged side)."""
        last = self.last_output
        if last is None or self.built.fx.cast is None:
            return None
        height, width = int(last.raw.shape[0]), int(last.raw.shape[1])
        faces = []
        for face in last.face_boxes:
            tag = tag_of(face)
            x0, y0, x1, y1 = face.box.tolist()
            faces.append(
                {
                    "box": [round(x0 / width, 4), round(y0 / height, 4),
                            round(x1 / width, 4), round(y1 / height, 4)],
                    "name": tag.member if tag is not None else None,
                    "state": tag.state.value if tag is not None else "pending",
                }
            )  # fmt: skip
        return {"type": "faces", "i": last.index, "layout": last.layout, "faces": faces}


def _triton_status(model: object) -> dict[str, Any] | None:
    """The identity's Triton link (``--backend triton``), or None when it runs in-process."""
    return model.status() if isinstance(model, TritonModel) else None
