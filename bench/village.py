"""Video village I/O benchmark (not run in CI): issue 14's goals, on this machine.

1. NDI out at 720p30: the live service (testpattern 1280×720@30, the testpattern identity)
   runs without NDI; then publishing ``aged`` and ``raw`` with nobody receiving; then with a
   receiver on each in another process (a cart elsewhere), each receiving until told to stop.
   Per phase: the service process's CPU (cores), its frame rate; with receivers, per output:
   frames received against frames the service put out while they were connected (every frame
   arrives?), NDI's own receive statistics (frames, dropped), whether raw and aged of a frame
   share a timecode, and capture → received latency p50/p95 (NDI's timecode is the frame's
   capture time, on the same clock).
2. NDI in: a sender in another process at 720p30; ``ndi://`` read as a live source; the sender
   stops and starts ``--cycles`` times: seconds until the source says NO_SIGNAL and until it is
   LIVE again, and send → read latency.
3. Program out: the aged picture as MPEG-TS over UDP read back by the udp:// source: capture →
   decoded latency p50/p95.
4. RTSP out: the aged picture pulled over RTSP (RTP over TCP) by the rtsp:// source with a
   viewer link's token: capture → decoded latency p50/p95.

    python bench/village.py --seconds 10 --json bench/results/village-cpu-2core.json
"""

from __future__ import annotations

import argparse
import bisect
import multiprocessing
import os
import platform
import resource
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from report import write_report

from agecast.api.auth import Auth, LinkGate
from agecast.live.service import LiveService
from agecast.media import ndi
from agecast.pipeline.metrics import percentiles
from agecast.settings import Settings
from agecast.sources import open_source
from agecast.sources.base import SourceState
from agecast.sources.ndi import seconds_of_day
from agecast.sources.testpattern import read_counter

SOURCE = "testpattern:1280x720@30"


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _receiver(config: str, name: str, ready: Any, stop: Any, out: Any) -> None:
    """In its own process, as a cart's receiver: every picture of ``name`` it gets until
    ``stop`` is set (timecode, capture → received ms), through agecast's own receiver (NDI's
    frame sync, polled), and NDI's own count of what it received and dropped. ``ready`` is set
    at its first picture."""
    os.environ[ndi.CONFIG_ENV] = config
    rx = ndi.NdiReceiver(name, open_timeout_s=15, read_timeout_s=5)
    got: list[tuple[float, float]] = []
    while not stop.is_set():
        picture = rx.next()
        got.append((picture.timecode_s, (time.time() - picture.timecode_s) * 1000))
        ready.set()
    out.put({"pictures": got, "ndi": rx.performance()})
    rx.close()


def _sender(config: str, name: str, stop: Any, sending: Any) -> None:
    """In its own process: a 720p30 cart sender until ``stop`` is set (timecode: send time);
    ``sending`` is set as its first picture goes out."""
    os.environ[ndi.CONFIG_ENV] = config
    sender = ndi.NdiSender(name, 30.0)
    picture = np.zeros((720, 1280, 3), np.uint8)
    start, n = time.monotonic(), 0
    sending.set()
    while not stop.is_set():
        picture[:, :, 0] = n % 256
        sender.send(picture, timecode_100ns=time.time_ns() // 100)
        n += 1
        time.sleep(max(0.0, start + n / 30.0 - time.monotonic()))
    sender.close()


def _service(state: Path, gate: LinkGate | None = None, **flags: Any) -> LiveService:
    settings = Settings.load(source=SOURCE, identity="testpattern", state_dir=state, **flags)
    live = LiveService(settings)
    live.gate = gate
    live.start()
    time.sleep(3.0)  # warmed up
    return live


def _noted(live: LiveService) -> tuple[dict[int, int], threading.Event]:
    """Frame number → capture wall time (ns) of every output the service puts out, noted by a
    thread until the event is set."""
    captured: dict[int, int] = {}
    done = threading.Event()

    def note() -> None:
        while not done.is_set():
            last = live.last_output
            if last is not None:
                captured[last.index] = last.wall_ns
            time.sleep(0.002)

    threading.Thread(target=note, daemon=True).start()
    return captured, done


def _cores_and_fps(live: LiveService, seconds: float) -> dict[str, float]:
    cpu0, f0, t0 = _cpu_s(), live.status()["frames_out"], time.monotonic()
    time.sleep(seconds)
    span = time.monotonic() - t0
    return {
        "cores": round((_cpu_s() - cpu0) / span, 3),
        "fps": round((live.status()["frames_out"] - f0) / span, 2),
        "seconds": round(span, 2),
    }


def _arrived(put_out: list[float], pictures: list[tuple[float, float]]) -> list[float]:
    """Capture → received ms of each frame put out that a receiver got: its timecode matched
    within 0.1 ms (NDI's 100 ns timecode comes back as float POSIX seconds, whose last digits
    do not round the same way as the capture time's)."""
    received = sorted(pictures)
    stamps = [tc for tc, _ in received]
    arrived = []
    for wall in put_out:
        i = bisect.bisect_left(stamps, wall)
        near = [j for j in (i - 1, i) if 0 <= j < len(stamps)]
        best = min(near, key=lambda j: abs(stamps[j] - wall), default=None)
        if best is not None and abs(stamps[best] - wall) < 1e-4:
            arrived.append(received[best][1])
    return arrived


def ndi_out(config: str, state: Path, seconds: float) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")
    live = _service(state / "a")
    without = _cores_and_fps(live, seconds)
    live.stop()
    prefix = f"village-{os.getpid()}"
    live = _service(state / "b", ndi_out="aged,raw", ndi_name=prefix)
    unwatched = _cores_and_fps(live, seconds)  # published, nobody receiving
    queues = {k: spawn.Queue() for k in ("aged", "raw")}
    ready = {k: spawn.Event() for k in queues}
    stop = spawn.Event()
    procs = [
        spawn.Process(target=_receiver, args=(config, f"{prefix} cam1 {k}", ready[k], stop, q))
        for k, q in queues.items()
    ]
    for p in procs:
        p.start()
    for event in ready.values():
        event.wait(30)  # each receiver has its first picture
    time.sleep(1.0)
    captured, done = _noted(live)
    time.sleep(0.5)
    first = max(captured) if captured else 0
    sent0 = {o["kind"]: o["sent"] for o in live.status()["ndi"]["outputs"]}
    with_ndi = _cores_and_fps(live, seconds)
    last = max(captured)
    status = live.status()
    sent = {o["kind"]: o["sent"] - sent0[o["kind"]] for o in status["ndi"]["outputs"]}
    time.sleep(1.0)  # the last pictures in flight arrive
    stop.set()
    results = {k: q.get(timeout=60) for k, q in queues.items()}
    got = {k: r["pictures"] for k, r in results.items()}
    done.set()
    for p in procs:
        p.join(10)
    live.stop()
    put_out = [wall / 1e9 for n, wall in captured.items() if first < n <= last]
    outputs = {}
    for kind, pictures in got.items():
        arrived = _arrived(put_out, pictures)
        outputs[kind] = {
            "frames_put_out": len(put_out),
            "frames_sent_over_ndi": sent[kind],
            "frames_received": len(arrived),
            "ndi_receiver": results[kind]["ndi"],
            "capture_to_received_ms": percentiles(arrived),
        }
    return {
        "without_ndi": without,
        "aged_and_raw_published_nobody_receiving": unwatched,
        "ndi_cost_nobody_receiving_cores": round(unwatched["cores"] - without["cores"], 3),
        "with_ndi_aged_and_raw": {
            **with_ndi,
            "frames_out": round(with_ndi["fps"] * with_ndi["seconds"]),
            "ndi_dropped": status["ndi"]["dropped"],
        },
        "ndi_cost_cores": round(with_ndi["cores"] - without["cores"], 3),
        "outputs": outputs,
        "frames_with_one_timecode_on_both": len(
            {round(tc, 6) for tc, _ in got["aged"]} & {round(tc, 6) for tc, _ in got["raw"]}
        ),
    }


def ndi_in(config: str, cycles: int) -> dict[str, Any]:
    spawn = multiprocessing.get_context("spawn")
    name = f"village-cart-{os.getpid()}"

    def start_sender() -> tuple[Any, Any, Any]:
        stop, sending = spawn.Event(), spawn.Event()
        process = spawn.Process(target=_sender, args=(config, name, stop, sending))
        process.start()
        return process, stop, sending

    sender, stop, sending = start_sender()
    source = open_source(f"ndi://{name}", open_timeout_s=15, read_timeout_s=2.0)
    source.open()
    latency: list[float] = []
    no_signal: list[float] = []
    back: list[float] = []
    try:
        for _ in range(cycles):
            t_end = time.monotonic() + 3
            while time.monotonic() < t_end:
                frame = source.read()
                if frame is not None and frame.pts_s is not None:
                    age = (seconds_of_day(time.time()) - frame.pts_s) % 86400
                    latency.append(age * 1000)
            t0 = time.monotonic()
            stop.set()  # the sender stops sending now
            while source.state is SourceState.LIVE and time.monotonic() - t0 < 10:
                time.sleep(0.005)
            no_signal.append(round(time.monotonic() - t0, 3))
            sender.join(10)
            sender, stop, sending = start_sender()
            sending.wait(30)
            t0 = time.monotonic()  # its first picture is going out
            while source.state is not SourceState.LIVE and time.monotonic() - t0 < 20:
                source.read()
            back.append(round(time.monotonic() - t0, 3))
    finally:
        stop.set()
        sender.join(10)
        source.close()
    return {
        "no_signal_after_the_sender_stops_s": no_signal,
        "live_after_its_first_picture_s": back,
        "send_to_read_latency_ms": percentiles(latency),
    }


def _free_port(kind: socket.SocketKind) -> int:
    with socket.socket(socket.AF_INET, kind) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def program_out(state: Path, seconds: float) -> dict[str, Any]:
    port = _free_port(socket.SOCK_DGRAM)
    live = _service(state / "c", program_out=f"udp://127.0.0.1:{port}")
    return _pulled(live, f"udp://127.0.0.1:{port}", "program", seconds)


def rtsp_out(state: Path, seconds: float) -> dict[str, Any]:
    auth = Auth.at(state / "d")
    _, token = auth.links.create("viewer", label="bench")
    port = _free_port(socket.SOCK_STREAM)
    live = _service(state / "d", rtsp_out=f"127.0.0.1:{port}", gate=LinkGate(auth, "cam1"))
    return _pulled(live, f"rtsp://127.0.0.1:{port}/cam1?token={token}", "rtsp", seconds)


def _pulled(live: LiveService, url: str, key: str, seconds: float) -> dict[str, Any]:
    """Capture → decoded latency of ``live``'s stream read back from ``url``."""
    captured, done = _noted(live)
    latency: list[float] = []
    try:
        with open_source(url, open_timeout_s=10) as rx:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                frame = rx.read()
                now = time.time_ns()
                if frame is None:
                    continue
                wall = captured.get(read_counter(frame.image.numpy()))
                if wall is not None:
                    latency.append((now - wall) / 1e6)
        status = live.status()[key]
    finally:
        done.set()
        live.stop()
    return {
        "capture_to_decoded_ms": percentiles(latency),
        "decoded_frames_matched": len(latency),
        "status": status,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--cycles", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        config = str(ndi.configure(["127.0.0.1"], folder / "ndi"))
        report = {
            "what": "video village I/O: NDI out and in, program and RTSP out (issue 14's goals)",
            "command": " ".join([Path(sys.executable).name, *sys.argv]),
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
            "load_before": os.getloadavg(),
            "ndi_out": ndi_out(config, folder, args.seconds),
            "ndi_in": ndi_in(config, args.cycles),
            "program_out": program_out(folder, args.seconds),
            "rtsp_out": rtsp_out(folder, args.seconds),
            "load_after": os.getloadavg(),
        }
    write_report(report, args.json)


if __name__ == "__main__":
    main()
