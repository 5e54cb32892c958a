"""What one misbehaving viewer costs the others (not run in CI), issue 20's goal: a viewer
cannot raise another viewer's latency, key-frame rate or memory by more than 5 %.

Starts ``agecast serve`` (bench/soak.py's ``Server``), then for each phase — nothing, key-frame
requests 19 times a second, a socket that never reads, 16 MB POST bodies, reconnecting as fast
as it can — a well-behaved WebSocket viewer reads ``--frames`` pictures while one attacker
(its own viewer link) does its thing. For each phase the JSON has the healthy viewer's key
frames per 100 pictures, bytes per picture, arrival gaps and capture → received latency
(p50/p95 ms), and the server's RSS; plus the command, machine and date.

    python bench/attacks.py --frames 300 --json bench/results/attacks-cpu-2core.json
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import platform
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from soak import Server
from websockets.asyncio.client import connect

from agecast.api.auth import LinkStore
from agecast.media.protocol import Flags, PictureHeader

Attack = Callable[[Server, str, threading.Event], Awaitable[None]]


async def _keyframes(server: Server, token: str, stop: threading.Event) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws/monitor"
    async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        while not stop.is_set():
            await ws.send(json.dumps({"type": "keyframe"}))
            await asyncio.sleep(1 / 19)


async def _stall(server: Server, token: str, stop: threading.Event) -> None:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", server.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/monitor HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {token}\r\n\r\n"
        ).encode()
    )
    while not stop.is_set():  # never reads
        await asyncio.sleep(0.1)
    sock.close()


async def _bodies(server: Server, token: str, stop: threading.Event) -> None:
    body = b'{"blend": "' + b"x" * (16 << 20) + b'"}'

    def post() -> None:
        with httpx.Client(timeout=60) as client:
            while not stop.is_set():
                with contextlib.suppress(httpx.HTTPError):
                    client.post(
                        f"{server.base}/api/control",
                        content=body,
                        headers={
                            "Authorization": f"Bearer {token}",
                            "content-type": "application/json",
                        },
                    )

    await asyncio.to_thread(post)


async def _churn(server: Server, token: str, stop: threading.Event) -> None:
    url = f"ws://127.0.0.1:{server.port}/ws/monitor"
    while not stop.is_set():
        with contextlib.suppress(Exception):
            async with connect(url, additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                await ws.recv()


async def _nothing(server: Server, token: str, stop: threading.Event) -> None:
    while not stop.is_set():
        await asyncio.sleep(0.1)


PHASES: dict[str, Attack] = {
    "baseline": _nothing,
    "keyframe_requests_19_per_s": _keyframes,
    "viewer_that_never_reads": _stall,
    "viewer_posting_16mb_bodies": _bodies,
    "viewer_reconnecting_in_a_loop": _churn,
}


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
    server: Server, frames: int, attack: Attack, attacker: str, watcher: str
) -> dict[str, Any]:
    stop = threading.Event()
    task = asyncio.create_task(attack(server, attacker, stop))
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
    with contextlib.suppress(Exception):
        await asyncio.wait_for(task, 70)
    return {
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
            results = {
                name: asyncio.run(_phase(server, args.frames, attack, attacker, watcher))
                for name, attack in PHASES.items()
            }
        finally:
            stopped = server.stop()
    base = results["baseline"]
    report = {
        "what": "a well-behaved viewer's stream while one other viewer misbehaves",
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "source": args.source,
        "frames_per_phase": args.frames,
        "phases": results,
        "relative_to_baseline": {
            name: {
                "key_frames": round(
                    r["key_frames_per_100"] / max(base["key_frames_per_100"], 1e-9), 3
                ),
                "latency_p50": round(
                    r["capture_to_received_ms"]["p50"] / base["capture_to_received_ms"]["p50"], 3
                ),
                "rss": round(r["server_rss_mb"] / base["server_rss_mb"], 3),
            }
            for name, r in results.items()
        },
        "server_stop": stopped,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")


if __name__ == "__main__":
    main()
