"""``agecast bench``: run the pipeline for a while and report what a supervisor needs to know.

fps in/out, drops, per-stage p50/p95/p99, frame→output latency, landmark jitter on a still face,
peak RSS, and the machine it ran on. Speed targets are checked here, never in tests.
"""

from __future__ import annotations

import os
import platform
import resource
import sys
import time
from typing import Any

import torch

from agecast import __version__
from agecast.faces.jitter import measure_jitter
from agecast.pipeline.build import build
from agecast.settings import Settings


def _machine() -> dict[str, Any]:
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


def bench(settings: Settings, *, seconds: float, live: bool, warmup: float = 2.0) -> dict[str, Any]:
    """Run for ``warmup`` + ``seconds``; ``live`` paces the source and drops, else every frame."""
    built = build(settings, mode="live" if live else "render")
    pipeline = built.pipeline
    pipeline.start()
    still = None
    try:
        start = time.monotonic()
        warmed = False
        for output in pipeline.outputs():
            if time.monotonic() - start >= warmup + seconds:
                break
            if output is None:
                continue
            if still is None:
                still = output.raw.clone()
            if not warmed and time.monotonic() - start >= warmup:
                pipeline.reset_stats()
                warmed = True
        stats = pipeline.stats()
    finally:
        built.close()
    if pipeline.error is not None:
        raise pipeline.error
    jitter = measure_jitter(built.fx.tracker.detector, still.cpu()) if still is not None else None
    return {
        "command": "bench",
        "agecast": __version__,
        "source": settings.source,
        "identity": built.identity.manifest.id,
        "backend": built.backend.name,
        "device": str(built.device),
        "layout": settings.layout,
        "detect_every": settings.detect_every,
        "warmup_s": warmup,
        **stats,
        "mode": "live" if live else "max",  # the pipeline's own word for max is "render"
        "landmark_jitter_px": jitter,
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "machine": _machine(),
    }
