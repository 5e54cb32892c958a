"""How uvicorn runs the monitor: the options ``agecast serve`` (and the tests) use.

uvicorn's h11 protocol waits for ever for a request's head, so a client that sends a header
byte every few seconds (slowloris) holds a connection open indefinitely; enough of them and
nobody else gets in. :class:`GuardedH11` closes a connection whose request head has not
arrived within :data:`HEAD_TIMEOUT_S`.

Every connection costs the server a request to parse and refuse, on the cores that encode
everyone's picture: a client reconnecting as fast as it can (or posting bodies it knows are
refused) made ~900 of them a second on loopback and raised another viewer's latency by half.
So each address has a budget of new connections (:class:`ConnectionBudget`: a burst of
:data:`CONNECT_BURST`, then :data:`CONNECT_RATE` a second); past it a connection is closed as
it is accepted, before any of it is read. A page load, a monitor's sockets and viewers
reconnecting after a network blip fit well inside it. The server's own machine (127.0.0.1,
::1) has no budget: a process there can take the CPU without a socket, and the machine's own
tools (a local compose health check, a bench, the tests' clients) connect from there.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

HEAD_TIMEOUT_S = 10.0  # a request line and headers take milliseconds on a LAN
CONNECT_BURST = 200.0  # new connections one address may open at once …
CONNECT_RATE = 50.0  # … and a second after that, on average
THIS_MACHINE = frozenset({"127.0.0.1", "::1", "::ffff:127.0.0.1"})
KEEP_ALIVE_S = 5
WS_MAX_BYTES = 256 * 1024  # a viewer's message; the server's own limits are lower
MAX_HEAD_BYTES = 32 * 1024  # request line and headers together


class ConnectionBudget:
    """New connections per address: a token bucket of ``burst`` filled at ``rate`` a second."""

    def __init__(self, rate: float = CONNECT_RATE, burst: float = CONNECT_BURST) -> None:
        self.rate, self.burst = rate, burst
        self._buckets: dict[str, tuple[float, float]] = {}  # address → (tokens, when)
        self._told: dict[str, float] = {}  # address → when its refusals were last logged
        self.refused = 0

    def allow(self, address: str, now: float | None = None) -> bool:
        if address in THIS_MACHINE:
            return True
        now = time.monotonic() if now is None else now
        tokens, then = self._buckets.get(address, (self.burst, now))
        tokens = min(self.burst, tokens + (now - then) * self.rate)
        if len(self._buckets) > 4096:  # forget addresses whose bucket is full again
            self._buckets = {
                a: (t, w)
                for a, (t, w) in self._buckets.items()
                if t + (now - w) * self.rate < self.burst
            }
        if tokens < 1.0:
            self._buckets[address] = (tokens, now)
            self.refused += 1
            if now - self._told.get(address, -1e9) > 10.0:
                self._told[address] = now
                log.warning(
                    "refusing connections from %s: over %g new connections a second",
                    address, self.rate,
                )  # fmt: skip
            return False
        self._buckets[address] = (tokens - 1.0, now)
        return True


BUDGET = ConnectionBudget()  # one per server process: the event loop's thread uses it


class GuardedH11(H11Protocol):
    """uvicorn's h11 protocol with a budget of new connections per address and a deadline for
    each request's head."""

    _head_timer: asyncio.TimerHandle | None = None
    _refused = False  # closed as it was accepted: uvicorn never saw it

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        peer = transport.get_extra_info("peername")
        if isinstance(peer, tuple) and not BUDGET.allow(str(peer[0])):
            self._refused = True
            transport.abort()  # closed unread: it costs the others nothing more
            return
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # still waiting for (the rest of) a head
            if self._head_timer is None:
                self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if not self._refused:
            super().connection_lost(exc)

    def _arm(self) -> None:
        self._head_timer = self.loop.call_later(HEAD_TIMEOUT_S, self._too_slow)

    def _disarm(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _too_slow(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            log.warning("closing a connection from %s: no request head in %gs", self.client,
                        HEAD_TIMEOUT_S)  # fmt: skip
            self.transport.close()


def uvicorn_options() -> dict[str, Any]:
    """Keyword arguments for ``uvicorn.run`` / ``uvicorn.Config`` besides app, host and port."""
    return {
        "http": GuardedH11,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        # permessage-deflate costs ~200 ms per large message and gains nothing on H.264
        "ws_per_message_deflate": False,
        "ws_max_size": WS_MAX_BYTES,
        "server_header": False,
    }
