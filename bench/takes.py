"""Takes benchmark (not run in CI): what recording costs the live monitor, and re-render speed.

1. Monitoring cost: the live service (in this process, demo source 1280×720@30, one in-process
   H.264 viewer on an asyncio loop, as /ws/monitor has) runs alternating phases, idle and
   recording a take, ``--rounds`` times. Per phase: the server's frame→packet p50/p95 (capture →
   encoded for the viewer), pipeline drops, and while recording the recorder's drops and its
   deepest queue. Alternating phases spreads the noise of a shared box over both sides.
2. Re-render: the first recorded take (``--seconds`` long) is re-rendered twice (unchanged,
   and with blend 0.5) and timed: frames per second against the take's 30 fps.

    python bench/takes.py --seconds 10 --rounds 3 --json bench/results/takes-cpu-2core.json
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from agecast.identities.package import resolve
from agecast.live.service import LiveService
from agecast.media.fanout import Viewer
from agecast.pipeline.metrics import percentiles
from agecast.settings import Settings
from agecast.takes.recorder import AGED_FORMAT, AGED_OPTIONS, RAW_FORMAT, RAW_OPTIONS
from agecast.takes.rerender import rerender
from agecast.takes.store import Take, TakeStore

log = logging.getLogger("bench.takes")


class LoopViewer:
    """One H.264 viewer on its own asyncio loop, reading every message the fan-out sends."""

    def __init__(self, service: LiveService) -> None:
        self.loop = asyncio.new_event_loop()
        self.received = 0
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.viewer: Viewer | None = None
        asyncio.run_coroutine_threadsafe(self._join(service), self.loop).result(10)

    async def _join(self, service: LiveService) -> None:
        self.viewer = Viewer(codec="h264", label="bench", mark=None)
        service.fanout.add(self.viewer)
        self._task = asyncio.get_running_loop().create_task(self._read())

    async def _read(self) -> None:
        assert self.viewer is not None
        while await self.viewer.next() is not None:
            self.received += 1

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self._task.cancel)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(5)


def _drops(service: LiveService) -> int:
    return sum(service.built.pipeline.stats()["dropped"].values())


def _series(service: LiveService, name: str) -> list[float]:
    return list(service.timings._series.get(name, []))  # raw samples of this phase


def phase(service: LiveService, seconds: float, take: str | None) -> dict[str, Any]:
    service.timings.clear()
    drops0, out0 = _drops(service), service.built.pipeline.frames_out
    deepest = 0
    if take is not None:
        service.start_recording("bench", take)
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        recorder = service.recorder
        if take is not None and recorder is not None:
            deepest = max(deepest, recorder.status()["queue"])
        time.sleep(0.05)
    packets = _series(service, "frame_to_packet")
    encode = _series(service, "encode")
    result: dict[str, Any] = {
        "recording": take is not None,
        "seconds": seconds,
        "frames_out": service.built.pipeline.frames_out - out0,
        "pipeline_drops": _drops(service) - drops0,
        "frame_to_packet_ms": percentiles(packets),
        "encode_ms": percentiles(encode),
    }
    if take is not None:
        info = service.stop_recording()
        recorder = service.recorder
        assert recorder is not None
        result.update(
            take=info.id,
            take_frames=info.frames,
            take_status=info.status,
            take_seconds=round(info.seconds, 3),
            take_held_frames=info.held_frames,
            take_aged_frames=info.aged_frames,
            recorder_drops=recorder.dropped,
            live_waited_s=round(recorder.live_waited_s, 2),
            recorder_cpu_ms_per_frame=recorder.status()["cpu_ms_per_frame"],
            recorder_frames_from_source_yuv=recorder.yuv_frames,
            recorder_queue_max=deepest,
            recorder_queue_limit=recorder.queue_max,
        )
    return result


def bench_rerender(take: Take, settings: Settings) -> list[dict[str, Any]]:
    runs = []
    for overrides in ({}, {"blend": 0.5}):
        started = time.monotonic()
        version = rerender(take, overrides, settings)
        elapsed = time.monotonic() - started
        render = json.loads(take.render_path(version).read_text())
        frames = int(render["frames"])
        runs.append(
            {
                "take": take.id,
                "version": version,
                "overrides": overrides,
                "frames": frames,
                "take_frames": take.info.frames,
                "seconds_wall": round(elapsed, 2),  # incl. loading the identity and detector
                "seconds_render": render["seconds"],
                "fps": render["fps"],
                "realtime_factor": round(render["fps"] / (take.info.fps or 30.0), 2),
                "faces_replayed": render["faces_replayed"],
            }
        )
        log.info("re-render %s: %s", version, runs[-1])
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per phase")
    parser.add_argument("--rounds", type=int, default=3, help="idle + recording pairs")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--source", default="demo")
    parser.add_argument("--identity", default="auto")
    parser.add_argument("--note", default="", help="free text kept in the JSON")
    parser.add_argument("--json", type=Path, help="write the results here")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="agecast-bench-takes-") as tmp:
        root = Path(tmp)
        settings = Settings.load(
            source=args.source, identity=args.identity, takes_dir=root / "takes",
            state_dir=root / "state", min_free_gb=0.5,
        )  # fmt: skip
        identity = resolve(args.identity, settings.identities_dir).manifest
        service = LiveService(settings)
        service.start()
        viewer = LoopViewer(service)
        try:
            time.sleep(args.warmup)
            phases = []
            for n in range(args.rounds):
                phases.append(phase(service, args.seconds, None))
                phases.append(phase(service, args.seconds, str(n + 1)))
                log.info("round %d: %s", n + 1, phases[-2:])
            first = TakeStore(settings.resolved_takes_dir).get("bench_1")
        finally:
            viewer.close()
            service.stop()
        renders = bench_rerender(first, settings)

    idle = [p for p in phases if not p["recording"]]
    rec = [p for p in phases if p["recording"]]
    p95_idle = statistics.median(p["frame_to_packet_ms"]["p95"] for p in idle)
    p95_rec = statistics.median(p["frame_to_packet_ms"]["p95"] for p in rec)
    result = {
        "command": " ".join(["python", *sys.argv]),
        "machine": {
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "python": platform.python_version(),
            # other work on the box (1-minute load average) before and after the run
            "load_average_before": round(load_before[0], 2),
            "load_average_after": round(os.getloadavg()[0], 2),
        },
        "note": args.note,
        "source": args.source,
        "identity": {"asked": args.identity, "resolved": identity.id, "purpose": identity.purpose},
        "encoders": {
            "raw": {"pix_fmt": RAW_FORMAT, **RAW_OPTIONS},
            "aged": {"pix_fmt": AGED_FORMAT, **AGED_OPTIONS},
        },
        "summary": {
            "frame_to_packet_p95_ms_idle_median": p95_idle,
            "frame_to_packet_p95_ms_recording_median": p95_rec,
            "added_p95_ms": round(p95_rec - p95_idle, 2),
            "recorder_drops": sum(p["recorder_drops"] for p in rec),
            "recorder_cpu_ms_per_frame": [p["recorder_cpu_ms_per_frame"] for p in rec],
            "pipeline_drops_idle": sum(p["pipeline_drops"] for p in idle),
            "pipeline_drops_recording": sum(p["pipeline_drops"] for p in rec),
            "rerender_fps": [r["fps"] for r in renders],
            "rerender_realtime_factor": [r["realtime_factor"] for r in renders],
        },
        "phases": phases,
        "rerender": renders,
    }
    text = json.dumps(result, indent=2)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text + "\n")
    sys.stdout.write(json.dumps(result["summary"], indent=2) + "\n")


if __name__ == "__main__":
    main()
