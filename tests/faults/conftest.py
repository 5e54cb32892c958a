"""Real agecast servers for fault tests: uvicorn in a thread on 127.0.0.1, real sign-in.

The pattern of ``tests/api/conftest.py`` (whose :class:`Running` handle this reuses), built from
any settings, so a test can run a server on a UDP feed, a corrupt file or a failing model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from agecast.api.app import create_app
from agecast.api.auth import Auth
from agecast.settings import Settings
from agecast.stream.live import LiveService
from tests.api.conftest import Running, free_port

START_S = 60.0


@contextmanager
def running_server(tmp: Path, *, wait_frames: int = 3, **flags: Any) -> Iterator[Running]:
    """A live server for ``Settings.load(**flags)``; waits for ``wait_frames`` processed frames
    (0: only for the server to listen, e.g. when the feed is not there yet)."""
    settings = Settings.load(**flags)
    auth = Auth.at(tmp / "state")
    holder: list[LiveService] = []

    def factory() -> LiveService:
        holder.append(LiveService(settings))
        return holder[0]

    port = free_port()
    config = uvicorn.Config(
        create_app(factory, auth=auth),
        host="127.0.0.1",
        port=port,
        ws_per_message_deflate=False,
        log_level="warning",
    )
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + START_S
        while not srv.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("agecast server did not start")
            time.sleep(0.05)
        while holder[0].built.pipeline.frames_out < wait_frames:
            if time.monotonic() > deadline:
                raise RuntimeError("agecast server started but processed no frames")
            time.sleep(0.05)
        artifacts = tmp / "artifacts"
        artifacts.mkdir(exist_ok=True)
        yield Running(
            f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", holder[0], artifacts, auth
        )
    finally:
        srv.should_exit = True
        thread.join(15)


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
