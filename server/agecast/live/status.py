"""The live status as typed models: one definition of what ``/api/status`` (its
``response_model``), the monitor socket's status messages and ``/metrics`` read.

The service builds a :class:`CameraStatus` (so a missing or mistyped field fails where it is
made, not in the page) and hands out its JSON form.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from agecast.frames import FxState


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Quantiles(_Model):
    p50: float
    p95: float


class GlassQuantiles(Quantiles):
    count: int  # samples the page reported (none yet: 0)


class SourceStatus(_Model):
    uri: str  # its password hidden (redact.SourceURI)
    state: str  # live | connecting | reconnecting | ended | failed …
    fps: float


class IdentityStatus(_Model):
    id: str
    display_name: str
    actor: str
    age_label: str
    purpose: str
    age_control: tuple[int, int, int] | None  # (youngest, oldest, default) years
    local_ages: bool  # takes per-region age offsets


class MemberStatus(_Model):
    name: str
    identity: str  # the identity their face gets (the monitor's when they have none)
    age: float | None  # None: the live age
    blend: float | None  # None: the live blend
    bypass: bool
    in_picture: bool
    score: float | None  # their face's match in the last picture


class CastStatus(_Model):
    members: list[MemberStatus]
    faces: dict[str, int]  # the last picture's faces by recognition (pending, recognised, …)
    faces_total: dict[str, int]  # since start
    recognise_face_ms: Quantiles
    threshold: float
    recheck_frames: int


class NdiOutputStatus(_Model):
    kind: str  # aged | raw | side-by-side
    name: str  # the NDI source name receivers pick
    receivers: int  # connected now
    sent: int
    unwatched: int  # frames not sent: no receiver was connected (NDI would compress them)


class NdiStatus(_Model):
    outputs: list[NdiOutputStatus]
    fps: float  # frames sent in the last second (to the outputs with a receiver)
    dropped: int  # pictures replaced before they were sent (NDI's own; never the live path's)


class ProgramStatus(_Model):
    url: str  # where it goes (a password hidden)
    kind: str  # aged | side-by-side
    sent: int
    fps: float  # pictures sent in the last second
    bytes: int
    dropped: int  # pictures replaced before they were sent (its own; never the live path's)
    encoder: str  # libx264 or h264_nvenc


class RtspClientStatus(_Model):
    who: str  # the label of the link it came in with
    sent: int
    lost: int  # pictures it read too slowly for (it resumed at the next key frame)


class RtspStatus(_Model):
    url: str  # where it listens (rtsp://HOST:PORT/<camera>, a viewer link's token added)
    kind: str  # aged | side-by-side
    clients: list[RtspClientStatus]
    sent: int
    fps: float  # pictures sent in the last second
    bytes: int
    dropped: int  # pictures replaced before they were encoded (never the live path's)
    encoder: str
    shares_encoder: bool = False  # sends the program stream's H.264 (program_out on too)


class TritonStatus(_Model):
    """The camera's identity on Triton (``--backend triton``): what its link did."""

    url: str
    model: str
    version: int
    connected: bool
    calls: int
    failures: int  # failed or timed-out calls (each one a raw, flagged frame)
    timeouts: int
    skipped: int  # frames sent raw at once while Triton was down
    connects: int
    last_error: str
    # how its tensors travel, where not as the model declares them (the compact wire:
    # name → uint8 | float16); empty: float32, or not connected yet
    wire: dict[str, str] = {}


class CameraStatus(_Model):
    camera: str
    source: SourceStatus
    identity: IdentityStatus
    fx: FxState
    fx_errors: int
    watchdog: dict[str, Any]
    device_errors: int
    look: dict[str, Any]
    layout: str
    backend: str
    device: str
    fps_in: float
    fps_out: float
    frames_in: int
    frames_out: int
    dropped: dict[str, int]
    stages_ms: dict[str, dict[str, float]]
    server_latency_ms: Quantiles
    frame_to_output_ms: Quantiles
    glass_to_glass_ms: GlassQuantiles
    viewers: int
    width: int | None
    height: int | None
    codec: str | None
    error: str | None
    recording: dict[str, Any] | None  # the take being (or last) recorded
    preset: str | None
    cast: CastStatus | None  # None: no cast, one identity for the main face
    ndi: NdiStatus | None = None  # None: no NDI outputs
    ndi_error: str | None = None  # NDI outputs were asked for but cannot run (and why)
    program: ProgramStatus | None = None  # None: no program_out
    rtsp: RtspStatus | None = None  # None: no rtsp_out
    triton: TritonStatus | None = None  # None: the identity runs in-process


class CameraSummary(_Model):
    """One camera's entry in ``cameras``: what a picker or a wall of cameras shows."""

    name: str
    source: str
    state: str
    fx: FxState
    identity: str
    fps_in: float
    fps_out: float
    frames_out: int
    dropped: dict[str, int]
    frame_to_output_ms: Quantiles
    server_latency_ms: Quantiles
    viewers: int
    width: int | None
    height: int | None
    recording: str | None  # the take being recorded
    error: str | None


class FleetNode(_Model):
    """One node of the fleet as this one sees it (``agecast.fleet``)."""

    name: str
    url: str  # where a browser opens it ("" for this node: the page's own address)
    here: bool  # this node
    reachable: bool
    last_seen_s: float | None  # since its last answer (None: never answered)
    error: str | None  # why it is not reachable (or not trusted)
    version: str | None
    cameras: list[CameraSummary]  # its cameras as it last said (kept while unreachable)


class FleetStatus(_Model):
    """``fleet`` in ``/api/status``: every node's cameras, this node first."""

    node: str  # this node's name
    via: str | None  # the node this session was signed in on (a fleet ticket), else None
    nodes: list[FleetNode]


class PeerCamera(CameraSummary):
    """A camera in a peer's reply: what a newer agecast adds to its summary is left aside, so a
    fleet can be upgraded one node at a time."""

    model_config = ConfigDict(extra="ignore")


class PeerReply(_Model):
    """What a node answers another's ``/api/peer/status`` (fields a newer node adds are
    ignored; one that lacks a field this node needs is "not understood")."""

    model_config = ConfigDict(extra="ignore")

    node: str
    version: str
    cameras: list[PeerCamera]


class Status(CameraStatus):
    """``/api/status``: the chosen camera's status and every camera's summary."""

    cameras: list[CameraSummary]
    fleet: FleetStatus | None = None  # None: no fleet setting
