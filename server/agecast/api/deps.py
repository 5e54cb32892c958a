"""What every route may depend on (FastAPI ``Depends``): the app's state, the signed-in link and
its role, the camera a request names, and the audit of a change.

The app keeps one :class:`AppState` (``app.state.agecast``); :mod:`agecast.api.guard` has
already admitted the request (origin, session, role before the body) and put its link on
``request.state.link``. The ``operator`` dependency says so again in the route's own words,
so a route's signature shows who may call it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import Depends, HTTPException, Request
from starlette.requests import HTTPConnection

from agecast.api.auth import Auth, Link
from agecast.api.cameras import LiveCameras
from agecast.errors import UnknownCamera
from agecast.live.service import LiveService
from agecast.takes.rerender import RenderJobs

if TYPE_CHECKING:
    from agecast.api.fleet import FleetSessions
    from agecast.fleet.peers import Fleet


@dataclass
class AppState:
    auth: Auth
    ui_dir: Path
    cameras: LiveCameras = field(default_factory=LiveCameras)
    jobs: RenderJobs = field(default_factory=RenderJobs)  # re-renders started over the API
    reviews_open: int = 0
    fleet: Fleet | None = None  # the other nodes (docs/fleet.md); None: no fleet setting
    fleet_sessions: FleetSessions | None = None  # sign-ins carried here from them

    def audit(self, link: Link, event: str, **fields: Any) -> None:
        """``event`` into the audit log, by whom (``link``'s label) and through which link."""
        self.auth.audit.write(event, **fields, by=link.label, link=link.id)

    def audit_change(self, link: Link, values: dict[str, Any], service: LiveService) -> None:
        """An operator's change (and the identity it loaded) into the audit log."""
        where = {"camera": service.name} if len(self.cameras) > 1 else {}
        self.audit(link, "settings", values=values, **where)
        if "identity" in values:
            self.audit_identity(link, service, **where)

    def audit_identity(self, link: Link, service: LiveService, **where: Any) -> None:
        """The identity ``service`` runs now, loaded by ``link``, into the audit log."""
        manifest = service.built.fx.identity.manifest
        self.audit(link, "identity_loaded", identity=manifest.id, actor=manifest.actor, **where)


def app_state(connection: HTTPConnection) -> AppState:
    state: AppState = connection.app.state.agecast
    return state


State = Annotated[AppState, Depends(app_state)]


def signed_in(request: Request) -> Link:
    """The request's link (the guard admitted it: a viewer at least)."""
    link: Link = request.state.link
    return link


def operator(request: Request) -> Link:
    """The request's link, if it may change things (403 otherwise)."""
    link = signed_in(request)
    if not link.allows("operator"):
        raise HTTPException(status_code=403, detail="operators only: this link is view-only")
    return link


Viewer = Annotated[Link, Depends(signed_in)]
Operator = Annotated[Link, Depends(operator)]


def camera(state: State, camera: str | None = None) -> LiveService:
    """The camera ``?camera=NAME`` names (default: the first); an unknown one is a 404."""
    try:
        return state.cameras.get(camera)
    except UnknownCamera as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from exc


Camera = Annotated[LiveService, Depends(camera)]


def first_camera(state: State) -> LiveService:
    """The first camera: its settings place the takes, presets and identities."""
    return camera(state, None)


FirstCamera = Annotated[LiveService, Depends(first_camera)]
