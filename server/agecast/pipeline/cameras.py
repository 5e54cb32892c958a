"""Several cameras on one box: one pipeline per camera, one backend (and its plans) shared.

Each camera has its own source, tracker, identity model and pipeline threads; the backend
(onnxruntime sessions' library, torch device, TensorRT runtime and plan cache) is built once.
With ``batch_faces`` the cameras share one identity model and their faces run as one batch
(:mod:`agecast.inference.batching`); by default each camera calls its own.

``serve`` gives each camera its own live service (``live.service``); ``bench --cameras N``
measures them together.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any, Literal

import torch

from agecast.errors import SourceError
from agecast.inference.base import Backend
from agecast.inference.batching import BatchingBackend
from agecast.media.encoder import EncoderName
from agecast.pipeline.bench import gpu_peak_mb, machine, measure
from agecast.pipeline.build import Built, assemble, device_and_backend
from agecast.settings import Settings, camera_entries

log = logging.getLogger(__name__)


@dataclass
class Cameras:
    device: torch.device
    backend: Backend
    cameras: list[Built]  # each named; the backend shared, not closed with one
    batching: BatchingBackend | None = None  # the cameras' faces batched through this

    def batch_report(self) -> dict[str, Any] | None:
        """Calls per model run of each shared identity (how often the cameras met)."""
        if self.batching is None:
            return None
        report: dict[str, Any] = {"window_ms": self.batching.window_s * 1e3}
        for label, model in self.batching.shared.items():
            runs = model.batches
            report[label] = {
                "runs": len(runs),
                "calls_per_run": {str(n): runs.count(n) for n in sorted(set(runs))},
            }
        return report

    def close(self) -> None:
        for camera in self.cameras:
            camera.close()


def build_cameras(
    settings: Settings,
    sources: list[str],
    *,
    mode: Literal["live", "render"] = "live",
    batch_faces: bool = False,
) -> Cameras:
    """A pipeline per source (``NAME=URI`` or a URI, see ``camera_entries``), all on one
    backend (with ``batch_faces``, one identity model batching every camera's faces); nothing
    started."""
    entries = camera_entries(sources)
    device, backend = device_and_backend(settings)
    batching = BatchingBackend(backend, callers=len(entries)) if batch_faces else None
    built = Cameras(device, backend, [], batching)
    live = mode == "live"
    try:
        for name, uri in entries:
            # live: as settings say; max (bench): a file loops to fill the time asked
            loop = settings.loop or not live
            try:
                camera = assemble(
                    settings, device, batching or backend, uri, mode=mode, loop=loop, name=name
                )
            except SourceError as exc:
                raise SourceError(f"camera {name}: {exc}") from exc
            built.cameras.append(camera)
    except BaseException:
        built.close()
        raise
    log.info("built %d cameras on %s (%s)", len(sources), backend.name, device)
    return built


def bench_cameras(
    settings: Settings,
    sources: list[str],
    *,
    seconds: float,
    live: bool,
    warmup: float = 2.0,
    encode: bool = True,
    codec: EncoderName = "auto",
    batch_faces: bool = False,
) -> dict[str, Any]:
    """Run every camera for ``warmup`` + ``seconds`` at once, each output encoded as the monitor
    does (its own encoder per camera) unless ``encode`` is False; per-camera and overall
    figures, and whether any camera's source ended early."""
    built = build_cameras(
        settings, sources, mode="live" if live else "render", batch_faces=batch_faces
    )
    if built.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    stats: dict[str, dict[str, Any]] = {}
    try:
        for camera in built.cameras:
            camera.pipeline.start()
        threads = [
            threading.Thread(
                target=_consume,
                args=(c, warmup, seconds, encode, codec, stats),
                name=f"bench-{c.name}",
            )
            for c in built.cameras
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        built.close()
    for camera in built.cameras:
        if camera.pipeline.error is not None:
            raise camera.pipeline.error
    per_camera = [{"camera": c.name, **stats[c.name]} for c in built.cameras]
    return {
        "command": "bench",
        "cameras": len(sources),
        "sources": sources,
        "identity": built.cameras[0].identity.manifest.id,
        "backend": built.backend.name,
        "device": str(built.device),
        "precision": settings.precision,
        "cuda_graphs": settings.cuda_graphs,
        "mode": "live" if live else "max",
        "warmup_s": warmup,
        "fps_out_total": round(sum(s["fps_out"] for s in per_camera), 2),
        "dropped_total": sum(sum(s["dropped"].values()) for s in per_camera),
        "frame_to_output_p99_ms_worst": max(s["frame_to_output_ms"]["p99"] for s in per_camera),
        "frame_to_packet_p99_ms_worst": (
            max(s["frame_to_packet_ms"]["p99"] for s in per_camera) if encode else None
        ),
        "requested_s": seconds,
        "ended_early": any(s["ended_early"] for s in per_camera),
        "gpu_peak_memory_mb": gpu_peak_mb(built.device),
        "machine": machine(),
        "batch_faces": built.batch_report(),
        "per_camera": per_camera,
    }


def _consume(
    camera: Built,
    warmup: float,
    seconds: float,
    encode: bool,
    codec: EncoderName,
    out: dict[str, dict[str, Any]],
) -> None:
    out[camera.name] = measure(
        camera.pipeline, seconds=seconds, warmup=warmup, encode=encode, codec=codec
    )
