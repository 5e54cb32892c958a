"""The door every HTTP request and WebSocket passes, in one place, in this order:

1. **Same origin** for anything that changes state (any method but GET/HEAD/OPTIONS): a page on
   another port of the same host is *same-site*, so SameSite=Strict cookies reach us; the
   browser's ``Sec-Fetch-Site`` and ``Origin`` headers tell it apart, and it is refused.
   Clients that send neither (curl, scripts with a Bearer token) are not browsers and are let by.
2. **Session**: the link behind the cookie or Bearer token (``Auth.identify``).
3. **Role** before the body is read: changing state needs an operator, except signing out.
4. **Body size** limited before anything parses it: a declared ``Content-Length`` over the limit
   is refused unread; a chunked body is read only up to the limit.

Every response carries headers that keep the monitor out of other pages' frames.

Sockets are admitted by :func:`socket_session`: Origin, session and role at the handshake, then
the session is re-checked every second and at once when a link is revoked in this process, and
the socket is closed (4401) when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import WebSocket, WebSocketDisconnect
from starlette.datastructures import Headers
from starlette.requests import cookie_parser

from agecast.api.auth import COOKIE, Auth, Link, Role

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

MAX_BODY = 64 * 1024  # bytes: every request body agecast takes is a few hundred
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
OPEN_PATHS = frozenset({"/api/health"})
PEER_PATHS = "/api/peer/"  # other fleet nodes: signed with the fleet key instead (api.fleet)
SIGN_OUT = "/api/signout"  # a viewer may sign itself out …
FLEET_TICKET = "/api/fleet/ticket"  # … and ask for a ticket to another node (its own role)
VIEWER_CHANGES = frozenset({SIGN_OUT, FLEET_TICKET})
RECHECK_S = 1.0  # how often an open socket's session is checked again
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-frame-options", b"DENY"),
    # no script-src: the page has no inline script, but test drivers evaluate strings in it
    (
        b"content-security-policy",
        b"frame-ancestors 'none'; base-uri 'none'; object-src 'none'; form-action 'self'",
    ),
    (b"x-content-type-options", b"nosniff"),
    # the sign-in address carries a token: never sent to another site ("no-referrer" would make
    # the page's own form posts say Origin: null)
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def cross_origin(headers: Headers, scheme: str) -> str | None:
    """Why a browser request comes from another origin (None: same origin, or not a browser).

    ``Sec-Fetch-Site`` is set by the browser and cannot be forged by a page, so when present it
    decides; ``Origin`` covers browsers without Fetch metadata. Compared with ``Host``, so it
    works behind a TLS proxy that keeps the Host header.
    """
    site = headers.get("sec-fetch-site")
    if site is not None:  # the browser's own word: it outranks Origin (which may be "null")
        if site in ("same-origin", "none"):
            return None
        return f"a request from another origin (Sec-Fetch-Site: {site})"
    origin = headers.get("origin")
    if origin is None:
        return None
    host = headers.get("host", "")
    if origin == "null" or origin.split("://", 1)[-1] != host:
        return f"origin {origin} is not this monitor ({scheme}://{host})"
    return None


_ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"`,;:()]+/)+(?=[^\s/'\"`,;:()])")


def public(message: str) -> str:
    """``message`` as a client may read it: absolute paths on the server cut to their last
    part (``…/takes/sc1_1``), which says enough without mapping the server's disk."""
    return _ABSOLUTE_PATH.sub("…/", message)


def session_cookie(headers: Headers) -> str | None:
    """The session cookie's value, or None (also for a header that is not valid text)."""
    raw = headers.get("cookie")
    if not raw:
        return None
    value = cookie_parser(raw).get(COOKIE)
    return value if value is not None and value.isascii() else None


class Guard:
    """ASGI middleware: origin, session, role and body size, in that order (module docstring).

    The link is left in ``request.state.link`` for the routes.
    """

    def __init__(self, app: ASGIApp, auth: Auth, *, max_body: int = MAX_BODY) -> None:
        self.app = app
        self.auth = auth
        self.max_body = max_body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        send = _with_headers(send)
        headers = Headers(scope=scope)
        method, path = scope["method"], scope["path"]
        changes = method not in SAFE_METHODS
        if changes and (why := cross_origin(headers, scope.get("scheme", "http"))):
            log.warning("refused %s %s: %s", method, path, why)
            await _reply(send, 403, f"refused: {why}; use the monitor's own page")
            return
        if path not in OPEN_PATHS and not path.startswith(PEER_PATHS) and not _signing_in(scope):
            link = self.auth.identify(session_cookie(headers), headers.get("authorization"))
            if link is None:
                await _not_signed_in(send, path, headers)
                return
            if changes and path not in VIEWER_CHANGES and not link.allows("operator"):
                await _reply(send, 403, "operators only: this link is view-only")
                return
            scope.setdefault("state", {})["link"] = link
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_body):
            await _reply(send, 413, f"request body over the {self.max_body}-byte limit")
            return
        body = await _read_body(receive, self.max_body)
        if body is None:
            await _reply(send, 413, f"request body over the {self.max_body}-byte limit")
            return
        await self.app(scope, _replay(body, receive), send)


def _signing_in(scope: Scope) -> bool:
    query = scope.get("query_string", b"")
    return bool(scope["path"] == "/" and (b"token=" in query or b"fleet_ticket=" in query))


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None once it passes ``limit`` (the rest is never read)."""
    parts: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        parts.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(parts)


def _replay(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()  # e.g. a disconnect, for a streaming response

    return replay


def _with_headers(send: Send) -> Send:
    async def send_with_headers(message: Message) -> None:
        if message["type"] == "http.response.start":
            message["headers"] = [*message.get("headers", []), *SECURITY_HEADERS]
        await send(message)

    return send_with_headers


async def _reply(send: Send, status: int, detail: str) -> None:
    body = json.dumps({"detail": detail}).encode()
    await _respond(send, status, body, b"application/json")


_SIGN_IN_PAGE = """<!doctype html><meta charset=utf-8><title>agecast</title>
<body style="background:#111;color:#ddd;font:18px system-ui;padding:3em">
<h1 style="font-weight:500">agecast monitor</h1><p>{message}</p></body>"""


def sign_in_page(message: str) -> str:
    return _SIGN_IN_PAGE.format(message=message)


# The page again, from itself: a SameSite=Strict cookie is not sent with a navigation another
# site started (a fleet node's page going back to this one), but is with this page's own.
_FROM_HERE = (
    b'<!doctype html><meta http-equiv="refresh" content="0"><link rel="icon" href="data:,">'
)


async def _not_signed_in(send: Send, path: str, headers: Headers) -> None:
    if path == "/" and headers.get("sec-fetch-site") in ("cross-site", "same-site"):
        await _respond(send, 200, _FROM_HERE, b"text/html; charset=utf-8")
        return
    if path == "/":
        page = sign_in_page("Not signed in: open the link your video-assist operator gave you.")
        await _respond(send, 401, page.encode(), b"text/html; charset=utf-8")
        return
    await _reply(send, 401, "not signed in: open an agecast link, or send a Bearer token")


async def _respond(send: Send, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", content_type),
                (b"content-length", str(len(body)).encode()),
                (b"cache-control", b"no-store"),
                # refused before its body was read: end the connection rather than read (and
                # discard) a body of any size on the event loop
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True, slots=True)
class SocketSession:
    """An admitted socket's link; :meth:`valid` checks the session again, now."""

    link: Link
    identify: Callable[[], Link | None]

    def valid(self) -> bool:
        return self.identify() is not None


@asynccontextmanager
async def socket_session(
    ws: WebSocket, auth: Auth, role: Role
) -> AsyncIterator[SocketSession | None]:
    """The socket's session, once admitted (None: refused and closed, say nothing more).

    While the block runs, the session is checked again every :data:`RECHECK_S` and whenever a
    link is revoked in this process; once it no longer holds (revoked, expired, signed out) the
    socket is closed with 4401, which ends the handler's receive loop.
    """
    cookie = session_cookie(ws.headers)
    authorization = ws.headers.get("authorization")
    why = cross_origin(ws.headers, ws.url.scheme)
    if why is not None:
        log.warning("refused %s: %s", ws.url.path, why)
        await ws.close(code=4403)
        yield None
        return
    link = auth.identify(cookie, authorization)
    if link is None or not link.allows(role):
        await ws.close(code=4401 if link is None else 4403)
        yield None
        return
    if not auth.socket_opens.allow(link.id):  # a reconnect loop costs others CPU
        await ws.close(code=1013, reason="too many connections from this link: wait a moment")
        yield None
        return
    if link.fleet and auth.fleet_check is not None and not await auth.fleet_check(link):
        why = f"the link behind this sign-in no longer holds on {link.fleet}"
        await ws.close(code=4401, reason=why)
        yield None
        return
    await ws.accept()
    session = SocketSession(link, lambda: auth.identify(cookie, authorization))
    watcher = asyncio.create_task(_watch(ws, session, auth))
    try:
        yield session
    finally:
        watcher.cancel()


async def _watch(ws: WebSocket, session: SocketSession, auth: Auth) -> None:
    changed = auth.links.changed_event()
    try:
        while True:
            with contextlib.suppress(TimeoutError):  # a revoke here wakes it early
                await asyncio.wait_for(changed.wait(), RECHECK_S)
            changed.clear()
            if not session.valid():
                log.info("closing %s: its session ended", ws.url.path)
                await ws.close(code=4401, reason="link revoked or expired, or signed out")
                return
    except (WebSocketDisconnect, RuntimeError, asyncio.CancelledError):
        pass
    finally:
        auth.links.forget_event(changed)
