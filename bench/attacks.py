"""What one misbehaving viewer costs the others (not run in CI), issue 20's goal: a viewer
cannot raise another viewer's latency, key-frame rate or memory by more than 5 %.

Starts ``agecast serve`` (bench/soak.py's ``Server``), then for each phase — nothing, key-frame
requests 19 times a second, a socket that never reads, 16 MB POST bodies, reconnecting as fast
as it can, then nothing again — a well-behaved WebSocket viewer reads ``--frames`` pictures
while one attacker (its own viewer link) does its thing. The attacker runs in its own process
at the lowest CPU priority: it stands for a machine elsewhere on the set LAN, so what it costs
the watcher is the server's cost of refusing it, not the attacking program's own work on the
same two cores (in the watcher's process it once held the GIL the watcher reads with). For
each phase the JSON has the healthy viewer's key frames per 100 pictures, bytes per picture,
arrival gaps and capture → received latency (p50/p95 ms), the server's RSS and how many
attempts the attacker made; the two baselines, before and after, give the run's own noise. The
attacker connects from 127.0.0.2, the watcher from 127.0.0.1: two machines' addresses.

    python bench/attacks.py --frames 300 --json bench/results/attacks-cpu-2core.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import multiprocessing
import os
import platform
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Coroutine
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from report import write_report
from soak import Server
from websockets.asyncio.client import connect

from agecast.api.auth import LinkStore
from agecast.media.protocol import Flags, PictureHeader


class Target:
    """What an attacker knows: the server's port and its own (viewer) link, and a counter of
    the attempts it made; it stops when ``stop`` is set."""

    def __init__(self, port: int, token: str, stop: Any, attempts: Synchronized[int]) -> None:
        self.port, self.token, self.stop, self.attempts = port, token, stop, attempts
        self.base = f"http://127.0.0.1:{port}"

    def tried(self) -> None:
        with self.attempts.get_lock():
            self.attempts.value += 1


Attack = Callable[[Target], Coroutine[Any, Any, None]]
# The attacker's own address (Linux routes all of 127/8 to loopback): another machine on the
# LAN has one, and the server's per-address limits must not fall on the watcher.
ATTACKER_ADDRESS = "127.0.0.2"


async def _keyframes(t: Target) -> None:
    url = f"ws://127.0.0.1:{t.port}/ws/monitor"
    auth = {"Authorization": f"Bearer {t.token}"}
    async with connect(url, additional_headers=auth, local_addr=(ATTACKER_ADDRESS, 0)) as ws:
        while not t.stop.is_set():
            await ws.send(json.dumps({"type": "keyframe"}))
            t.tried()
            await asyncio.sleep(1 / 19)


async def _stall(t: Target) -> None:
    sock = socket.socket()
    sock.bind((ATTACKER_ADDRESS, 0))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", t.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/monitor HTTP/1.1\r\nHost: 127.0.0.1:{t.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {t.token}\r\n\r\n"
        ).encode()
    )
    t.tried()
    while not t.stop.is_set():  # never reads
        await asyncio.sleep(0.1)
    sock.close()


async def _bodies(t: Target) -> None:
    body = b'{"blend": "' + b"x" * (16 << 20) + b'"}'
    transport = httpx.HTTPTransport(local_address=ATTACKER_ADDRESS)
    with httpx.Client(timeout=60, transport=transport) as client:
        while not t.stop.is_set():
            t.tried()
            with contextlib.suppress(httpx.HTTPError):
                client.post(
                    f"{t.base}/api/control",
                    content=body,
                    headers={
                        "Authorization": f"Bearer {t.token}",
                        "content-type": "application/json",
                    },
                )


async def _churn(t: Target) -> None:
    url = f"ws://127.0.0.1:{t.port}/ws/monitor"
    auth = {"Authorization": f"Bearer {t.token}"}
    while not t.stop.is_set():
        t.tried()
        with contextlib.suppress(Exception):
            local = (ATTACKER_ADDRESS, 0)
            async with connect(url, additional_headers=auth, local_addr=local) as ws:
                await ws.recv()


async def _nothing(t: Target) -> None:
    t.tried()  # started
    while not t.stop.is_set():
        await asyncio.sleep(0.1)


PHASES: dict[str, Attack] = {
    "baseline": _nothing,
    "keyframe_requests_19_per_s": _keyframes,
    "viewer_that_never_reads": _stall,
    "viewer_posting_16mb_bodies": _bodies,
    "viewer_reconnecting_in_a_loop": _churn,
}


def _attacker(name: str, target: Target) -> None:
    """The attacker's process: lowest priority, as if on another machine."""
    os.nice(19)
    asyncio.run(PHASES[name](target))


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _p(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": float("nan"), "p95": float("nan")}
    array = np.asarray(values)
    return {
        "p50": round(float(np.percentile(array, 50)), 2),
        "p95": round(float(np.percentile(array, 95)), 2),
    }


async def _phase(
    server: Server, frames: int, name: str, attacker: str, watcher: str
) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")
    stop, attempts = spawn.Event(), spawn.Value("i", 0)
    process = spawn.Process(
        target=_attacker, args=(name, Target(server.port, attacker, stop, attempts))
    )
    process.start()
    deadline = time.monotonic() + 60
    while attempts.value == 0 and process.is_alive() and time.monotonic() < deadline:
        await asyncio.sleep(0.1)  # the attacker's process is up (it imports what we import)
    if attempts.value == 0:
        raise SystemExit(f"the {name} attacker did not start (exit code {process.exitcode})")
    await asyncio.sleep(2.0)  # under way
    url = f"ws://127.0.0.1:{server.port}/ws/monitor"
    keys = size = 0
    gaps: list[float] = []
    latency: list[float] = []
    async with connect(
        url,
        additional_headers={"Authorization": f"Bearer {watcher}"},
        max_size=None,
        compression=None,
    ) as ws:
        last = None
        got = 0
        while got < frames:
            message = await asyncio.wait_for(ws.recv(), 30)
            if not isinstance(message, bytes):
                continue
            now = time.time_ns()
            header = PictureHeader.unpack(message)
            got += 1
            keys += Flags.KEY in header.flags
            size += len(message)
            latency.append((now - header.capture_wall_ns) / 1e6)
            if last is not None:
                gaps.append((now - last) / 1e6)
            last = now
    stop.set()
    rss = _rss_mb(server.pid)
    await asyncio.to_thread(process.join, 70)
    if process.is_alive():
        process.kill()
    return {
        "attacker_attempts": attempts.value,
        "key_frames_per_100": round(100 * keys / frames, 2),
        "bytes_per_picture": round(size / frames),
        "arrival_gap_ms": _p(gaps),
        "capture_to_received_ms": _p(latency),
        "server_rss_mb": round(rss, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--source", default="testpattern:640x360@30")
    parser.add_argument("--identity", default="testpattern")
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(args.source, args.identity, Path(tmp))
        server.start()
        try:
            store = LinkStore(server.state)
            _, watcher = store.create("viewer", label="watcher", expires_s=86400)
            _, attacker = store.create("viewer", label="attacker", expires_s=86400)
            # a baseline before and after every attack: each is judged against its neighbours
            order = [("baseline_0", "baseline")]
            for i, name in enumerate(n for n in PHASES if n != "baseline"):
                order += [(name, name), (f"baseline_{i + 1}", "baseline")]
            results = {
                label: asyncio.run(_phase(server, args.frames, name, attacker, watcher))
                for label, name in order
            }
        finally:
            stopped = server.stop()
    labels = [label for label, _ in order]
    baselines = [results[label] for label in labels if label.startswith("baseline")]
    p50s = [b["capture_to_received_ms"]["p50"] for b in baselines]

    def against_neighbours(label: str) -> dict[str, float]:
        i = labels.index(label)
        before, after = results[labels[i - 1]], results[labels[i + 1]]
        r = results[label]

        def ratio(get: Callable[[dict[str, Any]], float]) -> float:
            return round(get(r) / max((get(before) + get(after)) / 2, 1e-9), 3)

        return {
            "key_frames": ratio(lambda x: x["key_frames_per_100"]),
            "latency_p50": ratio(lambda x: x["capture_to_received_ms"]["p50"]),
            "rss": ratio(lambda x: x["server_rss_mb"]),
        }

    report = {
        "what": "a well-behaved viewer's stream while one other viewer misbehaves",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "source": args.source,
        "frames_per_phase": args.frames,
        "phases": results,
        "relative_to_the_baselines_either_side": {
            label: against_neighbours(label) for label in labels if not label.startswith("baseline")
        },
        "baseline_latency_p50_spread": round(max(p50s) / min(p50s) - 1, 3),
        "attacker": "its own process at nice 19, from 127.0.0.2 (another machine on the LAN)",
        "server_stop": stopped,
    }
    write_report(report, args.json)


if __name__ == "__main__":
    main()
