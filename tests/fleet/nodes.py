"""Real agecast nodes of one fleet on this machine: ``agecast serve`` subprocesses on
127.0.0.1 ports, each with its own state folder and the same fleet key.

Node A is opened as ``127.0.0.1`` and node B as ``localhost``: two hosts to the browser, so
each keeps its own session cookie, as two carts on a set do (cookies ignore ports)."""

from __future__ import annotations

import json
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agecast.api.auth import COOKIE, LinkStore, Role
from agecast.fleet.signing import init_key
from tests.e2e.conftest import AgecastServer, free_port

POLL_S = "0.3"  # the nodes ask each other this often (default 1 s)
RECHECK_S = "1"  # and re-check carried sign-ins this often (default 30 s)
SOURCE_B = "testpattern:320x180@15"  # not A's: a test can tell the two nodes' pictures apart


@dataclass
class Node(AgecastServer):
    host: str = "127.0.0.1"
    scheme: str = "http"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def token(self, role: Role = "operator", label: str = "fleet-test") -> tuple[str, str]:
        """(link id, token) of a fresh link of ``role`` on this node."""
        link, token = LinkStore(self.state_dir).create(role, label=label, expires_s=600)
        return link.id, token

    def get(self, path: str, *, token: str | None = None, cookie: str | None = None) -> Any:
        """``GET path`` as JSON (an HTTPError for a refusal)."""
        headers = {"authorization": f"Bearer {token}"} if token else {}
        if cookie:
            headers["cookie"] = f"{COOKIE}={cookie}"
        req = urllib.request.Request(self.url + path, headers=headers)
        with urllib.request.urlopen(req, timeout=10) as res:
            body = res.read()
        return json.loads(body) if path != "/metrics" else body.decode()

    def post(self, path: str, body: dict[str, Any], *, token: str | None = None,
             cookie: str | None = None) -> Any:  # fmt: skip
        headers = {"content-type": "application/json"}
        if token:
            headers["authorization"] = f"Bearer {token}"
        if cookie:
            headers["cookie"] = f"{COOKIE}={cookie}"
        req = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), headers=headers, method="POST"
        )
        with urllib.request.urlopen(req, timeout=10) as res:
            return json.loads(res.read())


@contextmanager
def fleet_nodes(tmp: Path, *, source_b: str = SOURCE_B) -> Iterator[tuple[Node, Node]]:
    """Nodes A (127.0.0.1) and B (localhost), each in the other's fleet setting, running."""
    port_a, port_b = free_port(), free_port()
    a = Node(port_a, tmp / "a.log", tmp / "a", host="127.0.0.1")
    b = Node(port_b, tmp / "b.log", tmp / "b", host="localhost", source=source_b)
    init_key(a.state_dir / "fleet_secret")
    b.state_dir.mkdir(parents=True)
    shutil.copy(a.state_dir / "fleet_secret", b.state_dir / "fleet_secret")
    common = ["--fleet-poll-s", POLL_S, "--fleet-recheck-s", RECHECK_S]
    a.args = ["--node-name", "A", "--fleet", f"B={b.url}", *common]
    b.args = ["--node-name", "B", "--fleet", f"A={a.url}", *common]
    try:  # stop() also ends a node whose start timed out
        a.start()
        b.start()
        yield a, b
    finally:
        b.stop()
        a.stop()


def wait_for(what: str, check: Callable[[], Any], timeout_s: float = 20.0) -> Any:
    """``check()``'s first true value, asked every 0.1 s (AssertionError naming ``what``)."""
    deadline = time.monotonic() + timeout_s
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except (OSError, urllib.error.HTTPError) as exc:
            last = exc
        if last and not isinstance(last, Exception):
            return last
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {timeout_s} s (last: {last!r})")


def peer(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(n for n in status["fleet"]["nodes"] if n["name"] == name)
