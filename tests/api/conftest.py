"""A real agecast server on 127.0.0.1 (uvicorn in a thread, real sockets), with real sign-in."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from agecast.api.app import create_app
from agecast.api.auth import COOKIE, Auth, Role
from agecast.api.serve import uvicorn_options
from agecast.live.service import LiveService, live_services
from agecast.settings import Settings


@dataclass
class Running:
    base: str
    ws: str
    service: LiveService  # the first camera's
    artifacts: Path
    auth: Auth
    services: list[LiveService] = field(default_factory=list)  # one per camera

    def session(self, role: Role = "operator", label: str = "test") -> str:
        """A signed-in session cookie value for a fresh link of ``role``."""
        link, _ = self.auth.links.create(role, label=label, expires_s=3600)
        return self.auth.sessions.issue(link)[0]

    def client(self, role: Role = "operator") -> httpx.Client:
        return httpx.Client(base_url=self.base, cookies={COOKIE: self.session(role)})

    def ws_headers(self, role: Role = "operator") -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.session(role)}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


START_S = 60.0


@contextmanager
def running_server(tmp: Path, *, wait_frames: int = 3, **flags: Any) -> Iterator[Running]:
    """A live server for ``Settings.load(**flags)`` (``cameras=[…]``: one service per camera);
    waits for ``wait_frames`` processed frames of the first camera (0: only for the server to
    listen, e.g. when the feed is not there yet)."""
    settings = Settings.load(**flags)
    auth = Auth.at(tmp / "state")
    holder: list[LiveService] = []

    def factory() -> list[LiveService]:
        holder.extend(live_services(settings))
        return list(holder)

    port = free_port()
    config = uvicorn.Config(
        create_app(factory, auth=auth),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        **uvicorn_options(),  # as `agecast serve` runs it
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
            f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", holder[0], artifacts, auth,
            list(holder),
        )  # fmt: skip
    finally:
        srv.should_exit = True
        thread.join(15)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    with running_server(
        tmp_path_factory.mktemp("api"), source="testpattern:640x360@30", identity="testpattern"
    ) as srv:
        yield srv
