"""The fleet's routes and its sign-ins (docs/fleet.md).

* ``/api/peer/status`` and ``/api/peer/links``: what other nodes ask, signed with the fleet key
  (``fleet.signing``; the guard lets them by without a session). Replies are signed too.
* ``POST /api/fleet/ticket``: a signed-in user asks for a ticket to another node's camera; the
  reply is the address the page goes to. The ticket's role is the user's own here (or lower).
* ``GET /?fleet_ticket=…``: a ticket from another node becomes a session *here*, on a link of
  this node that stands for the issuing node's link (``LinkStore.mirror``).
* :class:`FleetSessions` keeps asking the issuing node whether those links still hold — every
  ``fleet_recheck_s`` and whenever a socket opens — and revokes the stand-in here when not. A
  node that cannot be asked for :data:`GRACE_RECHECKS` rounds ends its sign-ins here too.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import time
from typing import Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, ConfigDict, Field

from agecast import __version__
from agecast.api.auth import COOKIE, Auth, Link
from agecast.api.deps import AppState, State, Viewer
from agecast.api.guard import sign_in_page
from agecast.errors import FleetError
from agecast.fleet.peers import PEER_LINKS, Fleet
from agecast.fleet.signing import HEADER, REPLY_HEADER, check_request, reply_parts
from agecast.fleet.tickets import make_ticket, read_ticket
from agecast.live.status import CameraSummary, FleetStatus

log = logging.getLogger(__name__)

router = APIRouter()

GRACE_RECHECKS = 3  # rounds the issuing node may miss before its sign-ins here end


class FleetSessions:
    """Sign-ins carried here from other nodes, and the checks that keep them honest."""

    def __init__(self, fleet: Fleet, auth: Auth) -> None:
        self.fleet, self.auth = fleet, auth
        self._confirmed: dict[str, float] = {}  # stand-in link id → monotonic time confirmed
        self._task: asyncio.Task[None] | None = None

    def redeem(self, text: str) -> Link:
        """The stand-in link a ticket signs in as; :class:`FleetError` saying why not."""
        ticket = read_ticket(
            self.fleet.key, self.fleet.replays, text, me=self.fleet.me, known=self.fleet.names
        )
        role: Literal["viewer", "operator"] = "operator" if ticket.role == "operator" else "viewer"
        link = self.auth.links.mirror(
            ticket.issuer, ticket.link, role, label=ticket.label,
            burn_label=ticket.burn_label, expires=ticket.link_expires,
        )  # fmt: skip
        self._confirmed[link.id] = time.monotonic()
        return link

    async def check(self, link: Link) -> bool:
        """Ask ``link``'s node now whether it still holds (a socket opening); when the node
        cannot be asked, it holds while it was confirmed within the grace."""
        if not link.fleet:
            return True
        answers = await self._ask(link.fleet, [link])
        if answers is None:
            return self._within_grace(link)
        return answers.get(link.fleet_link) is True

    def start(self) -> None:
        self._task = asyncio.create_task(self._recheck())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _recheck(self) -> None:
        while True:
            await asyncio.sleep(self.fleet.recheck_s)
            try:
                await self.recheck()
            except Exception:  # one bad round must not end the checks for good
                log.exception("fleet: re-checking sign-ins failed")

    async def recheck(self) -> None:
        """Ask each issuing node about every stand-in link here that is still usable."""
        by_node: dict[str, list[Link]] = {}
        for link in self.auth.links.all():
            if link.fleet and link.usable():
                by_node.setdefault(link.fleet, []).append(link)
        for node, links in by_node.items():
            if await self._ask(node, links) is None:  # (answered: _ask ended what it must)
                for link in links:
                    if not self._within_grace(link):
                        self._end(link, f"node {node} could not be asked")

    async def _ask(self, node: str, links: list[Link]) -> dict[str, bool] | None:
        """``{node's link id: usable}``, or None when ``node`` cannot be asked; usable stand-ins
        are marked confirmed; one that is not is revoked here at once."""
        if node not in self.fleet.names:
            return {}  # no longer in the fleet setting: nothing vouches for it
        ids = ",".join(sorted({link.fleet_link for link in links}))
        try:
            reply = await self.fleet.ask(node, f"{PEER_LINKS}?ids={ids}")
            answers = {str(k): v is True for k, v in dict(reply["links"]).items()}
        except (FleetError, KeyError, TypeError, ValueError) as exc:
            log.warning("fleet: cannot re-check sign-ins from %s: %s", node, exc)
            return None
        now = time.monotonic()
        for link in links:
            if answers.get(link.fleet_link) is True:
                self._confirmed[link.id] = now
            else:
                self._end(link, f"its link on {node} was revoked or has expired")
        return answers

    def _within_grace(self, link: Link) -> bool:
        confirmed = self._confirmed.get(link.id)
        grace = GRACE_RECHECKS * self.fleet.recheck_s
        return confirmed is not None and time.monotonic() - confirmed <= grace

    def _end(self, link: Link, why: str) -> None:
        if self.auth.links.revoke(link.id):
            log.info("fleet: ended sign-in %s (%s from %s): %s", link.id, link.label,
                     link.fleet, why)  # fmt: skip
            self.auth.audit.write("fleet_session_ended", link=link.id, node=link.fleet, why=why)
        self._confirmed.pop(link.id, None)


# --- what this node shows of the fleet -----------------------------------------------------


def fleet_view(state: AppState, cameras: list[dict[str, Any]], link: Link | None) -> FleetStatus:
    """The fleet as this node sees it, its own ``cameras`` (summaries) first."""
    assert state.fleet is not None
    own = [CameraSummary.model_validate(c) for c in cameras]
    return state.fleet.view(own, __version__, (link.fleet or None) if link else None)


def with_fleet(state: AppState, status: dict[str, Any], link: Link | None) -> dict[str, Any]:
    """``status`` (``/api/status``'s shape) with ``fleet`` when this node has one."""
    if state.fleet is None:
        return status
    return {**status, "fleet": fleet_view(state, status["cameras"], link).model_dump(mode="json")}


# --- node to node --------------------------------------------------------------------------


def _peer(state: AppState, request: Request) -> Fleet:
    """This node's fleet, if the request is signed by one of its nodes (401 otherwise)."""
    fleet = state.fleet
    if fleet is None:
        raise HTTPException(status_code=404, detail="this node has no fleet setting")
    query = request.scope.get("query_string", b"").decode("latin-1")
    target = request.url.path + (f"?{query}" if query else "")
    try:
        sender, nonce = check_request(
            fleet.key, fleet.replays, fleet.me, request.headers.get(HEADER), "GET", target
        )
    except FleetError as exc:
        log.warning("refused a fleet request for %s: %s", request.url.path, exc)
        raise HTTPException(status_code=401, detail=str(exc)) from exc
    if sender not in fleet.names:
        raise HTTPException(
            status_code=401, detail=f"node {sender!r} is not in {fleet.me}'s fleet setting"
        )
    request.state.fleet_nonce = nonce
    return fleet


def _signed(fleet: Fleet, request: Request, body: dict[str, Any]) -> Response:
    data = json.dumps(body).encode()
    signature = fleet.key.sign(*reply_parts(request.state.fleet_nonce, data))
    return Response(data, media_type="application/json", headers={REPLY_HEADER: signature})


@router.get("/api/peer/status", include_in_schema=False)
def peer_status(request: Request, state: State) -> Response:
    """This node's cameras, for another node of the fleet."""
    fleet = _peer(state, request)
    cameras = state.cameras.status()["cameras"]
    return _signed(fleet, request, {"node": fleet.me, "version": __version__, "cameras": cameras})


@router.get("/api/peer/links", include_in_schema=False)
def peer_links(request: Request, state: State, ids: str = "") -> Response:
    """Whether each of these links (``ids``, comma-separated) may still be used."""
    fleet = _peer(state, request)
    asked = [i for i in ids.split(",") if i][:256]
    answers = {i: state.auth.links.still_usable(i) for i in asked}
    return _signed(fleet, request, {"links": answers})


# --- the browser, from node to node --------------------------------------------------------


class TicketRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    node: str = Field(max_length=32)
    camera: str | None = Field(None, max_length=32)
    role: Literal["viewer", "operator"] | None = None  # lower than the link's own: allowed


@router.post("/api/fleet/ticket")
def ticket(body: TicketRequest, link: Viewer, state: State) -> dict[str, str]:
    """The address that opens ``node``'s ``camera`` signed in as this session (a ticket)."""
    fleet = state.fleet
    if fleet is None or body.node not in fleet.names:
        known = ", ".join(sorted(fleet.names)) if fleet else "none"
        raise HTTPException(
            status_code=404, detail=f"no node {body.node!r} in this node's fleet (known: {known})"
        )
    if link.fleet:
        raise HTTPException(
            status_code=409,
            detail=f"this sign-in came from node {link.fleet}: pick other nodes there",
        )
    role = body.role or link.role
    if not link.allows(role):
        raise HTTPException(status_code=403, detail=f"this link is {link.role}: no {role} ticket")
    text = make_ticket(
        fleet.key, issuer=fleet.me, audience=body.node, link=link.id, role=role,
        label=link.label, burn_label=link.burn_label, link_expires=link.expires,
    )  # fmt: skip
    state.audit(link, "fleet_ticket", node=body.node, role=role)
    camera = f"&camera={quote(body.camera, safe='')}" if body.camera else ""
    return {"url": f"{fleet.url(body.node)}/?fleet_ticket={text}{camera}"}


def fleet_sign_in(state: AppState, request: Request, text: str) -> Response:
    """A ticket from another node → a session here; then the page, on this node's own
    address (a same-site step, so the browser sends the new SameSite=Strict cookie)."""
    client = request.client.host if request.client else "?"
    if state.fleet_sessions is None:
        return HTMLResponse(sign_in_page("This node has no fleet setting."), status_code=401)
    try:
        link = state.fleet_sessions.redeem(text)
    except FleetError as exc:
        state.auth.audit.write("fleet_login_refused", client=client, why=str(exc))
        return HTMLResponse(sign_in_page(html.escape(f"Not signed in: {exc}.")), status_code=401)
    value, max_age = state.auth.sessions.issue(link)
    camera = request.query_params.get("camera")
    target = html.escape("/?camera=" + quote(camera, safe=""), quote=True) if camera else "/"
    page = (
        f'<!doctype html><meta charset=utf-8><meta http-equiv="refresh" content="0;url={target}">'
        f'<link rel="icon" href="data:,"><title>agecast</title>'
        f'<a href="{target}">Open the monitor</a>'
    )
    response = HTMLResponse(page, headers={"cache-control": "no-store"})
    response.set_cookie(
        COOKIE, value, max_age=max_age, httponly=True, samesite="strict",
        secure=state.auth.secure_cookies,
    )  # fmt: skip
    state.auth.audit.write(
        "login", link=link.id, label=link.label, role=link.role, client=client, node=link.fleet
    )
    return response
