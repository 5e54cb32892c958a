"""Takes and presets routes: record, stop, list, show, re-render with progress, presets.

Viewers may list and read; operators record, re-render and change presets. Starts, stops,
re-renders and preset switches go to the audit log. ``/ws/control`` also takes
``{"type": "record", "scene", "take", "camera"}`` and ``{"type": "stop"}`` (see
:func:`control_message`).

With several cameras, ``?camera=NAME`` picks the live camera a route acts on (records, stops,
presets); without it a take records the camera its ``camera`` label names, else the first, and
stop ends the take being recorded.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from agecast.api.cameras import LiveCameras
from agecast.api.deps import Camera, FirstCamera, Operator, State
from agecast.api.sockets import error_reply, said
from agecast.errors import AgecastError, SettingsError, TakeError, UnknownCamera
from agecast.live.presets import apply_preset, current_preset
from agecast.takes.player import version_look
from agecast.takes.presets import PresetStore, make_preset
from agecast.takes.rerender import RenderJob
from agecast.takes.store import Take, TakeStore

log = logging.getLogger(__name__)


class RecordBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scene: str = Field(max_length=64)
    take: str = Field(max_length=64)
    camera: str | None = Field(None, max_length=64)


class RenderBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    settings: dict[str, Any] = Field(default_factory=dict)
    from_version: str = Field("v1", alias="from", pattern=r"^v[1-9][0-9]*$")


class PresetBody(BaseModel):
    """A preset; with none of the values given, what runs live now is saved."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(max_length=64)
    actor: str | None = Field(None, max_length=200)
    identity: str | None = Field(None, max_length=200)
    age: float | None = None
    blend: float | None = None
    color_transfer: str | None = None
    mask_feather: float | None = None


def status_of(exc: AgecastError) -> int:
    """HTTP status for a takes error: 404 unknown, 409 conflict, 507 no space, else 422."""
    if isinstance(exc, UnknownCamera):
        return 404
    text = str(exc)
    if text.startswith("no take") or text.startswith("no render job") or "has no version" in text:
        return 404
    if "never overwritten" in text or "already recording" in text or "re-render is running" in text:
        return 409
    if "not recording" in text:
        return 409
    if "GB free" in text:
        return 507
    return 422


def take_summary(take: Take) -> dict[str, Any]:
    info = take.info
    look = version_look(take, "v1") if "v1" in take.versions() else {}
    return {
        **info.model_dump(mode="json"),
        "seconds": round(info.seconds, 2),
        "versions": take.versions(),
        "age": look.get("age"),  # the target age recorded live (None: the identity's default)
    }


def take_detail(take: Take) -> dict[str, Any]:
    versions: dict[str, Any] = {}
    for version in take.versions():
        render = take.render_info(version)
        versions[version] = render.model_dump(mode="json", by_alias=True) if render else None
    return {**take_summary(take), "renders": versions}


router = APIRouter()


def fail(exc: AgecastError) -> HTTPException:
    return HTTPException(status_code=status_of(exc), detail=str(exc))


def _store(live: FirstCamera) -> TakeStore:
    return TakeStore(live.settings.resolved_takes_dir)


def _presets(live: FirstCamera) -> PresetStore:
    return PresetStore(live.settings.state_dir)


Store = Annotated[TakeStore, Depends(_store)]
Presets = Annotated[PresetStore, Depends(_presets)]


def _take(take_id: str, store: Store) -> Take:
    try:
        return store.get(take_id)
    except TakeError as exc:
        raise fail(exc) from exc


TakeOf = Annotated[Take, Depends(_take)]


@router.post("/api/takes/record")
def record(
    body: RecordBody, link: Operator, state: State, camera: str | None = None
) -> dict[str, Any]:
    try:
        live = state.cameras.to_record(camera, body.camera)
        take = live.start_recording(body.scene, body.take, body.camera)
    except AgecastError as exc:
        raise fail(exc) from exc
    state.audit(link, "take_started", take=take.id)
    return {**take_summary(take), "recording": live.status()["recording"]}


@router.post("/api/takes/stop")
def stop(link: Operator, state: State, store: Store, camera: str | None = None) -> dict[str, Any]:
    try:
        info = state.cameras.to_stop(camera).stop_recording()
    except AgecastError as exc:
        raise fail(exc) from exc
    state.audit(link, "take_stopped", take=info.id, frames=info.frames, status=info.status)
    return take_summary(store.get(info.id))


@router.get("/api/takes")
def takes(store: Store, live: Camera) -> dict[str, Any]:
    items = []
    for info in store.list():
        try:
            items.append(take_summary(store.get(info.id)))
        except TakeError:
            continue
    return {"takes": items, "recording": live.status()["recording"]}


@router.get("/api/takes/{take_id}")
def take(found: TakeOf) -> dict[str, Any]:
    return take_detail(found)


@router.post("/api/takes/{take_id}/render", status_code=202)
def render(
    found: TakeOf, body: RenderBody, link: Operator, state: State, live: FirstCamera
) -> dict[str, Any]:
    def done(job: RenderJob) -> None:
        state.audit(
            link, "render_finished", take=job.take, job=job.id, state=job.state,
            version=job.version, error=job.error,
        )  # fmt: skip

    try:
        if body.from_version != "v1":
            found.require_version(body.from_version)
        job = state.jobs.start(found, body.settings, live.settings, on_done=done)
    except AgecastError as exc:
        raise fail(exc) from exc
    state.audit(link, "render_started", take=found.id, job=job.id, settings=body.settings)
    return job.public()


@router.get("/api/renders/{job_id}")
def render_job(job_id: str, state: State) -> dict[str, Any]:
    try:
        return state.jobs.get(job_id).public()
    except TakeError as exc:
        raise fail(exc) from exc


@router.get("/api/presets")
def list_presets(presets: Presets, live: Camera) -> dict[str, Any]:
    try:
        saved = presets.list()
    except AgecastError as exc:
        raise fail(exc) from exc
    return {"presets": [p.model_dump(mode="json") for p in saved], "active": live.preset}


@router.post("/api/presets")
def save_preset(
    body: PresetBody, link: Operator, state: State, presets: Presets, live: Camera
) -> dict[str, Any]:
    values = body.model_dump(exclude={"name", "actor"}, exclude_none=True)
    try:
        if values:
            preset = make_preset(body.name, actor=body.actor, **values)
        else:
            preset = current_preset(live, body.name, body.actor)
        presets.save(preset)
    except (AgecastError, ValidationError) as exc:
        raise HTTPException(status_code=422, detail=said(exc)) from exc
    state.audit(link, "preset_saved", preset=preset.name)
    return preset.model_dump(mode="json")


@router.delete("/api/presets/{name}")
def delete_preset(name: str, link: Operator, state: State, presets: Presets) -> dict[str, Any]:
    try:
        gone = presets.delete(name)
    except SettingsError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    state.audit(link, "preset_deleted", preset=name)
    return gone.model_dump(mode="json")


@router.post("/api/presets/{name}/apply")
def apply(
    name: str, link: Operator, state: State, presets: Presets, live: Camera
) -> dict[str, Any]:
    try:
        preset = presets.get(name)
    except SettingsError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc
    try:
        status = apply_preset(live, preset)
    except AgecastError as exc:
        raise HTTPException(status_code=422, detail=str(exc)) from exc
    state.audit(link, "preset_applied", preset=name, values=preset.values())
    if "identity" in preset.values():
        state.audit_identity(link, live)
    return status


def control_message(
    cameras: LiveCameras, chosen: str | None, message: dict[str, Any]
) -> dict[str, Any]:
    """``/ws/control`` record/stop: ``{"type": "take_started" | "take_stopped", "take": …}``;
    ``chosen`` is the socket's ``?camera=`` (None: as the HTTP routes choose)."""
    try:
        if message["type"] == "record":
            body = RecordBody.model_validate({k: v for k, v in message.items() if k != "type"})
            live = cameras.to_record(chosen, body.camera)
            take = live.start_recording(body.scene, body.take, body.camera)
            return {"type": "take_started", "take": take_summary(take)}
        info = cameras.to_stop(chosen).stop_recording()
        return {"type": "take_stopped", "take": info.model_dump(mode="json")}
    except (AgecastError, ValidationError) as exc:
        return error_reply(exc)
