"""How uvicorn runs the monitor: the options ``agecast serve`` (and the tests) use.

uvicorn's h11 protocol waits for ever for a request's head, so a client that sends a header
byte every few seconds (slowloris) holds a connection open indefinitely; enough of them and
nobody else gets in. :class:`HeadTimeoutH11` closes a connection whose request head has not
arrived within :data:`HEAD_TIMEOUT_S`.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

log = logging.getLogger(__name__)

HEAD_TIMEOUT_S = 10.0  # a request line and headers take milliseconds on a LAN
KEEP_ALIVE_S = 5
WS_MAX_BYTES = 256 * 1024  # a viewer's message; the server's own limits are lower
MAX_HEAD_BYTES = 32 * 1024  # request line and headers together


class HeadTimeoutH11(H11Protocol):
    """uvicorn's h11 protocol with a deadline for each request's head."""

    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is h11.IDLE:  # still waiting for (the rest of) a head
            if self._head_timer is None:
                self._arm()
        else:
            self._disarm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
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
        "http": HeadTimeoutH11,
        "timeout_keep_alive": KEEP_ALIVE_S,
        "h11_max_incomplete_event_size": MAX_HEAD_BYTES,
        # permessage-deflate costs ~200 ms per large message and gains nothing on H.264
        "ws_per_message_deflate": False,
        "ws_max_size": WS_MAX_BYTES,
        "server_header": False,
    }
