"""Asking another node, signed (:mod:`~agecast.fleet.signing`), over http or https.

An https peer is checked one of two ways, never neither: its certificate's sha256 matches the
pin in its fleet entry (``#sha256=…``: a self-signed certificate, as ``agecast certs
selfsigned`` makes), or it chains to the system's CAs or ``fleet_ca`` and names the host. A
plain-http peer's replies are still signed with the fleet key, but what the browser carries
between nodes (a ticket) can be read on the wire: use https off a closed network.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from agecast.errors import FleetError
from agecast.fleet.signing import HEADER, REPLY_HEADER, FleetKey, reply_parts, request_header
from agecast.settings import FleetEntry

MAX_REPLY = 1 << 20  # bytes: a node's status is a few kB


def certificate_pin(der: bytes) -> str:
    """The pin of a certificate (DER bytes): its sha256, lower-case hex."""
    return hashlib.sha256(der).hexdigest()


class PeerClient:
    """Signed GETs from this node (``me``) to one peer; blocking, with a timeout."""

    def __init__(
        self, peer: FleetEntry, me: str, key: FleetKey, *, ca: Path | None, timeout_s: float
    ) -> None:
        self.peer, self.me, self.key, self.timeout_s = peer, me, key, timeout_s
        parts = urlsplit(peer.url)
        self._https = parts.scheme == "https"
        self._host = parts.hostname or ""
        self._port = parts.port or (443 if self._https else 80)
        self._context: ssl.SSLContext | None = None
        if self._https:
            if peer.pin is not None:  # trust is the pin: checked by hand after the handshake
                self._context = ssl.create_default_context()
                self._context.check_hostname = False
                self._context.verify_mode = ssl.CERT_NONE
            else:
                self._context = ssl.create_default_context(cafile=str(ca) if ca else None)

    def get(self, target: str) -> Any:
        """The JSON reply to ``GET target`` (a path with its query); :class:`FleetError` saying
        what went wrong (unreachable, untrusted, refused, not signed by the fleet)."""
        name = self.peer.name
        conn: http.client.HTTPConnection
        if self._context is not None:
            conn = http.client.HTTPSConnection(
                self._host, self._port, timeout=self.timeout_s, context=self._context
            )
        else:
            conn = http.client.HTTPConnection(self._host, self._port, timeout=self.timeout_s)
        header = request_header(self.key, self.me, name, "GET", target)
        try:
            conn.connect()
            self._check_pin(conn)
            conn.request("GET", target, headers={HEADER: header, "accept": "application/json"})
            res = conn.getresponse()
            body = res.read(MAX_REPLY + 1)
        except ssl.SSLCertVerificationError as exc:
            raise FleetError(
                f"node {name}'s certificate is not trusted ({exc.verify_message}): pin it in the "
                f"fleet entry ({name}={self.peer.url}#sha256=…, `agecast fleet pin` prints it) "
                "or give its CA with fleet_ca"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:
            why = f"node {name} at {self.peer.url} cannot be reached: {_why(exc)}"
            raise FleetError(why) from exc
        finally:
            conn.close()
        if len(body) > MAX_REPLY:
            raise FleetError(f"node {name} sent a reply over {MAX_REPLY} bytes")
        if res.status != 200:
            raise FleetError(f"node {name} refused: {_detail(body) or res.status}")
        nonce = header.split(" ")[4]
        signature = res.getheader(REPLY_HEADER) or ""
        if not self.key.matches(signature, *reply_parts(nonce, body)):
            raise FleetError(f"node {name}'s reply is not signed with the fleet key")
        try:
            return json.loads(body)
        except ValueError as exc:
            raise FleetError(f"node {name} sent a reply that is not JSON ({exc})") from exc

    def _check_pin(self, conn: http.client.HTTPConnection) -> None:
        if self.peer.pin is None or not isinstance(conn.sock, ssl.SSLSocket):
            return
        der = conn.sock.getpeercert(binary_form=True) or b""
        got = certificate_pin(der)
        if got != self.peer.pin:
            raise FleetError(
                f"node {self.peer.name}'s certificate sha256 is {got}, not the pinned "
                f"{self.peer.pin}: if its certificate was renewed, pin the new one; if not, "
                "something else answers at its address"
            )


def _why(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused (is agecast serve running there?)"
    return str(exc) or type(exc).__name__


def _detail(body: bytes) -> str:
    try:
        detail = json.loads(body).get("detail")
    except (ValueError, AttributeError):
        return ""
    return str(detail)[:300] if detail else ""
