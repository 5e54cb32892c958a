"""Real agecast servers for fault tests: uvicorn in a thread on 127.0.0.1, real sign-in.

The pattern of ``tests/api/conftest.py`` (whose :class:`Running` handle this reuses), built from
any settings, so a test can run a server on a UDP feed, a corrupt file or a failing model.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.api.conftest import Running, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    """A small test-pattern server shared by a module's tests."""
    with running_server(
        tmp_path_factory.mktemp("faults"), source="testpattern:320x180@30", identity="testpattern"
    ) as srv:
        yield srv


def poll(condition: Callable[[], bool], timeout_s: float, step_s: float = 0.01) -> float | None:
    """Seconds until ``condition`` held (polling every ``step_s``), or None after ``timeout_s``."""
    started = time.monotonic()
    while True:
        if condition():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            return None
        time.sleep(step_s)


def status(client: httpx.Client) -> dict[str, Any]:
    response = client.get("/api/status", timeout=5)
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result
