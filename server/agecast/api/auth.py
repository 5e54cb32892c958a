"""Who may watch and who may operate.

* **Links**: a link is a random token with a role (``operator`` or ``viewer``), a label (who it
  was given to), an expiry and a revoked flag, stored (token hashed) in ``links.json`` in the
  state folder, so ``agecast links …`` in another process can create and revoke links while
  the server runs. ``serve`` mints a one-time operator link at start (Jupyter style).
* **Sessions**: opening ``/?token=…`` exchanges the token for an HttpOnly cookie signed with the
  server's secret (``secret`` in the state folder, 0600). Every request re-checks the link
  behind the cookie, so a revoked or expired link stops working at once, cookie or not.
* API clients may send ``Authorization: Bearer <token>`` instead of a cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

Role = Literal["operator", "viewer"]
ROLES: tuple[Role, ...] = ("viewer", "operator")
COOKIE = "agecast_session"
SESSION_S = 12 * 3600  # a session cookie lasts at most this long (or until its link expires)


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

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "links.json"
        state_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._links: dict[str, Link] = {}
        self._mtime: float | None = None

    def _load(self) -> dict[str, Link]:
        try:
            mtime = self.path.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if mtime != self._mtime:
            raw = json.loads(self.path.read_text() or "[]")
            self._links = {item["id"]: Link(**item) for item in raw}
            self._mtime = mtime
        return self._links

    def _save(self, links: dict[str, Link]) -> None:
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(link) for link in links.values()], indent=1))
        os.chmod(tmp, 0o600)
        tmp.replace(self.path)
        self._links, self._mtime = links, self.path.stat().st_mtime_ns

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
        with self._lock:
            links = dict(self._load())
            links[link.id] = link
            self._save(links)
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
        with self._lock:
            links = dict(self._load())
            hits = [v for v in links.values() if id_or_label in (v.id, v.label) and not v.revoked]
            for link in hits:
                links[link.id] = _replace(link, revoked=True)
            if hits:
                self._save(links)
            return hits

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
        with self._lock:
            links = dict(self._load())
            for link in links.values():
                if hmac.compare_digest(link.token_sha256, digest):
                    if not link.usable() or (link.one_time and link.used):
                        return None
                    if link.one_time:
                        links[link.id] = link = _replace(link, used=True)
                        self._save(links)
                    return link
        return None


def _replace(link: Link, **changes: object) -> Link:
    return Link(**{**asdict(link), **changes})


class Sessions:
    """Signed session cookies: ``<link id>.<expiry>.<hmac>``."""

    def __init__(self, store: LinkStore, state_dir: Path) -> None:
        self.store = store
        self._secret = _secret(state_dir / "secret")

    def issue(self, link: Link) -> tuple[str, int]:
        """(cookie value, max-age seconds)."""
        expires = math.ceil(min(time.time() + SESSION_S, link.expires or float("inf")))
        payload = f"{link.id}.{expires}"
        return f"{payload}.{self._sign(payload)}", max(1, expires - int(time.time()))

    def verify(self, cookie: str | None) -> Link | None:
        if not cookie or cookie.count(".") != 2:
            return None
        link_id, expires, signature = cookie.split(".")
        if not hmac.compare_digest(signature, self._sign(f"{link_id}.{expires}")):
            return None
        if not expires.isdigit() or int(expires) < time.time():
            return None
        link = self.store.get(link_id)
        return link if link is not None and link.usable() else None

    def _sign(self, payload: str) -> str:
        return hmac.new(self._secret, payload.encode(), hashlib.sha256).hexdigest()


def _secret(path: Path) -> bytes:
    if not path.exists():
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(32))
    return path.read_bytes()


class Audit:
    """Append-only JSON lines: logins, viewers joining and leaving, settings, identity loads."""

    def __init__(self, state_dir: Path) -> None:
        self.path = state_dir / "audit.jsonl"
        self._lock = threading.Lock()

    def write(self, event: str, **fields: object) -> None:
        record = {"t": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "event": event, **fields}
        line = json.dumps(record, default=str) + "\n"
        with self._lock, self.path.open("a") as fh:
            fh.write(line)
            fh.flush()


@dataclass
class Auth:
    """Everything the app needs to let people in: links, sessions, audit."""

    links: LinkStore
    sessions: Sessions
    audit: Audit
    secure_cookies: bool = False  # set when serving over TLS

    @classmethod
    def at(cls, state_dir: Path, *, secure_cookies: bool = False) -> Auth:
        store = LinkStore(state_dir)
        return cls(store, Sessions(store, state_dir), Audit(state_dir), secure_cookies)

    def identify(self, cookie: str | None, authorization: str | None) -> Link | None:
        """The link behind a session cookie or a bearer token."""
        link = self.sessions.verify(cookie)
        if link is None and authorization and authorization.lower().startswith("bearer "):
            candidate = self.links.lookup(authorization[7:].strip())
            link = candidate if candidate is not None and not candidate.one_time else None
        return link
