"""Landmark jitter on a still face: how much the landmarks move when nothing moves.

The same frame is fed repeatedly with fresh Gaussian sensor noise (deterministic per seed);
any landmark motion is jitter. Measured once without smoothing (raw) and once with it.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from agecast.faces.detector import FaceDetector
from agecast.faces.tracker import FaceTracker

log = logging.getLogger(__name__)


def noisy_frames(
    image: torch.Tensor, frames: int, noise_sigma: float, seed: int
) -> list[torch.Tensor]:
    """``frames`` copies of HWC uint8 ``image`` with per-frame Gaussian noise (σ in levels)."""
    generator = torch.Generator().manual_seed(seed)
    base = image.cpu().float()
    out = []
    for _ in range(frames):
        noise = torch.randn(base.shape, generator=generator) * noise_sigma
        out.append((base + noise).round().clamp(0, 255).to(torch.uint8).to(image.device))
    return out


def _mean_motion(
    detector: FaceDetector,
    frames: list[torch.Tensor],
    fps: float,
    warmup: int,
    tracker_kwargs: dict[str, Any],
) -> tuple[float, int]:
    tracker = FaceTracker(detector, **tracker_kwargs)
    previous: torch.Tensor | None = None
    motions: list[float] = []
    missed = 0
    for index, frame in enumerate(frames):
        faces = tracker.update(frame, index / fps)
        if not faces:
            missed += 1
            previous = None
            continue
        points = faces[0].landmarks5
        if previous is not None and index >= warmup:
            motions.append(float((points - previous).norm(dim=1).mean()))
        previous = points
    return (sum(motions) / len(motions) if motions else float("nan")), missed


def measure_jitter(
    detector: FaceDetector,
    image: torch.Tensor,
    *,
    frames: int = 60,
    noise_sigma: float = 2.0,
    seed: int = 0,
    fps: float = 30.0,
    warmup: int = 5,
    **tracker_kwargs: Any,
) -> dict[str, float]:
    """Mean per-frame landmark motion in pixels of the largest face, raw and smoothed.

    The first ``warmup`` frames (the filter settling on its first sample) are not counted.

    ``tracker_kwargs`` go to :class:`FaceTracker` (``smoothing`` is set here: off, then on).
    Returns ``raw_px``, ``smoothed_px``, ``frames`` and ``missed_frames`` (frames without a face,
    over both runs).
    """
    tracker_kwargs = {k: v for k, v in tracker_kwargs.items() if k != "smoothing"}
    sequence = noisy_frames(image, frames, noise_sigma, seed)
    raw, missed_raw = _mean_motion(
        detector, sequence, fps, warmup, {**tracker_kwargs, "smoothing": False}
    )
    smooth, missed_smooth = _mean_motion(
        detector, sequence, fps, warmup, {**tracker_kwargs, "smoothing": True}
    )
    log.info(
        "landmark jitter over %s noisy frames: raw %.3f px, smoothed %.3f px", frames, raw, smooth
    )
    return {
        "raw_px": raw,
        "smoothed_px": smooth,
        "frames": float(frames),
        "missed_frames": float(missed_raw + missed_smooth),
    }
