"""Soak test of the live monitor (not run in CI): memory, drops, errors and latency over time.

Starts ``agecast serve`` as a subprocess, signs in V viewers — one Chromium page (Playwright,
Debian's /usr/bin/chromium) and V-1 WebSocket readers in one helper process that take every
packet without decoding it — and every ``--every`` seconds samples the server's RSS (VmRSS from
/proc) and /api/status. At the end it stops the server with SIGTERM and prints one JSON report:
RSS at start/end/max, growth in MB and MB per minute, fx errors, drops per slot, frames in/out,
fps, glass-to-glass p50/p95, viewers seen, warnings and errors in the server's log, how the
server exited, the command and the machine.

    python bench/soak.py --minutes 10 --viewers 3 --json bench/results/soak-10min.json

Every loop is bounded: the run by ``--minutes``, start-up and shutdown by fixed timeouts.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

# bench/monitor.py's browser setup and /proc helpers (this folder is on sys.path when run).
from monitor import ARGS, CHROMIUM, _cpu_seconds, _free_port
from report import write_report

log = logging.getLogger("bench.soak")
REPO = Path(__file__).resolve().parents[1]
START_TIMEOUT_S = 120.0
STOP_TIMEOUT_S = 15.0
LOG_LINE = re.compile(r"^(?:\[[^\]]*\]|\s+)\s(DEBUG|INFO|WARNING|ERROR|CRITICAL)\s+(.*)$")

# The WebSocket-only viewers: one process, one connection each, every packet read and counted.
# SIGTERM makes it print {"packets": [...], "bytes": [...], "reconnects": [...]} and exit.
_READERS = """
import asyncio, json, signal, sys
from websockets.asyncio.client import connect
url, count, token = sys.argv[1], int(sys.argv[2]), sys.argv[3]
packets, sizes, reconnects = [0] * count, [0] * count, [0] * count
async def read(i):
    while True:
        try:
            async with connect(url, max_size=None, compression=None,
                               additional_headers={"Authorization": f"Bearer {token}"}) as ws:
                async for message in ws:
                    if isinstance(message, bytes):
                        packets[i] += 1
                        sizes[i] += len(message)
        except Exception:
            reconnects[i] += 1
            await asyncio.sleep(0.2)
async def main():
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    tasks = [asyncio.create_task(read(i)) for i in range(count)]
    await stop.wait()
    for task in tasks:
        task.cancel()
    print(json.dumps({"packets": packets, "bytes": sizes, "reconnects": reconnects}), flush=True)
asyncio.run(main())
"""


@dataclass
class Sample:
    t_s: float
    rss_mb: float
    cpu_s: float
    status: dict[str, Any] = field(default_factory=dict)


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def slope_per_minute(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of (seconds, MB) points, in MB per minute."""
    if len(points) < 2:
        return None
    n = len(points)
    mean_t = sum(t for t, _ in points) / n
    mean_v = sum(v for _, v in points) / n
    var = sum((t - mean_t) ** 2 for t, _ in points)
    if var == 0:
        return None
    cov = sum((t - mean_t) * (v - mean_v) for t, v in points)
    return round(cov / var * 60, 3)


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text().split("\n", 1)[0].split()
    chromium = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, check=False)
    return {
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "cpu": cpu_model(),
        "mem_total_mb": round(int(meminfo[1]) / 1024),
        "chromium": chromium.stdout.strip(),
    }


def server_log(path: Path, keep: int = 10) -> dict[str, Any]:
    """Counts per level, tracebacks, and the first warning and error lines of the server log."""
    counts = dict.fromkeys(("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"), 0)
    first: dict[str, list[str]] = {"WARNING": [], "ERROR": []}
    tracebacks = 0
    for line in path.read_text(errors="replace").splitlines():
        tracebacks += line.startswith("Traceback")
        match = LOG_LINE.match(line)
        if match is None:
            continue
        level, message = match.groups()
        counts[level] += 1
        bucket = first.get("ERROR" if level == "CRITICAL" else level)
        if bucket is not None and len(bucket) < keep:
            bucket.append(message.strip())
    return {
        "errors": counts["ERROR"] + counts["CRITICAL"],
        "warnings": counts["WARNING"],
        "tracebacks": tracebacks,
        "levels": counts,
        "first_errors": first["ERROR"],
        "first_warnings": first["WARNING"],
    }


class Server:
    """``agecast serve`` in a subprocess with its own state folder and log file."""

    def __init__(self, source: str, identity: str | None, folder: Path) -> None:
        self.port = _free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.state = folder / "state"
        self.log_path = folder / "serve.log"
        self.command = [
            sys.executable, "-m", "agecast.cli", "--log-level", "info", "serve",
            "--source", source, "--port", str(self.port),
            *(["--identity", identity] if identity else []),
        ]  # fmt: skip
        self.proc: subprocess.Popen[bytes] | None = None
        self.token = ""

    def start(self) -> None:
        # wide lines: the log is parsed afterwards, and Rich wraps at 80 columns off a terminal
        env = {**os.environ, "AGECAST_STATE_DIR": str(self.state), "COLUMNS": "240"}
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                self.command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
            )
        from agecast.api.auth import LinkStore

        _, self.token = LinkStore(self.state).create("viewer", label="soak", expires_s=86400)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"agecast serve exited during start-up; see {self.log_path}")
            try:
                if self.status()["frames_out"] > 0:
                    return
            except (httpx.HTTPError, KeyError, ValueError):
                pass
            time.sleep(0.5)
        raise RuntimeError("agecast serve did not start in time")

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def status(self) -> dict[str, Any]:
        response = httpx.get(
            f"{self.base}/api/status",
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=5,
        )
        response.raise_for_status()
        result: dict[str, Any] = response.json()
        return result

    def stop(self) -> dict[str, Any]:
        """SIGTERM; how it ended and how long it took."""
        assert self.proc is not None
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            code: int | None = self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            code = None
        return {
            "signal": "SIGTERM",
            "returncode": code,
            "seconds": round(time.monotonic() - sent, 2),
        }


def start_readers(server: Server, count: int) -> subprocess.Popen[str] | None:
    if count <= 0:
        return None
    url = f"ws://127.0.0.1:{server.port}/ws/monitor"
    return subprocess.Popen(
        [sys.executable, "-c", _READERS, url, str(count), server.token],
        stdout=subprocess.PIPE,
        text=True,
    )


def stop_readers(readers: subprocess.Popen[str] | None) -> dict[str, Any] | None:
    if readers is None:
        return None
    readers.send_signal(signal.SIGTERM)
    try:
        out, _ = readers.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        readers.kill()
        return {"error": "readers did not stop"}
    try:
        result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    except (IndexError, ValueError):
        return {"error": f"no report from the readers: {out[-200:]!r}"}
    return result


def summary(samples: list[Sample]) -> dict[str, Any]:
    first, last = samples[0], samples[-1]
    a, b = first.status, last.status
    minutes = max(1e-9, (last.t_s - first.t_s) / 60)
    rss = [s.rss_mb for s in samples]
    window = max(1e-9, last.t_s - first.t_s)
    viewers = [s.status.get("viewers", 0) for s in samples]
    return {
        "measured_s": round(window, 1),
        "rss_mb": {
            "start": round(first.rss_mb, 1),
            "end": round(last.rss_mb, 1),
            "max": round(max(rss), 1),
            "growth": round(last.rss_mb - first.rss_mb, 1),
            "growth_per_min": round((last.rss_mb - first.rss_mb) / minutes, 3),
            "slope_per_min": slope_per_minute([(s.t_s, s.rss_mb) for s in samples]),
        },
        "frames": {
            "in": b["frames_in"] - a["frames_in"],
            "out": b["frames_out"] - a["frames_out"],
            "fps_in": round((b["frames_in"] - a["frames_in"]) / window, 2),
            "fps_out": round((b["frames_out"] - a["frames_out"]) / window, 2),
            "total_in": b["frames_in"],
            "total_out": b["frames_out"],
        },
        "fx_errors": {"during": b["fx_errors"] - a["fx_errors"], "total": b["fx_errors"]},
        "device_errors": b.get("device_errors"),  # once /api/status carries them
        "dropped": {
            slot: {"during": count - a["dropped"].get(slot, 0), "total": count}
            for slot, count in b["dropped"].items()
        },
        "glass_to_glass_ms": b["glass_to_glass_ms"],
        "server_frame_to_packet_ms": b["server_latency_ms"],
        "server_cpu_cores": round((last.cpu_s - first.cpu_s) / window, 3),
        "viewers_seen": {"min": min(viewers), "max": max(viewers), "last": viewers[-1]},
        "watchdog": b.get("watchdog"),  # once /api/status carries it
        "source_state": b["source"]["state"],
        "fx": b["fx"],
        "error": b["error"],
    }


def soak(args: argparse.Namespace) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    browsers = min(1, args.viewers)
    with tempfile.TemporaryDirectory(prefix="agecast-soak-") as folder:
        server = Server(args.source, args.identity, Path(folder))
        samples: list[Sample] = []
        readers = None
        painted: list[int] = []
        try:
            server.start()
            readers = start_readers(server, args.viewers - browsers)
            with sync_playwright() as pw, tempfile.TemporaryDirectory() as profile:
                context = pw.chromium.launch_persistent_context(
                    profile, executable_path=str(CHROMIUM), args=ARGS
                )
                pages = [context.new_page() for _ in range(browsers)]
                for page in pages:
                    page.goto(f"{server.base}/?token={server.token}")
                time.sleep(args.warmup)
                started = time.monotonic()
                deadline = started + args.minutes * 60
                while True:
                    now = time.monotonic()
                    samples.append(
                        Sample(now - started, rss_mb(server.pid), _cpu_seconds(server.pid),
                               server.status())
                    )  # fmt: skip
                    last = samples[-1]
                    log.info(
                        "%5.0f s  rss %.1f MB  fps %s  viewers %s  fx_errors %s  dropped %s",
                        last.t_s, last.rss_mb, last.status["fps_out"], last.status["viewers"],
                        last.status["fx_errors"], last.status["dropped"],
                    )  # fmt: skip
                    if now >= deadline:
                        break
                    time.sleep(min(args.every, max(0.0, deadline - now)))
                painted = [
                    int(page.evaluate("window.agecast ? window.agecast.painted : 0"))
                    for page in pages
                ]
                context.close()
        finally:
            reader_report = stop_readers(readers)
            exit_report = server.stop() if server.proc is not None else None
        report = {
            "command": " ".join(["python", *sys.argv]),
            "server_command": " ".join(server.command),
            "machine": machine(),
            "source": args.source,
            "minutes": args.minutes,
            "sample_every_s": args.every,
            "viewers": {
                "asked": args.viewers,
                "browser_pages": browsers,
                "websocket_readers": args.viewers - browsers,
            },
            **summary(samples),
            "painted_per_page": painted,
            "websocket_readers": reader_report,
            "server_log": server_log(server.log_path),
            "server_exit": exit_report,
            "samples": [
                {
                    "t_s": round(s.t_s, 1),
                    "rss_mb": round(s.rss_mb, 1),
                    "fps_out": s.status["fps_out"],
                    "frames_out": s.status["frames_out"],
                    "viewers": s.status["viewers"],
                    "fx_errors": s.status["fx_errors"],
                    "dropped": s.status["dropped"],
                    "glass_p95_ms": s.status["glass_to_glass_ms"]["p95"],
                }
                for s in samples
            ],
        }
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0, help="measured minutes")
    parser.add_argument("--viewers", type=int, default=1, help="1 Chromium page + V-1 readers")
    parser.add_argument("--source", default="testpattern:1280x720@30")
    parser.add_argument("--identity", default=None, help="identity id (default: the server's)")
    parser.add_argument("--every", type=float, default=5.0, help="seconds between samples")
    parser.add_argument("--warmup", type=float, default=10.0, help="seconds before measuring")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()
    if args.viewers < 1 or args.minutes <= 0 or args.every <= 0:
        parser.error("--viewers ≥ 1, --minutes > 0 and --every > 0")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per status poll otherwise
    report = soak(args)
    write_report(report, args.json, ensure_ascii=False)


if __name__ == "__main__":
    main()
