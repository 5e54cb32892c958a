"""Wiring: settings → device, backend, detector, tracker, identity, source, pipeline. One place."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import torch

from agecast.cast.roster import Roster, load_roster
from agecast.cast.setup import make_router
from agecast.compose.lut import camera_transform, load_transform
from agecast.faces.detector import make_detector
from agecast.faces.landmarks106 import Landmarks106, find_landmarks106
from agecast.faces.tracker import FaceTracker
from agecast.identities.package import resolve
from agecast.identities.runtime import IdentityModel
from agecast.identities.vouch import Vouches
from agecast.inference.base import Backend
from agecast.inference.registry import TorchOptions, get_backend
from agecast.inference.triton_naming import TritonConfig
from agecast.pipeline.controls import LOOK_KEYS
from agecast.pipeline.fx import FaceFX, Look, MemberLook
from agecast.pipeline.runner import Pipeline
from agecast.settings import Layout, Settings
from agecast.sources import Source, open_source

log = logging.getLogger(__name__)


def pick_device(name: str) -> torch.device:
    if name == "cuda" or (name == "auto" and torch.cuda.is_available()):
        if not torch.cuda.is_available():
            raise RuntimeError("--device cuda asked for, but torch sees no CUDA device")
        return torch.device("cuda")
    return torch.device("cpu")


def look_from(settings: Settings, roster: Roster | None = None) -> Look:
    members = (
        ()
        if roster is None
        else tuple(MemberLook(m.name, identity=m.identity, age=m.age) for m in roster.members)
    )
    settled = LOOK_KEYS & set(Settings.model_fields)  # bypass is never a setting: FX starts on
    return Look(members=members, **{k: getattr(settings, k) for k in settled})


@dataclass
class Built:
    """One camera's pipeline, loaded and checked, not started. The backend may be shared by
    several cameras (:func:`agecast.pipeline.cameras.build_cameras`): it is not closed here."""

    settings: Settings
    device: torch.device
    backend: Backend
    identity: IdentityModel
    fx: FaceFX
    pipeline: Pipeline
    name: str = "cam1"

    def close(self) -> None:
        self.pipeline.stop()
        self.fx.tracker.close()
        self.fx.close_cast()
        self.identity.close()


def load_identity(
    settings: Settings, backend: Backend, name: str | None = None, *, installed_only: bool = False
) -> IdentityModel:
    """The identity ``name`` (default: ``settings.identity``), loaded to run: a likeness with
    its actor's consent in force, a demo or tooling package only with a vouch from this
    server's state folder (identities/vouch.py). ``installed_only``: an id in
    ``identities_dir``, never a folder path (what the monitor's operator may pick)."""
    vouches = Vouches(settings.state_dir)
    package = resolve(
        name or settings.identity,
        settings.identities_dir,
        installed_only=installed_only,
        vouches=vouches,
    )
    return IdentityModel.load(package, backend, vouches)


def build_fx(
    settings: Settings, backend: Backend, *, background_recognition: bool = True
) -> tuple[IdentityModel, FaceFX]:
    """The face stages for ``settings``. With a cast (the cast file has members and ``cast``
    is on) every face is tracked and routed to its member; ``background_recognition`` runs the
    recogniser on its own thread (live) rather than in line (render: every run decides alike)."""
    identity = load_identity(settings, backend)
    roster = load_roster(settings.resolved_cast_file) if settings.cast else None
    if roster is not None and not roster.members:
        roster = None
    detector = make_detector(
        backend,
        insightface_dir=settings.insightface_dir,
        score_threshold=settings.detector_threshold,
    )
    tracker = FaceTracker(
        detector,
        detect_every=settings.detect_every,
        select="all" if roster is not None else settings.faces,
        max_faces=settings.max_faces,
        smoothing=settings.smoothing,
        background=settings.detect_thread,
    )
    landmarks = None
    if settings.insightface_dir is not None:
        path = find_landmarks106(settings.insightface_dir)
        if path is not None:
            landmarks = Landmarks106(backend, path)
            log.info("106-point landmarks from %s shape masks of mask-less identities", path)
    router = None
    if roster is not None:
        router = make_router(settings, roster, backend, background=background_recognition)

    def load_member_identity(name: str) -> IdentityModel:
        return load_identity(settings, backend, name, installed_only=True)

    fx = FaceFX(
        tracker,
        identity,
        look_from(settings, roster),
        landmarks,
        cast=router,
        load_identity=load_member_identity,
    )
    if roster is not None:
        for member in roster.members:  # a member's missing identity fails now, not on a frame
            if member.identity is not None and member.identity != identity.manifest.id:
                fx.member_identity(member.identity)
        log.info(
            "cast of %d from %s: %s",
            len(roster.members),
            settings.resolved_cast_file,
            ", ".join(f"{m.name} → {m.identity or identity.manifest.id}" for m in roster.members),
        )
    return identity, fx


def device_and_backend(settings: Settings) -> tuple[torch.device, Backend]:
    """The torch device frames live on and the inference backend, as ``settings`` ask."""
    device = pick_device(settings.device)
    if device.type == "cpu":
        # torch's pre/post-processing here is small; its thread pool spinning next to
        # onnxruntime's made detection 2–3× slower on a 2-core box. onnxruntime keeps the cores.
        torch.set_num_threads(1)
    backend = get_backend(
        settings.backend,
        threads=settings.threads,
        engines_dir=settings.engines_dir,
        torch_options=TorchOptions(settings.precision, settings.cuda_graphs),
        triton=triton_config(settings),
    )
    return device, backend


def triton_config(settings: Settings) -> TritonConfig:
    """The ``triton_*`` settings as the Triton backend takes them."""
    return TritonConfig(
        url=settings.triton_url,
        timeout_ms=settings.triton_timeout_ms,
        retry_ms=settings.triton_retry_ms,
        shm=settings.triton_shm,
        local=settings.triton_local,
    )


def assemble(
    settings: Settings,
    device: torch.device,
    backend: Backend,
    uri: str,
    *,
    mode: Literal["live", "render"],
    loop: bool,
    name: str = "cam1",
    layout: Layout | None = None,
    source: Source | None = None,
) -> Built:
    """One pipeline on ``device`` and ``backend`` reading ``uri`` (or ``source``, made for it:
    a take's replay): the one place every run (live, render, bench, each of several cameras, a
    re-render) is put together. Live, recognition runs on its own thread; rendering, in line."""
    if settings.ndi_extra_ips:  # before any NDI source or output starts
        from agecast.media import ndi

        ndi.configure(settings.ndi_extra_ips, settings.state_dir / "ndi")
    spec = camera_transform(settings.input_transform, name)
    transform = load_transform(spec) if spec else None  # a bad LUT fails before work starts
    identity, fx = build_fx(settings, backend, background_recognition=(mode == "live"))
    try:
        if source is None:
            source = open_source(uri, live=(mode == "live"), loop=loop)
    except BaseException:
        fx.tracker.close()
        fx.close_cast()
        identity.close()
        raise
    chosen = layout or settings.layout
    pipeline = Pipeline(source, fx, layout=chosen, mode=mode, device=device, transform=transform)
    return Built(settings, device, backend, identity, fx, pipeline, name)


def build(
    settings: Settings, *, mode: Literal["live", "render"] = "live", loop: bool | None = None
) -> Built:
    """Everything a run needs, loaded and checked, not started. ``loop``: restart a file
    source at its end (default: ``settings.loop`` live; never in render mode, which reads a
    file once — ``bench --max`` loops one to fill its seconds)."""
    device, backend = device_and_backend(settings)
    if loop is None:
        loop = settings.loop and mode == "live"
    built = assemble(settings, device, backend, settings.source, mode=mode, loop=loop)
    log.info(
        "built pipeline: source=%s identity=%s (%s) backend=%s (%s) device=%s",
        settings.source,
        built.identity.manifest.id,
        built.identity.manifest.age_label,
        backend.name,
        backend.why,
        device,
    )
    return built
