"""The other nodes as this one sees them: each asked for its cameras every ``fleet_poll_s``,
in the background, on threads of its own (never the event loop's, never the live path's).

A node that does not answer (refused, timed out, untrusted, wrong key) is shown unreachable at
once, with why, and keeps its last known cameras; it comes back by itself on its next answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from pydantic import ValidationError

from agecast.errors import FleetError, explain_fields
from agecast.fleet.client import PeerClient
from agecast.fleet.signing import NONCES_FILE, FleetKey, Replays
from agecast.live.status import CameraSummary, FleetNode, FleetStatus, PeerReply
from agecast.settings import FleetEntry, Settings, fleet_entries

log = logging.getLogger(__name__)

PEER_STATUS = "/api/peer/status"
PEER_LINKS = "/api/peer/links"
T = TypeVar("T")


@dataclass
class PeerState:
    entry: FleetEntry
    reachable: bool = False
    seen: float | None = None  # time.monotonic() of its last answer
    error: str | None = "not asked yet"
    version: str | None = None
    cameras: list[CameraSummary] = field(default_factory=list)


class Fleet:
    """This node (``me``), its peers and the key they share."""

    def __init__(
        self,
        me: str,
        peers: Iterable[FleetEntry],
        key: FleetKey,
        *,
        poll_s: float = 1.0,
        recheck_s: float = 30.0,
        ca: Path | None = None,
        nonces: Path | None = None,
    ) -> None:
        self.me, self.key, self.poll_s, self.recheck_s = me, key, poll_s, recheck_s
        timeout = max(1.0, min(2.0, 2 * poll_s))  # a hung peer shows within ~2 s
        self.clients = {p.name: PeerClient(p, me, key, ca=ca, timeout_s=timeout) for p in peers}
        self.states = {name: PeerState(c.peer) for name, c in self.clients.items()}
        # nonces of requests and tickets this node has accepted (tickets' kept in ``nonces``)
        self.replays = Replays(nonces)
        self._pool = ThreadPoolExecutor(
            max_workers=len(self.clients) + 2, thread_name_prefix="fleet"
        )
        self._tasks: list[asyncio.Task[None]] = []

    @classmethod
    def from_settings(cls, settings: Settings) -> Fleet | None:
        """The fleet ``settings`` describe (None: no ``fleet`` setting); the key is read now,
        so a missing one stops the start with what to do."""
        if not settings.fleet:
            return None
        return cls(
            settings.node_name,
            fleet_entries(settings.fleet),
            FleetKey.load(settings.resolved_fleet_secret),
            poll_s=settings.fleet_poll_s,
            recheck_s=settings.fleet_recheck_s,
            ca=settings.fleet_ca,
            nonces=settings.state_dir / NONCES_FILE,
        )

    @property
    def names(self) -> frozenset[str]:
        return frozenset(self.clients)

    def url(self, node: str) -> str:
        return self.clients[node].peer.url

    async def ask(self, node: str, target: str) -> Any:
        """``GET target`` on ``node``, on the fleet's own threads."""
        return await self.call(self.clients[node].get, target)

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._pool, fn, *args)

    def start(self) -> None:
        self._tasks = [asyncio.create_task(self._poll(name)) for name in self.clients]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _poll(self, name: str) -> None:
        while True:
            await self.refresh(name)
            await asyncio.sleep(self.poll_s)

    async def refresh(self, name: str) -> None:
        """Ask ``name`` for its cameras now and note what it said (or why it did not)."""
        state = self.states[name]
        try:
            reply = PeerReply.model_validate(await self.ask(name, PEER_STATUS))
        except FleetError as exc:
            self._lost(state, str(exc))
            return
        except ValidationError as exc:
            self._lost(state, f"its status is not understood (another agecast version?): "
                       f"{explain_fields(exc)[:300]}")  # fmt: skip
            return
        if not state.reachable:
            log.info("fleet: node %s is reachable", name)
        state.reachable, state.error, state.seen = True, None, time.monotonic()
        state.version, state.cameras = reply.version, list[CameraSummary](reply.cameras)

    def _lost(self, state: PeerState, why: str) -> None:
        if state.reachable or state.error != why:
            log.warning("fleet: node %s: %s", state.entry.name, why)
        state.reachable, state.error = False, why

    def view(self, own: list[CameraSummary], version: str, via: str | None) -> FleetStatus:
        """Every node, this one first (its cameras ``own``), as the page and /metrics show it."""
        now = time.monotonic()
        nodes = [
            FleetNode(name=self.me, url="", here=True, reachable=True, last_seen_s=0.0,
                      error=None, version=version, cameras=own),
            *(
                FleetNode(
                    name=s.entry.name, url=s.entry.url, here=False, reachable=s.reachable,
                    last_seen_s=None if s.seen is None else round(now - s.seen, 2),
                    error=s.error, version=s.version, cameras=s.cameras,
                )
                for s in self.states.values()
            ),
        ]  # fmt: skip
        return FleetStatus(node=self.me, via=via, nodes=nodes)
