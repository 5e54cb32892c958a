"""How quickly the fleet notices things (not run in CI): two real nodes (``agecast serve``
subprocesses on 127.0.0.1 ports, B opened as ``localhost``), each in the other's fleet.

For ``--rounds`` rounds it measures
* ``down_s``: B stopped (SIGTERM sent) → A's ``/api/status`` shows B unreachable;
* ``up_s``: B answering its own ``/api/health`` again → A shows B reachable;
* ``revoke_s``: a viewer's link revoked on A → that viewer's socket on B (signed in with a
  fleet ticket) closed by B;
with the settings' poll interval (``--poll-s``, default 1 s as shipped) and re-check interval
(``--recheck-s``; shipped 30 s, 5 s here so a run stays short — the window scales with it).

    python bench/fleet.py --rounds 3 --json bench/results/fleet-cpu-2core.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

from report import write_report

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "server"))

from agecast.api.auth import COOKIE, LinkStore  # noqa: E402
from agecast.fleet.signing import init_key  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Node:
    def __init__(self, name: str, host: str, folder: Path, source: str) -> None:
        self.name, self.port, self.state = name, free_port(), folder / name
        self.url = f"http://{host}:{self.port}"
        self.log = folder / f"{name}.log"
        self.source = source
        self.args: list[str] = []
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {**os.environ, "AGECAST_STATE_DIR": str(self.state), "COLUMNS": "240",
               "PYTHONPATH": str(REPO / "server")}  # fmt: skip
        cmd = [sys.executable, "-m", "agecast.cli", "--log-level", "warning", "serve",
               "--source", self.source, "--identity", "testpattern", "--port", str(self.port),
               "--node-name", self.name, *self.args]  # fmt: skip
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=out)
        until(lambda: self.get("/api/health"), 60, f"{self.name} to start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(20)
            self.proc = None

    def get(self, path: str, token: str | None = None) -> Any:
        headers = {"authorization": f"Bearer {token}"} if token else {}
        req = urllib.request.Request(self.url + path, headers=headers)
        with urllib.request.urlopen(req, timeout=5) as res:
            return json.loads(res.read())

    def post(self, path: str, body: dict[str, Any], token: str) -> Any:
        req = urllib.request.Request(
            self.url + path, data=json.dumps(body).encode(), method="POST",
            headers={"authorization": f"Bearer {token}", "content-type": "application/json"},
        )  # fmt: skip
        with urllib.request.urlopen(req, timeout=5) as res:
            return json.loads(res.read())


def until(check: Any, timeout_s: float, what: str) -> float:
    """Seconds until ``check()`` is true (asked every 20 ms)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout_s:
        try:
            if check():
                return time.monotonic() - start
        except (OSError, ValueError):
            pass
        time.sleep(0.02)
    raise RuntimeError(f"waited {timeout_s} s for {what}")


def b_reachable(a: Node, token: str) -> bool:
    nodes = a.get("/api/status", token)["fleet"]["nodes"]
    return bool(next(n for n in nodes if n["name"] == "B")["reachable"])


async def revoke_round(a: Node, b: Node) -> float:
    from websockets.asyncio.client import connect
    from websockets.exceptions import ConnectionClosed

    link, token = LinkStore(a.state).create("viewer", label="bench", expires_s=600)
    url = a.post("/api/fleet/ticket", {"node": "B"}, token)["url"]
    with urllib.request.urlopen(url, timeout=5) as res:
        cookie = SimpleCookie(res.headers.get("set-cookie", ""))[COOKIE].value
    ws_url = b.url.replace("http", "ws") + "/ws/monitor"
    async with connect(ws_url, additional_headers={"cookie": f"{COOKIE}={cookie}"},
                       max_size=None) as ws:  # fmt: skip
        await ws.recv()  # hello
        revoked = time.monotonic()
        LinkStore(a.state).revoke(link.id)
        try:
            while True:
                await asyncio.wait_for(ws.recv(), 120)
        except ConnectionClosed:
            return time.monotonic() - revoked


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--poll-s", type=float, default=1.0)
    ap.add_argument("--recheck-s", type=float, default=5.0)
    ap.add_argument("--json", type=Path, default=None)
    args = ap.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="agecast-fleet-bench-"))
    a = Node("A", "127.0.0.1", folder, "testpattern:640x360@30")
    b = Node("B", "localhost", folder, "testpattern:640x360@30")
    init_key(a.state / "fleet_secret")
    b.state.mkdir(parents=True)
    shutil.copy(a.state / "fleet_secret", b.state / "fleet_secret")
    timing = ["--fleet-poll-s", str(args.poll_s), "--fleet-recheck-s", str(args.recheck_s)]
    a.args, b.args = ["--fleet", f"B={b.url}", *timing], ["--fleet", f"A={a.url}", *timing]
    down, up, revoke = [], [], []
    try:
        a.start()
        b.start()
        _, token = LinkStore(a.state).create("viewer", label="bench", expires_s=3600)
        until(lambda: b_reachable(a, token), 30, "A to see B")
        for _ in range(args.rounds):
            assert b.proc is not None
            b.proc.terminate()
            stopped = time.monotonic()
            until(lambda: not b_reachable(a, token), 30, "A to see B down")
            down.append(time.monotonic() - stopped)
            b.proc.wait(20)
            b.start()
            up.append(until(lambda: b_reachable(a, token), 30, "A to see B back"))
            revoke.append(asyncio.run(revoke_round(a, b)))
    finally:
        b.stop()
        a.stop()
        shutil.rmtree(folder, ignore_errors=True)

    def summary(values: list[float]) -> dict[str, Any]:
        median = round(statistics.median(values), 3)
        return {"samples": [round(v, 3) for v in values], "median": median,
                "max": round(max(values), 3)}  # fmt: skip

    write_report(
        {
            "what": "fleet: seconds until a stopped / restarted node shows in the other's status, "
            "and until a link revoked on A ends its ticket session's socket on B",
            "command": " ".join(["python", "bench/fleet.py", *sys.argv[1:]]),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
            "poll_s": args.poll_s,
            "recheck_s": args.recheck_s,
            "down_s": summary(down),
            "up_s": summary(up),
            "revoke_s": summary(revoke),
        },
        args.json,
    )


if __name__ == "__main__":
    main()
