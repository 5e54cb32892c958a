"""Signing in and out, and the monitor page itself.

``GET /?token=…`` exchanges a link's one-time token for a session cookie and drops the token
from the address; ``POST /api/sign-out`` ends the browser's session.
"""

from __future__ import annotations

from urllib.parse import urlencode

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, RedirectResponse

from agecast.api.auth import COOKIE, Auth
from agecast.api.deps import State, Viewer
from agecast.api.fleet import fleet_sign_in
from agecast.api.guard import SIGN_OUT, session_cookie, sign_in_page

router = APIRouter()


@router.post(SIGN_OUT)
def sign_out(request: Request, link: Viewer, state: State) -> Response:
    """End this browser's session (its cookie is refused from now on) and forget it."""
    state.auth.sessions.end(session_cookie(request.headers))
    state.auth.audit.write("logout", link=link.id, label=link.label)
    page = "text/html" in request.headers.get("accept", "")  # the page's Sign out form
    response: Response = (
        RedirectResponse("/", status_code=303) if page else JSONResponse({"signed_out": True})
    )
    response.delete_cookie(COOKIE, httponly=True, samesite="strict")
    return response


@router.get("/", include_in_schema=False)
def index(
    request: Request, state: State, token: str | None = None, fleet_ticket: str | None = None
) -> Response:
    if not (state.ui_dir / "index.html").is_file():
        raise HTTPException(status_code=404, detail="this server has no monitor page")
    if token is not None:
        return _sign_in(state.auth, request, token)
    if fleet_ticket is not None:  # signed in on another node of the fleet (api.fleet)
        return fleet_sign_in(state, request, fleet_ticket)
    return FileResponse(state.ui_dir / "index.html", headers={"Cache-Control": "no-store"})


def _sign_in(auth: Auth, request: Request, token: str) -> Response:
    """Exchange a link's token for a session cookie, then drop the token from the address."""
    link = auth.links.redeem(token)
    client = request.client.host if request.client else "?"
    if link is None:
        auth.audit.write("login_refused", client=client)
        message = "This link has expired, been revoked or already been used. Ask for a new one."
        return HTMLResponse(sign_in_page(message), status_code=401)
    value, max_age = auth.sessions.issue(link)
    rest = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    response = RedirectResponse("/?" + rest if rest else "/", status_code=303)
    response.set_cookie(
        COOKIE, value, max_age=max_age, httponly=True, samesite="strict",
        secure=auth.secure_cookies,
    )  # fmt: skip
    auth.audit.write("login", link=link.id, label=link.label, role=link.role, client=client)
    return response
