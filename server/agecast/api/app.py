"""The FastAPI app factory: the lifespan that owns the live services (one per camera), the
guard, the error handlers and the routers, one per resource (:mod:`~agecast.api.live`,
:mod:`~agecast.api.session`, :mod:`~agecast.api.takes`, :mod:`~agecast.api.review`,
:mod:`~agecast.api.identities`). Routes get what they need through :mod:`agecast.api.deps`.

Everything but ``/api/health`` needs a session (``api.auth``): viewers may watch and read
status, operators may also change settings. ``api.guard`` is the one door: same-origin check
for changes, session, role before the body is read, body size, security headers; sockets are
admitted there too and closed when their session ends. Sockets limit message size and rate.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from agecast import __version__
from agecast.api import fleet as fleet_routes
from agecast.api import identities, live, luts, review, session, takes
from agecast.api.auth import Auth, LinkGate
from agecast.api.deps import AppState
from agecast.api.guard import Guard, public
from agecast.fleet.peers import Fleet
from agecast.live.service import LiveService

UI_DIR = Path(__file__).resolve().parents[3] / "monitor_ui"


def create_app(
    service_factory: Callable[[], LiveService | Sequence[LiveService]],
    *,
    auth: Auth,
    ui_dir: Path = UI_DIR,
    fleet: Fleet | None = None,
) -> FastAPI:
    """Build the app; ``service_factory`` makes the live service(s), one per camera, when the
    app starts. With a ``fleet`` its peers are asked for their cameras while the app runs."""
    state = AppState(auth=auth, ui_dir=ui_dir, fleet=fleet)
    if fleet is not None:
        state.fleet_sessions = fleet_routes.FleetSessions(fleet, auth)
        auth.fleet_check = state.fleet_sessions.check

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await _start(service_factory, auth)
        state.cameras.set(services)
        for service in services:
            manifest = service.built.fx.identity.manifest
            where = {"camera": service.name} if len(services) > 1 else {}
            auth.audit.write("identity_loaded", identity=manifest.id, actor=manifest.actor, **where)
        if fleet is not None and state.fleet_sessions is not None:
            fleet.start()
            state.fleet_sessions.start()
        try:
            yield
        finally:
            if fleet is not None and state.fleet_sessions is not None:
                await state.fleet_sessions.stop()
                await fleet.stop()
            for service in services:
                await asyncio.to_thread(service.stop)

    # no /docs: its page loads scripts from a CDN, and a set LAN reaches nothing outside
    app = FastAPI(
        title="agecast", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None
    )
    app.state.agecast = state
    app.add_middleware(Guard, auth=auth)
    app.add_exception_handler(RequestValidationError, _unprocessable)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for module in (live, session, takes, review, identities, luts, fleet_routes):
        app.include_router(module.router)
    if ui_dir.is_dir():
        app.mount("/ui", StaticFiles(directory=ui_dir), name="ui")
    return app


async def _start(
    service_factory: Callable[[], LiveService | Sequence[LiveService]], auth: Auth
) -> list[LiveService]:
    """Make and start every camera's service (its RTSP stream, if any, admits the server's
    links); if one fails, stop them all and raise."""
    made = await asyncio.to_thread(service_factory)
    services = [made] if isinstance(made, LiveService) else list(made)
    loop = asyncio.get_running_loop()
    try:
        for service in services:
            service.fanout.loop = loop
            service.gate = LinkGate(auth, service.name)
            service.start()
    except BaseException:
        for service in services:  # the cameras already running, and every built one
            await asyncio.to_thread(service.stop)
        raise
    return services


async def _unprocessable(request: Request, exc: Exception) -> Response:
    """422 naming each bad field and why, never echoing what was sent (it may be huge, or a
    secret typed into the wrong field)."""
    if not isinstance(exc, RequestValidationError):
        raise exc
    detail = [
        {"loc": list(error.get("loc", ())), "msg": str(error.get("msg", ""))[:200]}
        for error in exc.errors()[:20]
    ]
    return JSONResponse({"detail": detail}, status_code=422)


async def _http_error(request: Request, exc: Exception) -> Response:
    """Every HTTP error as FastAPI writes it, with server paths cut (``guard.public``)."""
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    detail = public(exc.detail) if isinstance(exc.detail, str) else exc.detail
    return JSONResponse({"detail": detail}, status_code=exc.status_code, headers=exc.headers)
