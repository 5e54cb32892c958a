"""Glass-to-glass benchmark with real Chromium viewers (not run in CI).

Starts ``agecast serve`` as a subprocess, opens monitor pages in headless Chromium on loopback,
lets them run, and reports: browser-measured glass-to-glass p50/p95 (capture wall clock →
painted, reported by the pages), server frame→packet latency, pipeline fps, drops and the
server's CPU use (from /proc) — for each viewer count asked for.

``--viewers V`` opens V Chromium pages. On a 2-core box ten software H.264 decoders starve the
server of CPU, which measures the box, not the server; ``--ws-viewers V`` instead adds V extra
viewers that take every packet over a real WebSocket without decoding it (one small process),
next to one Chromium page, which is what the fan-out costs the server.

    python bench/monitor.py --viewers 1 --ws-viewers 9 --seconds 20 --json OUT.json
"""

from __future__ import annotations

import argparse
import logging
import os
import platform
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from report import write_report

log = logging.getLogger("bench.monitor")
CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
    "--disable-backgrounding-occluded-windows",
]  # fmt: skip


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_ready(
    base: str, proc: subprocess.Popen[bytes], headers: dict[str, str], timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("agecast serve exited during start-up")
        try:
            status = httpx.get(f"{base}/api/status", headers=headers, timeout=2).json()
            if status["frames_out"] > 0:
                return
        except (httpx.HTTPError, KeyError, ValueError):
            pass
        time.sleep(0.5)
    raise RuntimeError("agecast serve did not start in time")


_READERS = """
import asyncio, sys
from websockets.asyncio.client import connect
HEADERS = {"Authorization": f"Bearer {sys.argv[3]}"}
async def read(url):
    while True:
        try:
            async with connect(url, max_size=None, additional_headers=HEADERS) as ws:
                async for _ in ws:
                    pass
        except Exception:
            await asyncio.sleep(0.2)
async def main():
    await asyncio.gather(*(read(sys.argv[1]) for _ in range(int(sys.argv[2]))))
asyncio.run(main())
"""


def run_one(
    source: str, viewers: int, seconds: float, warmup: float, ws_viewers: int = 0
) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    from agecast.api.auth import LinkStore

    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    state = Path(tempfile.mkdtemp(prefix="agecast-bench-"))
    _, token = LinkStore(state).create("operator", label="bench", expires_s=3600)
    auth = {"Authorization": f"Bearer {token}"}
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "agecast.cli",
            "--log-level",
            "warning",
            "serve",
            "--source",
            source,
            "--port",
            str(port),
        ],
        env={**os.environ, "AGECAST_STATE_DIR": str(state)},
    )
    readers = None
    try:
        _wait_ready(base, proc, auth)
        if ws_viewers:
            url = f"ws://127.0.0.1:{port}/ws/monitor"
            readers = subprocess.Popen(
                [sys.executable, "-c", _READERS, url, str(ws_viewers), token]
            )
        with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
            context = pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, args=ARGS
            )
            pages = [context.new_page() for _ in range(viewers)]
            for page in pages:
                page.goto(f"{base}/?token={token}")
            time.sleep(warmup)
            cpu0, t0 = _cpu_seconds(proc.pid), time.monotonic()
            start = httpx.get(f"{base}/api/status", headers=auth).json()
            time.sleep(seconds)
            status = httpx.get(f"{base}/api/status", headers=auth).json()
            cpu1, t1 = _cpu_seconds(proc.pid), time.monotonic()
            painted = [
                page.evaluate("window.agecast ? window.agecast.painted : 0") for page in pages
            ]
            context.close()
    finally:
        if readers is not None:
            readers.terminate()
            readers.wait(10)
        proc.terminate()
        proc.wait(10)
    frames = status["frames_out"] - start["frames_out"]
    return {
        "viewers": viewers + ws_viewers,
        "browser_viewers": viewers,
        "websocket_only_viewers": ws_viewers,
        "viewers_reported_by_server": status["viewers"],
        "seconds": round(t1 - t0, 2),
        "pipeline_fps": round(frames / (t1 - t0), 2),
        "server_cpu_cores": round((cpu1 - cpu0) / (t1 - t0), 3),
        "glass_to_glass_ms": status["glass_to_glass_ms"],
        "server_frame_to_packet_ms": status["server_latency_ms"],
        "stages_ms": status["stages_ms"],
        "dropped": status["dropped"],
        "painted_per_page": painted,
        "width": status["width"],
        "height": status["height"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", default="demo")
    parser.add_argument("--viewers", type=int, action="append", help="Chromium pages (repeat)")
    parser.add_argument("--ws-viewers", type=int, action="append", help="extra decode-free viewers")
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    browsers = args.viewers or [1]
    extra = args.ws_viewers or [0] * len(browsers)
    if len(extra) != len(browsers):
        parser.error("give --ws-viewers as often as --viewers (one run per pair)")
    runs = [
        run_one(args.source, v, args.seconds, args.warmup, w)
        for v, w in zip(browsers, extra, strict=True)
    ]
    result = {
        "command": " ".join(["python", *sys.argv]),
        "source": args.source,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count()},
        "runs": runs,
    }
    write_report(result, args.json)


if __name__ == "__main__":
    main()
