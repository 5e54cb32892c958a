"""A clock the fleet's signing and tickets read instead of the real one, so a test can say
exactly what happened before a node's (re)start and what after."""

from __future__ import annotations

import pytest

from agecast.fleet import signing, tickets


class Clock:
    """Stands in for the ``time`` module: ``time()`` is ``now``, moved by hand."""

    def __init__(self, now: float) -> None:
        self.now = now

    def time(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock(1_800_000_000.0)
    for module in (signing, tickets):
        monkeypatch.setattr(module, "time", clock)
    return clock
