"""``agecast serve`` ends cleanly on SIGTERM and SIGINT: within seconds, exit code 0, the audit
log complete to its last line, the port free again. A real subprocess on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from websockets.asyncio.client import connect

from agecast.api.auth import Auth
from tests.api.conftest import free_port

REPO = Path(__file__).resolve().parents[2]
EXIT_WITHIN_S = 5.0
SIGNALS = [signal.SIGTERM, signal.SIGINT]


@dataclass
class Shutdown:
    signal: signal.Signals
    viewer: bool
    returncode: int | None = None
    exit_s: float | None = None
    audit: list[str] = field(default_factory=list)
    port_free: bool = False
    viewer_pictures: int = 0
    viewer_end: str | None = None
    stderr: str = ""


def _port_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _wait_serving(base: str, token: str, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 90
    headers = {"Authorization": f"Bearer {token}"}
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"agecast serve exited during start-up ({proc.returncode})")
        try:
            status = httpx.get(f"{base}/api/status", headers=headers, timeout=2)
            if status.status_code == 200 and status.json()["frames_out"] > 3:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError("agecast serve did not start in time")


def _watch(url: str, token: str, result: Shutdown, ready: threading.Event) -> None:
    async def run() -> None:
        headers = {"Authorization": f"Bearer {token}"}
        try:
            async with connect(url, additional_headers=headers, max_size=None) as ws:
                async for message in ws:
                    if isinstance(message, bytes):
                        result.viewer_pictures += 1
                        ready.set()
            result.viewer_end = f"closed {ws.close_code}"
        except Exception as exc:  # the end of the stream is what we look at
            result.viewer_end = f"{type(exc).__name__}: {exc}"
        ready.set()

    asyncio.run(run())


def run_and_stop(tmp: Path, sig: signal.Signals, *, viewer: bool) -> Shutdown:
    result = Shutdown(sig, viewer)
    state = tmp / "state"
    port = free_port()
    env = {**os.environ, "AGECAST_STATE_DIR": str(state), "PYTHONFAULTHANDLER": "1"}
    command = [
        sys.executable, "-m", "agecast.cli", "serve", "--source", "testpattern:320x180@30",
        "--identity", "testpattern", "--port", str(port),
    ]  # fmt: skip
    with (tmp / "stdout").open("wb") as out, (tmp / "stderr").open("wb") as err:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=out, stderr=err)
        try:
            _, token = Auth.at(state).links.create("viewer", label="shutdown", expires_s=600)
            _wait_serving(f"http://127.0.0.1:{port}", token, proc)
            watcher = None
            if viewer:
                ready = threading.Event()
                url = f"ws://127.0.0.1:{port}/ws/monitor"
                watcher = threading.Thread(target=_watch, args=(url, token, result, ready))
                watcher.start()
                assert ready.wait(20), "the viewer got no picture"
            sent = time.monotonic()
            proc.send_signal(sig)
            try:
                result.returncode = proc.wait(EXIT_WITHIN_S * 3)
                result.exit_s = time.monotonic() - sent
            except subprocess.TimeoutExpired:
                pass
            if watcher is not None:
                watcher.join(10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    result.port_free = _port_free(port)
    audit = state / "audit.jsonl"
    result.audit = audit.read_text().split("\n") if audit.exists() else []
    result.stderr = (tmp / "stderr").read_text(errors="replace")
    return result


@pytest.fixture(scope="module")
def shutdowns(tmp_path_factory: pytest.TempPathFactory) -> dict[tuple[str, bool], Shutdown]:
    """Each signal, with and without a viewer watching, once per test session."""
    return {
        (sig.name, viewer): run_and_stop(
            tmp_path_factory.mktemp(f"serve-{sig.name}-{viewer}"), sig, viewer=viewer
        )
        for sig in SIGNALS
        for viewer in (False, True)
    }


CASES = [(sig.name, viewer) for sig in SIGNALS for viewer in (False, True)]
IDS = [f"{name}-{'viewer' if viewer else 'idle'}" for name, viewer in CASES]


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_serve_stops_within_seconds_and_leaves_things_tidy(
    shutdowns: dict[tuple[str, bool], Shutdown], case: tuple[str, bool]
) -> None:
    result = shutdowns[case]
    assert result.exit_s is not None and result.exit_s < EXIT_WITHIN_S, result
    assert result.port_free
    assert result.audit and result.audit[-1] == ""  # the last line was written out whole
    records = [json.loads(line) for line in result.audit[:-1]]
    records = [r for r in records if r["event"] != "link_created"]  # serve's sign-in link
    assert records[0]["event"] == "identity_loaded"
    if result.viewer:
        assert records[-1]["event"] == "viewer_left"  # recorded during the shutdown
        assert result.viewer_pictures > 0 and result.viewer_end is not None


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_serve_exits_with_code_0(
    shutdowns: dict[tuple[str, bool], Shutdown], case: tuple[str, bool]
) -> None:
    result = shutdowns[case]
    assert result.returncode == 0, (result.returncode, result.stderr[-2000:])


def _free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigterm_while_starting_up_ends_it_with_code_0(tmp_path: Path) -> None:
    """`docker stop` while the server still starts (it is PID 1 there, where a signal without
    a handler is dropped and Docker kills it after its grace period): the start-up ends, exit 0.
    A UDP source with no sender holds the start-up at opening it for seconds."""
    env = {**os.environ, "AGECAST_STATE_DIR": str(tmp_path / "state")}
    command = [
        sys.executable, "-m", "agecast.cli", "serve", "--source",
        f"udp://127.0.0.1:{_free_udp_port()}", "--identity", "testpattern",
        "--port", str(free_port()),
    ]  # fmt: skip
    err_path = tmp_path / "stderr"
    with err_path.open("wb") as err:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err)
        try:
            deadline = time.monotonic() + 90
            while "built pipeline" not in err_path.read_text(errors="replace"):
                assert proc.poll() is None and time.monotonic() < deadline, err_path.read_text()
                time.sleep(0.1)
            proc.send_signal(signal.SIGTERM)  # the source is still being opened
            returncode = proc.wait(EXIT_WITHIN_S * 3)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        printed = proc.stdout.read().decode() if proc.stdout else ""
    assert returncode == 0, err_path.read_text()[-2000:]
    assert "agecast monitor:" not in printed  # it never served
    assert "stopped during start-up" in err_path.read_text()
