"""Triton against in-process inference in one run (not run in CI), issue 15's goals.

Starts the tritonserver of the nvidia-pytriton wheel (CPU, Python backend running onnxruntime)
on a repository written by ``agecast triton repo --platform python`` and measures:

- ``added``: the face stages of one 720p camera (the astronaut, one face) at 30 fps, each frame
  through the in-process onnxruntime backend and through Triton (system shared memory),
  interleaved frame by frame; per frame the time of the identity call ("infer") and of the
  whole FX; the added latency is Triton's minus in-process (p50/p95 of each, and p95 of the
  paired difference). Where it goes: Triton's statistics per phase (queue, inputs, the model,
  outputs), the model's call split into its gRPC request and the rest (shared-memory
  copies), and a gRPC call that runs no model, paced as the frames and back to back.
- ``batching``: 4 cameras (threads, each paced at 30 fps, one face crop per frame) through one
  Triton model instance with dynamic batching: Triton's inference count (frames × faces)
  against its execution count (model runs), and each camera's call p95 against one camera
  alone on the same server.

``--wire compact`` (the default) or ``float32``: how the repository's model takes and gives its
tensors (``agecast triton repo --wire``); the JSON records which.

The box must be quiet for goal figures: the JSON records the load average before and after;
``quiet`` is false when the 1-minute load was ≥ 1.5 as the run began (then the numbers are not
goal results; the load after includes the run's own Triton and nodes).

    python bench/triton.py --frames 300 --json bench/results/triton-cpu-2core-latency.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from report import write_report
from skimage import data

from agecast.faces.detector import make_detector
from agecast.faces.tracker import FaceTracker
from agecast.frames import Frame
from agecast.identities import IdentityModel, resolve
from agecast.inference.registry import get_backend
from agecast.inference.triton_naming import TritonConfig, model_name
from agecast.inference.triton_wire import WIRE_KINDS
from agecast.pipeline.fx import FaceFX, FxState
from agecast.pipeline.metrics import percentiles
from agecast.settings import REPO_MODELS_DIR
from agecast.triton.local import LocalTriton
from agecast.triton.repository import RepoOptions, write_repository

log = logging.getLogger("bench.triton")
FPS = 30.0


def astronaut_frames(count: int) -> list[torch.Tensor]:
    """720p frames: the astronaut photo (one face) on grey, drifting 2 px a frame."""
    face = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float()
    face = F.interpolate(face, size=(614, 614), mode="bilinear", antialias=True)[0].round()
    out = []
    for i in range(count):
        dx = (2 * i) % 300
        frame = torch.full((3, 720, 1280), 90.0)
        frame[:, 53:667, 180 + dx : 794 + dx] = face
        out.append(frame.clamp(0, 255).byte().permute(1, 2, 0).contiguous())
    return out


def _fx(backend: Any, identity: str, threads: int) -> FaceFX:
    model = IdentityModel.load(resolve(identity, [REPO_MODELS_DIR]), backend)
    detector = make_detector(get_backend("onnxruntime", threads=threads))
    return FaceFX(FaceTracker(detector, detect_every=3, background=False), model)


def _pace(start: float, index: int) -> None:
    delay = start + index / FPS - time.perf_counter()
    if delay > 0:
        time.sleep(delay)


def added_latency(url: str, identity: str, frames: list[torch.Tensor], threads: int) -> Any:
    local = _fx(get_backend("onnxruntime", threads=threads), identity, threads)
    remote = _fx(
        get_backend("triton", triton=TritonConfig(url=url, timeout_ms=5000, local="onnxruntime")),
        identity,
        threads,
    )
    times: dict[str, dict[str, list[float]]] = {
        k: {"infer": [], "fx": []} for k in ("in_process", "triton")
    }
    errors = 0
    name = model_name(identity)
    phases: dict[str, tuple[int, int]] = {}
    model = remote.identity.model
    rpc: list[float] = []  # each frame's gRPC request, sent to answered
    start = time.perf_counter()
    for i, image in enumerate(frames):
        if i == 10:
            phases = _phase_ns(url, name)
            _time_rpc(model, rpc)
        _pace(start, i)
        ns = time.monotonic_ns()
        for key, fx in (("in_process", local), ("triton", remote)):
            t = time.perf_counter()
            result = fx.process(Frame(i, image, ns, ns))
            total = (time.perf_counter() - t) * 1e3
            if result.fx != FxState.ON:
                errors += 1
                continue
            if i >= 10:  # warm-up frames left out
                times[key]["infer"].append(result.timings.get("infer", 0.0))
                times[key]["fx"].append(total)
    paired = [
        b - a for a, b in zip(times["in_process"]["infer"], times["triton"]["infer"], strict=False)
    ]
    breakdown = server_breakdown(phases, _phase_ns(url, name))
    stats = model.stats  # type: ignore[attr-defined]
    n = min(len(rpc), len(stats.seconds))  # the model keeps its last 1,000 calls' times
    client = [c * 1e3 - r for c, r in zip(stats.seconds[-n:], rpc[-n:], strict=True)] if n else []
    local.identity.close()
    remote.identity.close()
    return {
        "identity": identity,
        "frames": len(frames),
        "not_on": errors,
        "in_process_ms": {k: percentiles(v) for k, v in times["in_process"].items()},
        "triton_ms": {k: percentiles(v) for k, v in times["triton"].items()},
        "added_infer_ms_paired": percentiles(paired),
        "added_infer_p95_ms": round(
            percentiles(times["triton"]["infer"])["p95"]
            - percentiles(times["in_process"]["infer"])["p95"],
            3,
        ),
        "triton_server_mean_ms_per_request": breakdown,
        # the model's call split: the gRPC request (sent on the stream, Triton, the reply back)
        # and the rest of the call (inputs into shared memory, outputs out of it)
        "triton_call_ms": {
            "grpc_request": percentiles(rpc),
            "client_outside_grpc": percentiles(client),
        },
        "grpc_round_trip_no_model_ms": rpc_floor(url, name, len(frames)),
        "triton_failures": stats.failures,
    }


def _time_rpc(model: Any, out: list[float]) -> None:
    """Record how long each of ``model``'s gRPC requests takes, from sending it on the stream
    to its reply."""
    call = model._call  # the bench looks inside the model's call

    def timed(*args: Any, **kwargs: Any) -> Any:
        t = time.perf_counter()
        try:
            return call(*args, **kwargs)
        finally:
            out.append((time.perf_counter() - t) * 1e3)

    model._call = timed


def rpc_floor(url: str, name: str, frames: int) -> Any:
    """A gRPC call to the same server that runs no model (``is_model_ready``), paced one a
    frame as the infer calls are and back to back: what the loopback round trip alone costs,
    and how much of it is waking idle threads (the box idles between frames)."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url.removeprefix("grpc://"))
    try:
        out = {}
        for label, fps in (("paced_30fps", FPS), ("back_to_back", 0.0)):
            times = []
            start = time.perf_counter()
            for i in range(frames):
                if fps:
                    _pace(start, i)
                t = time.perf_counter()
                client.is_model_ready(name)
                times.append((time.perf_counter() - t) * 1e3)
            out[label] = percentiles(times[10:])
        return out
    finally:
        client.close()


def _camera(
    model: IdentityModel, frames: int, out: list[float], barrier: threading.Barrier
) -> None:
    crop = torch.rand(1, 3, model.crop_size, model.crop_size)
    barrier.wait()
    start = time.perf_counter()
    for i in range(frames):
        _pace(start, i)
        t = time.perf_counter()
        model.infer(crop)
        if i >= 10:
            out.append((time.perf_counter() - t) * 1e3)


def _model_stats(url: str, name: str) -> list[Any]:
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(url.removeprefix("grpc://"))
    try:
        return list(client.get_inference_statistics(name, as_json=True)["model_stats"])
    finally:
        client.close()


def _counts(url: str, name: str) -> tuple[int, int]:
    stats = _model_stats(url, name)
    return (
        sum(int(s.get("inference_count", 0)) for s in stats),
        sum(int(s.get("execution_count", 0)) for s in stats),
    )


_PHASES = ("queue", "compute_input", "compute_infer", "compute_output")


def _phase_ns(url: str, name: str) -> dict[str, tuple[int, int]]:
    """Triton's cumulative (count, ns) per phase of the model's requests."""
    out: dict[str, tuple[int, int]] = {}
    for s in _model_stats(url, name):
        for phase in _PHASES:
            entry = s.get("inference_stats", {}).get(phase, {})
            count, ns = out.get(phase, (0, 0))
            out[phase] = (count + int(entry.get("count", 0)), ns + int(entry.get("ns", 0)))
    return out


def server_breakdown(before: dict[str, tuple[int, int]], after: dict[str, tuple[int, int]]) -> Any:
    """Mean ms per request in each phase Triton reports (compute_infer: the Python backend's
    stub and onnxruntime; the rest of a call is gRPC and the client)."""
    out = {}
    for phase in _PHASES:
        count = after[phase][0] - before[phase][0]
        ns = after[phase][1] - before[phase][1]
        out[phase] = round(ns / count / 1e6, 3) if count else None
    return out


def batching(url: str, identity: str, cameras: int, frames: int) -> Any:
    backend = get_backend("triton", triton=TritonConfig(url=url, timeout_ms=5000))
    name = model_name(resolve(identity, [REPO_MODELS_DIR]).manifest.id)

    def run(n: int) -> tuple[list[list[float]], int, int]:
        models = [
            IdentityModel.load(resolve(identity, [REPO_MODELS_DIR]), backend) for _ in range(n)
        ]
        for m in models:  # connect and warm up outside the count
            m.infer(torch.rand(1, 3, m.crop_size, m.crop_size))
        before = _counts(url, name)
        outs: list[list[float]] = [[] for _ in models]
        barrier = threading.Barrier(n)
        threads = [
            threading.Thread(target=_camera, args=(m, frames, o, barrier))
            for m, o in zip(models, outs, strict=True)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        after = _counts(url, name)
        for m in models:
            m.close()
        return outs, after[0] - before[0], after[1] - before[1]

    alone, alone_inf, alone_exec = run(1)
    many, inferences, executions = run(cameras)
    alone_p95 = percentiles(alone[0])["p95"]
    per_camera = [percentiles(o) for o in many]
    return {
        "identity": identity,
        "cameras": cameras,
        "frames_per_camera": frames,
        "one_camera": {
            "ms": percentiles(alone[0]),
            "inferences": alone_inf,
            "executions": alone_exec,
        },
        "per_camera_ms": per_camera,
        "inferences": inferences,
        "executions": executions,
        "fewer_calls_than_frames_x_faces": executions < inferences,
        "worst_p95_rise_ms": round(max(p["p95"] for p in per_camera) - alone_p95, 3),
        "one_frame_ms": round(1e3 / FPS, 3),
    }


def nodes(
    url: str,
    identity: str,
    count: int,
    seconds: float,
    workdir: Path,
    *,
    backend: str,
    encode: bool,
) -> Any:
    """``count`` agecast nodes at once, each ``agecast bench --live`` on the bundled 720p30 demo
    clip in its own process, with ``backend`` (triton: the one server; onnxruntime: each node
    in-process, the baseline on the same cores)."""
    import subprocess

    agecast = Path(sys.executable).with_name("agecast")
    procs = []
    for k in range(count):
        out = workdir / f"{backend}-node{k + 1}.json"
        command = [
            str(agecast), "bench", "--live", "--seconds", str(seconds), "--identity", identity,
            "--backend", backend, "--triton-url", url, "--triton-timeout-ms", "200",
            "--threads", "1", "--json", str(out), "--encode" if encode else "--no-encode",
        ]  # fmt: skip
        procs.append((out, subprocess.Popen(command, stdout=subprocess.DEVNULL)))
    results = []
    for out, proc in procs:
        proc.wait()
        got = json.loads(out.read_text()) if out.is_file() else {"exit": proc.returncode}
        results.append(
            {
                key: got.get(key)
                for key in (
                    "fps_in", "fps_out", "dropped", "fx", "fx_errors", "seconds",
                    "frame_to_packet_ms", "frame_to_output_ms", "exit",
                )
            }
        )  # fmt: skip
    return {"backend": backend, "encode": encode, "per_node": results}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--identity", default="testpattern")
    parser.add_argument("--cameras", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--delay-us", type=int, default=RepoOptions().delay_us)
    parser.add_argument(
        "--wire", choices=WIRE_KINDS, default=RepoOptions(platform="python").wire_kind,
        help="how tensors travel (compact: 8-bit crops and results; float32: the model's own)",
    )  # fmt: skip
    parser.add_argument("--nodes", type=int, default=2)
    parser.add_argument("--node-seconds", type=float, default=20.0)
    parser.add_argument(
        "--node-encode",
        action=argparse.BooleanOptionalAction,
        default=False,
        help="nodes encode their outputs (two 720p encodes do not fit 2 cores)",
    )
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    torch.set_num_threads(1)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        repo = Path(tmp) / "repo"
        packages = [resolve(args.identity, [REPO_MODELS_DIR])]
        options = RepoOptions(
            platform="python", kind="cpu", instances=1, delay_us=args.delay_us,
            threads=args.threads, max_batch=8, wire=args.wire,
        )  # fmt: skip
        write_repository(repo, packages, options)
        with LocalTriton(repo, log_file=Path(tmp) / "triton.log") as server:
            added = added_latency(
                server.url, args.identity, astronaut_frames(args.frames), args.threads
            )
            batched = batching(server.url, args.identity, args.cameras, args.frames)
            fleet: Any = None
            if args.nodes:
                fleet = {"identity": args.identity, "nodes": args.nodes}
                for backend in ("onnxruntime", "triton"):
                    fleet[backend] = nodes(
                        server.url, args.identity, args.nodes, args.node_seconds, Path(tmp),
                        backend=backend, encode=args.node_encode,
                    )  # fmt: skip
    load_after = os.getloadavg()
    result = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "wire": args.wire,
        "added_latency_720p30_one_face_shm": added,
        "batching": batched,
        "nodes_on_one_triton": fleet,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        # the box was quiet when the run began; load_after includes the run's own processes
        # (Triton, and with --nodes two agecast nodes) on the same cores
        "quiet": load_before[0] < 1.5,
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "torch": torch.__version__,
            "numpy": np.__version__,
            "triton": "tritonserver 2.51 (nvidia-pytriton 0.7.0), Python backend, CPU",
        },
    }
    write_report(result, args.json)


if __name__ == "__main__":
    main()
