"""The fleet's shared key, and what the nodes sign with it.

The key is 32 random bytes written as hex text in one file (``agecast fleet init``), copied to
every node of the fleet; whoever holds it can speak for any node, so it is kept like the
session secret (0600, private state folder).

A request from one node to another carries :data:`HEADER`::

    v1 <from> <to> <unix time> <nonce> <hmac-sha256 hex>

signed over those fields, the method and the path with its query. The receiving node refuses a
signature that is wrong, a ``to`` that is not its own name, a time more than :data:`SKEW_S` off
its clock, a nonce it has seen within that window (:class:`Replays`), and one signed before the
node started (whose nonce a restart forgot): a captured request cannot be sent again. Its reply
carries :data:`REPLY_HEADER`, the key's signature over the request's nonce and the reply body,
so a man in the middle of a plain-http LAN cannot answer in its place either.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
import threading
import time
from pathlib import Path

from agecast.errors import FleetError, SettingsError
from agecast.outfiles import write_private

log = logging.getLogger(__name__)

KEY_BYTES = 32
SKEW_S = 30.0  # a signed request older (or newer) than this is refused
HEADER = "x-agecast-fleet"
REPLY_HEADER = "x-agecast-fleet-reply"
NONCES_FILE = "fleet_nonces.json"  # in the state folder: the ticket nonces used, until when


class FleetKey:
    """The shared key: signs and checks."""

    def __init__(self, key: bytes) -> None:
        if len(key) < KEY_BYTES:
            raise ValueError(f"a fleet key needs {KEY_BYTES} bytes, got {len(key)}")
        self._key = key

    @classmethod
    def load(cls, path: Path) -> FleetKey:
        """The key in ``path``; :class:`SettingsError` saying how to make or copy one."""
        try:
            text = path.read_text().strip()
        except FileNotFoundError:
            raise SettingsError(
                f"the fleet setting lists other nodes but there is no fleet key at {path}: run "
                "`agecast fleet init` on one node and copy that file to the same place on the "
                "others (or point fleet_secret at it)"
            ) from None
        except OSError as exc:
            raise SettingsError(f"cannot read the fleet key {path}: {exc}") from exc
        try:
            return cls(bytes.fromhex(text))
        except ValueError as exc:
            raise SettingsError(
                f"{path} is not a fleet key ({exc}): it must hold {KEY_BYTES * 2} hex digits as "
                "`agecast fleet init` writes them; copy it again from the node that made it"
            ) from exc

    def sign(self, *parts: str) -> str:
        return hmac.new(self._key, "\n".join(parts).encode(), hashlib.sha256).hexdigest()

    def matches(self, signature: str, *parts: str) -> bool:
        return hmac.compare_digest(signature.encode(), self.sign(*parts).encode())


def init_key(path: Path) -> bool:
    """Write a new fleet key to ``path`` unless one is there (True: made one)."""
    if path.exists():
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    write_private(path, (secrets.token_bytes(KEY_BYTES).hex() + "\n").encode())
    return True


class Replays:
    """Nonces seen, each kept until it could no longer be accepted anyway.

    What was signed before this memory began (:attr:`started`, the node's start) may have been
    used before a restart, so :meth:`covers` says no to it. Ticket nonces (``keep``) are also
    written to ``path`` and read back at the start, so a restart remembers them; request nonces
    (a peer asks every second) are not: a peer signs a fresh request next round anyway. Without
    ``path``, or when it cannot be read (which the log says), tickets too are covered only from
    the start on.
    """

    def __init__(self, path: Path | None = None) -> None:
        self.started = time.time()
        self.path = path
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # nonce → until (unix time)
        self._kept: dict[str, float] = {}  # the ticket nonces among them, as in ``path``
        self._kept_since = self.started  # tickets signed from then on are known here if used
        if path is not None:
            self._load(path)

    def _load(self, path: Path) -> None:
        try:
            doc = json.loads(path.read_text())
            since, used = float(doc["since"]), doc["used"]
            kept = {str(n): float(u) for n, u in used.items()}
        except FileNotFoundError:  # none used here yet, or only by an agecast before the file
            pass
        except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
            log.warning(
                "fleet: cannot read the used fleet tickets in %s (%s): tickets signed before "
                "this start are refused, as they may have been used already; the file is "
                "written anew when the next ticket is used",
                path, exc,
            )  # fmt: skip
        else:
            self._kept_since, self._kept = since, kept
            self._seen.update(kept)

    def covers(self, signed: float, *, kept: bool = False) -> bool:
        """Whether a nonce signed at ``signed`` (unix time) would be known here had it been
        used: since the start; for tickets (``kept``) also before it, when ``path`` was read."""
        return signed >= (self._kept_since if kept else self.started)

    def first_use(self, nonce: str, until: float, *, keep: bool = False) -> bool:
        """True the first time ``nonce`` is offered (it is remembered until ``until``; with
        ``keep``, in ``path`` too: :class:`FleetError` when that cannot be written)."""
        now = time.time()
        with self._lock:
            if len(self._seen) > 1024:
                self._seen = {n: u for n, u in self._seen.items() if u >= now}
            if nonce in self._seen and self._seen[nonce] >= now:
                return False
            self._seen[nonce] = until
            if keep and self.path is not None:
                self._kept = {n: u for n, u in self._kept.items() if u >= now}
                self._kept[nonce] = until
                doc = {"since": self._kept_since, "used": self._kept}
                try:
                    write_private(self.path, json.dumps(doc).encode())
                except OSError as exc:
                    raise FleetError(
                        f"cannot note this ticket as used in {self.path} ({exc}): free or fix "
                        "the state folder, then pick the camera again on the node you came from"
                    ) from exc
            return True


def request_header(key: FleetKey, sender: str, to: str, method: str, target: str) -> str:
    """The :data:`HEADER` value for one request from node ``sender`` to node ``to``."""
    stamp, nonce = str(int(time.time())), secrets.token_hex(12)
    signature = key.sign("v1", sender, to, stamp, nonce, method.upper(), target)
    return f"v1 {sender} {to} {stamp} {nonce} {signature}"


def check_request(
    key: FleetKey, replays: Replays, me: str, header: str | None, method: str, target: str
) -> tuple[str, str]:
    """(sending node, nonce) of a request signed for this node ``me``; :class:`FleetError`
    saying why it is refused."""
    fields = (header or "").split(" ")
    if len(fields) != 6 or fields[0] != "v1":
        raise FleetError(f"not a signed fleet request (no valid {HEADER} header)")
    _, sender, to, stamp, nonce, signature = fields
    if not key.matches(signature, "v1", sender, to, stamp, nonce, method.upper(), target):
        raise FleetError("the fleet signature is wrong: the nodes do not share one fleet key")
    if to != me:
        raise FleetError(f"this node is {me!r}, not {to!r}: name it {me!r} in the fleet setting")
    if not stamp.isdigit() or abs(time.time() - int(stamp)) > SKEW_S:
        raise FleetError(
            f"the request's time is more than {SKEW_S:g} s off this node's clock: keep the "
            "nodes' clocks in step (NTP / PTP)"
        )
    if not replays.covers(int(stamp)):
        raise FleetError(
            "this fleet request was signed before this node started (it may have been used "
            "before the restart): refused, the peer's next request will do"
        )
    if not replays.first_use(nonce, int(stamp) + SKEW_S):
        raise FleetError("this fleet request was already used (a replay)")
    return sender, nonce


def reply_parts(nonce: str, body: bytes) -> tuple[str, str, str]:
    """What a reply's :data:`REPLY_HEADER` signs: the request's nonce and the body."""
    return ("reply", nonce, hashlib.sha256(body).hexdigest())
