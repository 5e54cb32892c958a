"""Fleet tickets: a signed-in user of one node carried to another without a second link.

Node A signs a ticket with the fleet key naming the node it is for, the link behind the user's
session on A (its id, role, label and expiry) and a one-time nonce; it lives
:data:`TICKET_S`. The browser takes it to ``https://B/?fleet_ticket=…``; B checks it
(:func:`read_ticket`) and makes a session of its own. The role in a ticket is never above the
link's on A (A signs only what the session on A may do).
"""

from __future__ import annotations

import base64
import binascii
import json
import secrets
import time
from dataclasses import asdict, dataclass

from agecast.errors import FleetError
from agecast.fleet.signing import FleetKey, Replays

TICKET_S = 60.0  # a ticket not used within this is refused
ROLES = ("viewer", "operator")


@dataclass(frozen=True, slots=True)
class Ticket:
    issuer: str  # the node that signed it (where the link lives)
    audience: str  # the node it opens
    link: str  # the link's id on the issuer
    role: str  # viewer | operator: never above the link's own
    label: str
    burn_label: bool
    link_expires: float | None  # the link's own expiry on the issuer
    expires: float  # the ticket's
    nonce: str

    @property
    def issued(self) -> float:
        """When it was signed: a ticket is made for :data:`TICKET_S` (only a holder of the key
        could sign one for longer, and such a one can sign anything anyway)."""
        return self.expires - TICKET_S


def make_ticket(
    key: FleetKey,
    *,
    issuer: str,
    audience: str,
    link: str,
    role: str,
    label: str,
    burn_label: bool,
    link_expires: float | None,
    lifetime_s: float = TICKET_S,
) -> str:
    """A ticket's text (URL-safe), valid for ``lifetime_s``, once."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}")
    ticket = Ticket(
        issuer, audience, link, role, label, burn_label, link_expires,
        expires=time.time() + lifetime_s, nonce=secrets.token_hex(12),
    )  # fmt: skip
    body = base64.urlsafe_b64encode(json.dumps(asdict(ticket)).encode()).decode().rstrip("=")
    return f"{body}.{key.sign('ticket', body)}"


def read_ticket(
    key: FleetKey, replays: Replays, text: str, *, me: str, known: frozenset[str]
) -> Ticket:
    """The ticket ``text`` if this node ``me`` may honour it (signed with the fleet key, for
    this node, from a node in ``known``, not expired, not used before, even before a
    restart); else :class:`FleetError` saying why."""
    body, _, signature = text.partition(".")
    if not body or not signature or not key.matches(signature, "ticket", body):
        raise FleetError("this fleet ticket is not signed with the fleet's key (altered or forged)")
    try:
        raw = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        ticket = Ticket(**raw)
    except (binascii.Error, ValueError, TypeError) as exc:
        raise FleetError(f"this fleet ticket cannot be read ({exc})") from exc
    now = time.time()
    if ticket.audience != me:
        raise FleetError(f"this ticket is for node {ticket.audience!r}, not {me!r}")
    if ticket.issuer not in known:
        raise FleetError(
            f"this ticket comes from node {ticket.issuer!r}, which is not in this node's fleet "
            "setting"
        )
    if ticket.role not in ROLES:
        raise FleetError(f"this ticket names an unknown role {ticket.role!r}")
    if not ticket.expires > now or ticket.expires > now + 2 * TICKET_S:
        raise FleetError(
            "this fleet ticket has expired: pick the camera again on the node you came from"
        )
    if ticket.link_expires is not None and ticket.link_expires <= now:
        raise FleetError("the link behind this ticket has expired on its node")
    if not replays.covers(ticket.issued, kept=True):
        raise FleetError(
            "this fleet ticket was signed before this node started, and which tickets were used "
            "here before then is not known (see this node's log): pick the camera again on the "
            "node you came from"
        )
    if not replays.first_use(ticket.nonce, ticket.expires, keep=True):
        raise FleetError(
            "this fleet ticket was already used: pick the camera again on the node you came from"
        )
    return ticket
