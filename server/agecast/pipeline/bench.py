"""``agecast bench``: run the pipeline for a while and report what a supervisor needs to know.

fps in/out, drops, per-stage p50/p95/p99, frame→output and frame→encoded-packet latency (every
output encoded as the live monitor does), host↔device copies per frame, landmark jitter on a
still face, peak RSS and GPU memory, and the machine it ran on. Speed targets are checked here,
never in tests.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import torch

from agecast import __version__
from agecast.faces.jitter import measure_jitter
from agecast.media.encoder import EncoderName, H264Encoder
from agecast.pipeline.build import Built, build
from agecast.pipeline.metrics import percentiles
from agecast.pipeline.runner import Output, Pipeline
from agecast.settings import Settings


def gpu_peak_mb(device: torch.device) -> float | None:
    """Peak CUDA memory allocated by torch since the last reset, or None off CUDA."""
    if device.type != "cuda":
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def measure(
    pipeline: Pipeline,
    *,
    seconds: float,
    warmup: float,
    encode: bool = True,
    on_output: Callable[[Output], None] | None = None,
    codec: EncoderName = "auto",
) -> dict[str, Any]:
    """Consume ``pipeline`` (started) for ``warmup`` + ``seconds``, encoding every output as the
    live monitor does (on a GPU: 4:2:0 made there, one download, then H.264) unless ``encode``
    is False: its stats
    plus frame→encoded-packet latency, the encoder used and host↔device copies per frame.
    Counts restart after warm-up. A source that ends first cuts the run short: then
    ``ended_early`` is true and ``seconds`` is what was measured, not what was asked. ``codec``:
    the H.264 encoder asked for (``nvenc`` falls back to libx264 and says why in the result)."""
    encoder = H264Encoder(pipeline.source.fps, codec=codec) if encode else None
    packet_ms: list[float] = []
    start = time.monotonic()
    warmed = warmup <= 0
    if warmed:
        pipeline.reset_stats()
    ended_early = True  # unless the loop below reaches the end of the time asked
    for output in pipeline.outputs():
        elapsed = time.monotonic() - start
        if elapsed >= warmup + seconds:
            ended_early = False
            break
        if not warmed and elapsed >= warmup:
            pipeline.reset_stats()
            packet_ms.clear()
            warmed = True
        if output is None:
            continue
        if on_output is not None:
            on_output(output)
        if encoder is not None:
            encoder.encode(output.picture, on_download=partial(pipeline.copies.add, "d2h"))
            packet_ms.append((time.monotonic_ns() - output.capture_ns) / 1e6)
    stats = pipeline.stats()
    stats["requested_s"] = seconds
    stats["ended_early"] = ended_early
    stats["ended_in_warmup"] = ended_early and not warmed
    stats["encode"] = encoder is not None
    if encoder is not None:
        stats["frame_to_packet_ms"] = percentiles(packet_ms)
        stats["encoder"] = {
            "asked": codec,
            "name": encoder.encoder_name,
            "fallback": encoder.fallback,
        }
    return stats


def bench(
    settings: Settings,
    *,
    seconds: float,
    live: bool,
    warmup: float = 2.0,
    encode: bool = True,
    command: list[str] | None = None,
    codec: EncoderName = "auto",
) -> dict[str, Any]:
    """Run for ``warmup`` + ``seconds``; ``live`` paces the source and drops, else every frame
    flat out (a file source loops to fill the time). ``encode``: H.264 every output as the
    monitor does (False measures the pipeline alone) with ``codec``."""
    load_before = os.getloadavg()
    built = build(settings, mode="live" if live else "render", loop=True if not live else None)
    pipeline = built.pipeline
    if built.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    pipeline.start()
    still: list[torch.Tensor] = []

    def keep_first(output: Output) -> None:
        if not still:
            still.append(output.raw.clone())

    try:
        stats = measure(
            pipeline,
            seconds=seconds,
            warmup=warmup,
            encode=encode,
            on_output=keep_first,
            codec=codec,
        )
    finally:
        built.close()
    if pipeline.error is not None:
        raise pipeline.error
    jitter = measure_jitter(built.fx.tracker.detector, still[0].cpu()) if still else None
    return {
        "command": "bench",
        "argv": command or ["agecast", "bench"],
        "agecast": __version__,
        "source": settings.source,
        "identity": built.identity.manifest.id,
        "backend": built.backend.name,
        "device": str(built.device),
        "precision": settings.precision,
        "cuda_graphs": settings.cuda_graphs,
        "layout": settings.layout,
        "detect_every": settings.detect_every,
        "warmup_s": warmup,
        **stats,
        "mode": "live" if live else "max",  # the pipeline's own word for max is "render"
        "landmark_jitter_px": jitter,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "gpu_peak_memory_mb": gpu_peak_mb(built.device),
        "machine": machine(),
        # the box is shared: how busy it was (1/5/15-minute load) before and after
        "load_average": {"before": load_before, "after": os.getloadavg()},
        "cast": _cast_figures(built),
    }


def _cast_figures(built: Built) -> dict[str, Any] | None:
    """With a cast: its size, the faces routed by recognition, what one recognition cost (on
    the recogniser's own thread live; the frame thread's share is the ``recognise`` stage)."""
    router = built.fx.cast
    if router is None:
        return None
    return {
        "members": router.members,
        "faces_total": dict(router.counts),
        "recognise_face_ms": percentiles(router.embed_ms()),
        "recheck_frames": router.recheck_frames,
    }
