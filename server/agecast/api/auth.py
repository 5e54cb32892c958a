"""Who may watch and who may operate.

* **Links**: a link is a random token with a role (``operator`` or ``viewer``), a label (who it
  was given to), an expiry and a revoked flag, stored (token hashed) in ``links.json`` in the
  state folder, so ``agecast links …`` in another process can create and revoke links while
  the server runs. Every change is made under a lock on ``links.lock`` (so processes do not
  lose each other's links or undo a revoke) and written to a unique temp file, then renamed.
  ``serve`` mints a one-time operator link at start (Jupyter style).
* **Sessions**: opening ``/?token=…`` exchanges the token for an HttpOnly cookie signed with the
  server's secret (``secret`` in the state folder, 0600). Every request re-checks the link
  behind the cookie, so a revoked or expired link stops working at once, cookie or not.
* API clients may send ``Authorization: Bearer <token>`` instead of a cookie.
* **Sign-out** ends a session (its cookie is refused from then on, by this server process).
* State files are private: the state folder 0700, its files 0600.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import secrets
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from agecast.errors import SettingsError
from agecast.media.rtsp import Admission
from agecast.outfiles import file_lock, private_dir, write_private

Role = Literal["operator", "viewer"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
COOKIE = "agecast_session"
SESSION_S = 12 * 3600  # a session cookie lasts at most this long (or until its link expires)
SECRET_BYTES = 32


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Link:
    id: str
    role: Role
    label: str
    token_sha256: str
    created: float
    expires: float | None
    one_time: bool = False
    used: bool = False
    revoked: bool = False
    burn_label: bool = False  # burn the label into every picture this link's viewers get
    fleet: str = ""  # a fleet sign-in: the node whose link this one stands for (api.fleet) …
    fleet_link: str = ""  # … and that link's id there

    def usable(self, now: float | None = None) -> bool:
        now = time.time() if now is None else now
        return not self.revoked and (self.expires is None or now < self.expires)

    def allows(self, role: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(role)


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``12h``, ``7d`` → seconds."""
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    value, unit = text[:-1], text[-1:].lower()
    if unit not in units or not value.replace(".", "", 1).isdigit() or float(value) <= 0:
        raise ValueError(f"duration {text!r}: use a number with s, m, h or d (e.g. 12h)")
    return float(value) * units[unit]


class LinkStore:
    """``links.json`` in the state folder; re-read whenever another process changed it."""

    def __init__(self, state_dir: Path, audit: Audit | None = None) -> None:
        self.path = private_dir(state_dir) / "links.json"
        self._lock_path = state_dir / "links.lock"
        self.audit = audit
        self._lock = threading.Lock()
        self._links: dict[str, Link] = {}
        self._seen: tuple[int, int, int] | None = None
        self._listeners: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def _load(self, fresh: bool = False) -> dict[str, Link]:
        """The links on disk; cached while the file is the same one (inode, mtime, size)."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._links, self._seen = {}, None
            return {}
        seen = (st.st_ino, st.st_mtime_ns, st.st_size)
        if fresh or seen != self._seen:
            raw = json.loads(self.path.read_text() or "[]")
            self._links = {item["id"]: Link(**item) for item in raw}
            self._seen = seen
        return self._links

    @contextlib.contextmanager
    def _changing(self) -> Iterator[dict[str, Link]]:
        """The links read fresh under the cross-process lock; saved if the block changed them."""
        with self._lock, file_lock(self._lock_path):
            before = self._load(fresh=True)
            links = dict(before)
            yield links
            if links != before:
                write_private(
                    self.path, json.dumps([asdict(v) for v in links.values()], indent=1).encode()
                )
                self._load(fresh=True)
        self._notify()

    def changed_event(self) -> asyncio.Event:
        """An event set (on the calling loop) whenever this store changes a link."""
        event = asyncio.Event()
        with self._lock:
            self._listeners.append((asyncio.get_running_loop(), event))
        return event

    def forget_event(self, event: asyncio.Event) -> None:
        with self._lock:
            self._listeners = [(loop, e) for loop, e in self._listeners if e is not event]

    def _notify(self) -> None:
        with self._lock:
            listeners = list(self._listeners)
        for loop, event in listeners:
            with contextlib.suppress(RuntimeError):  # that loop has closed
                loop.call_soon_threadsafe(event.set)

    def _audit(self, event: str, **fields: object) -> None:
        if self.audit is not None:
            self.audit.write(event, **fields)

    def create(
        self,
        role: Role,
        *,
        label: str = "",
        expires_s: float | None = None,
        one_time: bool = False,
        burn_label: bool = False,
    ) -> tuple[Link, str]:
        if role not in ROLES:
            raise ValueError(f"role must be one of {', '.join(ROLES)}")
        if burn_label and not label:
            raise ValueError("a burnt-in label needs a --label")
        token = secrets.token_urlsafe(24)
        now = time.time()
        link = Link(
            id=secrets.token_hex(4),
            role=role,
            label=label,
            token_sha256=_hash(token),
            created=now,
            expires=now + expires_s if expires_s else None,
            one_time=one_time,
            burn_label=burn_label,
        )
        with self._changing() as links:
            links[link.id] = link
        self._audit(
            "link_created", link=link.id, role=role, label=label, expires=link.expires,
            one_time=one_time, burn_label=burn_label,
        )  # fmt: skip
        return link, token

    def all(self) -> list[Link]:
        with self._lock:
            return sorted(self._load().values(), key=lambda link: link.created)

    def get(self, link_id: str) -> Link | None:
        with self._lock:
            return self._load().get(link_id)

    def still_usable(self, link_id: str) -> bool:
        link = self.get(link_id)
        return link is not None and link.usable()

    def revoke(self, id_or_label: str) -> list[Link]:
        """Revoke the link with this id, or every link with this label."""
        with self._changing() as links:
            hits = [v for v in links.values() if id_or_label in (v.id, v.label) and not v.revoked]
            for link in hits:
                links[link.id] = _replace(link, revoked=True)
        for link in hits:
            self._audit("link_revoked", link=link.id, role=link.role, label=link.label)
        return hits

    def mirror(
        self, node: str, link_id: str, role: Role, *, label: str, burn_label: bool,
        expires: float | None,
    ) -> Link:  # fmt: skip
        """The link here that stands for link ``link_id`` of fleet node ``node`` with ``role``
        (made on first use; no token opens it: only a fleet ticket's session)."""
        with self._changing() as links:
            for link in links.values():
                if (link.fleet, link.fleet_link, link.role) == (node, link_id, role) and (
                    link.usable()
                ):
                    return link
            link = Link(
                id=secrets.token_hex(4), role=role, label=label,
                token_sha256=_hash(secrets.token_urlsafe(24)), created=time.time(),
                expires=expires, burn_label=burn_label, fleet=node, fleet_link=link_id,
            )  # fmt: skip
            links[link.id] = link
        self._audit("fleet_link_created", link=link.id, role=role, label=label, node=node,
                    node_link=link_id)  # fmt: skip
        return link

    def lookup(self, token: str) -> Link | None:
        """The usable link this token opens, without using up a one-time link."""
        digest = _hash(token)
        with self._lock:
            for link in self._load().values():
                if hmac.compare_digest(link.token_sha256, digest):
                    return link if link.usable() and not (link.one_time and link.used) else None
        return None

    def redeem(self, token: str) -> Link | None:
        """The usable link this token opens (a one-time link only once), or None."""
        digest = _hash(token)
        with self._changing() as links:
            for link in links.values():
                if hmac.compare_digest(link.token_sha256, digest):
                    if not link.usable() or (link.one_time and link.used):
                        return None
                    if link.one_time:
                        links[link.id] = link = _replace(link, used=True)
                    return link
        return None


def _replace(link: Link, **changes: object) -> Link:
    return Link(**{**asdict(link), **changes})


class Sessions:
    """Signed session cookies: ``<link id>.<expiry>.<hmac>``."""

    def __init__(self, store: LinkStore, state_dir: Path) -> None:
        self.store = store
        self._secret = _secret(private_dir(state_dir) / "secret")
        self._ended: dict[str, int] = {}  # signed-out cookies' signatures → their expiry

    def issue(self, link: Link) -> tuple[str, int]:
        """(cookie value, max-age seconds)."""
        expires = math.ceil(min(time.time() + SESSION_S, link.expires or float("inf")))
        payload = f"{link.id}.{expires}"
        return f"{payload}.{self._sign(payload)}", max(1, expires - int(time.time()))

    def verify(self, cookie: str | None) -> Link | None:
        if not cookie or cookie.count(".") != 2 or not cookie.isascii():
            return None
        link_id, expires, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(f"{link_id}.{expires}")):
            return None
        if not expires.isdigit() or int(expires) < time.time() or signature in self._ended:
            return None
        link = self.store.get(link_id)
        return link if link is not None and link.usable() else None

    def end(self, cookie: str | None) -> None:
        """Sign this session out: its cookie is refused from now on."""
        if self.verify(cookie) is None or cookie is None:
            return
        _, expires, signature = cookie.split(".")
        now = time.time()
        self._ended = {s: e for s, e in self._ended.items() if e >= now}  # drop lapsed ones
        self._ended[signature] = int(expires)

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()


def _secret(path: Path) -> bytes:
    """The cookie-signing key: made once (atomically, so a crash cannot leave it short)."""
    if not path.exists():
        fd, tmp = tempfile.mkstemp(prefix=".secret.", dir=path.parent)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(SECRET_BYTES))
        try:
            os.link(tmp, path)  # fails if another process made it first: theirs wins
        except FileExistsError:
            pass
        finally:
            os.unlink(tmp)
    secret = path.read_bytes()
    if len(secret) < SECRET_BYTES:
        raise SettingsError(
            f"{path} holds {len(secret)} bytes; a cookie-signing secret needs {SECRET_BYTES} "
            "random bytes, or cookies can be forged. Delete the file: the next start makes a "
            "new one (everyone signs in again)"
        )
    return secret


CHURN_EVENTS = frozenset({"viewer_joined", "viewer_left", "review_opened", "review_closed"})
CHURN_PER_MINUTE = 20  # per event and link: a reconnect loop writes no more than this


class Audit:
    """Append-only JSON lines: logins, links, viewers joining and leaving, settings, identity
    loads. Joins and leaves are written at most :data:`CHURN_PER_MINUTE` a minute per link and
    event; the rest are counted in one ``audit_suppressed`` line when the minute is over."""

    def __init__(self, state_dir: Path) -> None:
        self.path = private_dir(state_dir) / "audit.jsonl"
        self._lock = threading.Lock()
        self._churn: dict[tuple[str, str], tuple[float, int]] = {}  # → (minute start, count)

    def write(self, event: str, **fields: object) -> None:
        if event in CHURN_EVENTS and not self._admit(event, str(fields.get("link", ""))):
            return
        self._append(event, **fields)

    def _admit(self, event: str, link: str) -> bool:
        now = time.monotonic()
        with self._lock:
            start, count = self._churn.get((event, link), (now, 0))
            suppressed = 0
            if now - start >= 60:  # a new minute: report what the last one left out
                suppressed, start, count = max(0, count - CHURN_PER_MINUTE), now, 0
            count += 1
            self._churn[(event, link)] = (start, count)
        if suppressed:
            self._append("audit_suppressed", of=event, link=link, count=suppressed)
        return count <= CHURN_PER_MINUTE

    def _append(self, event: str, **fields: object) -> None:
        record = {"t": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, **fields}
        line = json.dumps(record, default=str) + "\n"
        with self._lock:
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with os.fdopen(fd, "a") as fh:
                fh.write(line)


class OpenRate:
    """Sockets a link may open: bursts of ``burst``, then ``per_s`` a second (a token bucket
    per link). A page reloading or switching camera stays well inside it; a reconnect loop
    does not, and would otherwise cost every viewer CPU."""

    def __init__(self, per_s: float = 1.0, burst: float = 10.0) -> None:
        self.per_s, self.burst = per_s, burst
        self._lock = threading.Lock()
        self._buckets: dict[str, tuple[float, float]] = {}  # link id → (allowance, when)

    def allow(self, link_id: str) -> bool:
        now = time.monotonic()
        with self._lock:
            allowance, when = self._buckets.get(link_id, (self.burst, now))
            allowance = min(self.burst, allowance + (now - when) * self.per_s)
            ok = allowance >= 1
            self._buckets[link_id] = (allowance - 1 if ok else allowance, now)
        return ok


@dataclass
class Auth:
    """Everything the app needs to let people in: links, sessions, audit."""

    links: LinkStore
    sessions: Sessions
    audit: Audit
    secure_cookies: bool = False  # set when serving over TLS
    socket_opens: OpenRate = field(default_factory=OpenRate)
    # a fleet sign-in's link asked again of its node (api.fleet) as a socket opens
    fleet_check: Callable[[Link], Awaitable[bool]] | None = None

    @classmethod
    def at(cls, state_dir: Path, *, secure_cookies: bool = False) -> Auth:
        audit = Audit(state_dir)
        store = LinkStore(state_dir, audit)
        return cls(store, Sessions(store, state_dir), audit, secure_cookies)

    def identify(self, cookie: str | None, authorization: str | None) -> Link | None:
        """The link behind a session cookie or a bearer token."""
        link = self.sessions.verify(cookie)
        if link is None and authorization and authorization.lower().startswith("bearer "):
            candidate = self.links.lookup(authorization[7:].strip())
            link = candidate if candidate is not None and not candidate.one_time else None
        return link


class LinkGate:
    """Who may pull a camera's RTSP stream (:mod:`agecast.media.rtsp`): the holder of a usable
    link's token, viewer or operator; each one let in is audited, and asked about again while
    it watches (a revoked or expired link stops the stream)."""

    def __init__(self, auth: Auth, camera: str) -> None:
        self.auth = auth
        self.camera = camera

    def admit(self, token: str | None) -> Admission | str:
        link = self.auth.links.lookup(token) if token else None
        if link is None or link.one_time:
            return (
                "not a usable link token: make one with `agecast links create --role viewer` "
                "and put it in the URL (?token=…) or give it as the password"
            )
        if link.burn_label:
            return (
                f"link {link.label!r} burns its label into what it shows, and the RTSP stream "
                "is one picture for every client: give a link made without --burn-label "
                "(or set ndi_label to burn one label into the stream)"
            )
        self.auth.audit.write("rtsp_play", camera=self.camera, by=link.label, link=link.id)
        links, link_id = self.auth.links, link.id
        return Admission(who=link.label, still_valid=lambda: links.still_usable(link_id))
