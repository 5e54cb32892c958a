"""One quality run: a clip through the offline render path, every frame, measured face by face.

The pipeline is the one ``agecast render`` builds (same detector, tracker, identity, look);
only the layout (the aged picture alone) and the AI mark (off, so it is not measured as a
change) differ. Each output's raw and aged pictures and the faces the FX used are measured on
the consumer thread while the pipeline renders the next frame; the paste-back masks are seen
by a tap on the identity's ``infer`` (the FX stage itself is not changed).

Per face and frame (each figure is aged compared with raw, on the pipeline's own pictures,
before any encoding):

- ``detail``: Laplacian variance of the aged face / of the raw face, in frame pixels inside the
  face ellipse (brows to chin) placed by the five landmarks: 1.0 keeps the plate's detail,
  0.25 keeps a quarter of it;
- ``identity``: cosine similarity of SFace embeddings (ArcFace-aligned 112 crops) of the aged
  and the raw face: 1.0 the same picture, ≥ 0.363 the same person by OpenCV's threshold;
- ``flicker``: in face-stabilised crops (aligned by each frame's landmarks, at the plate's
  resolution), the mean absolute change from the previous frame inside the face ellipse, in
  code values 0–255: aged minus raw (0: no flicker added);
- ``seam``: mean squared gradient on the ring where the paste-back mask goes from 0.05 to 0.95,
  aged / raw (1.0: the edge does not show; above 1 a seam, below 1 a soft smear);
- ``occlusion`` (clips with an occluder): per frame, the largest and the 99th-percentile change
  (max over RGB, code values) of the occluder's pixels inside the paste-back mask.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch

from agecast.errors import QualityError
from agecast.faces.align import estimate_affine, template_points, transform_points, warp_crop
from agecast.faces.recognise import SFACE_SIZE, SFACE_TEMPLATE, Recogniser, cosine
from agecast.frames import FaceBox, Frame
from agecast.identities.runtime import IdentityModel
from agecast.inference.registry import get_backend
from agecast.pipeline.build import build
from agecast.pipeline.fx import Look, paste_masks
from agecast.pipeline.runner import Output, Pipeline
from agecast.quality.clips import Clip, clip_path, get_clip, is_generated
from agecast.quality.figures import (
    abs_change,
    box_of,
    face_ellipse,
    gradient_energy,
    in_frame,
    laplacian_variance,
    luma,
    mean_abs_difference,
    ratio,
)
from agecast.settings import Settings

log = logging.getLogger(__name__)

_REGION_SIZE = 224  # crop size the face ellipse is drawn at before it is carried into the frame
_RING = (0.05, 0.95)  # the paste-back mask's edge: where it goes from about 0 to about 1
FIGURES = ("detail", "identity", "flicker", "seam", "occlusion_p99", "occlusion_max")
GOALS = {  # issue 12's goals for a re-ageing model that keeps the actor and the plate
    "detail": (">=", 0.9),
    "identity": (">=", 0.6),
    "flicker": ("<=", 1.0),
    "occlusion_max": ("<=", 2.0),
}


class MaskTap:
    """Stands in for the identity in the FX stage: passes every call through and keeps, per
    frame, the masks its ``infer`` returned (the paste-back masks are made from them)."""

    def __init__(self, identity: IdentityModel) -> None:
        self.inner = identity
        self.frame = -1
        self.masks: dict[int, torch.Tensor | None] = {}
        self.seen = False
        self.delta = False  # a re-ageing identity: its mask is not feathered

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def at_frame(self, frame: Frame) -> None:
        self.frame = frame.index

    def infer(self, crops: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
        result = self.inner.infer(crops, *args, **kwargs)
        masks = getattr(result, "masks", None)
        self.masks[self.frame] = None if masks is None else masks.detach().cpu()
        self.delta = getattr(result, "deltas", None) is not None
        self.seen = True
        return result

    def take(self, frame: int) -> torch.Tensor | None:
        return self.masks.pop(frame, None)


@dataclass
class FaceSample:
    """The figures of one face in one frame (None where a figure cannot be made there)."""

    frame: int
    track: int
    detail: float | None = None
    identity: float | None = None
    flicker: float | None = None
    flicker_raw: float | None = None
    flicker_aged: float | None = None
    seam: float | None = None
    occlusion_p99: float | None = None
    occlusion_max: float | None = None


@dataclass
class _Stabilised:
    """A track's last face-stabilised crops, for flicker."""

    frame: int
    raw: torch.Tensor
    aged: torch.Tensor


@dataclass
class Measurer:
    """Measures outputs one by one; keeps the samples."""

    recogniser: Recogniser
    tap: MaskTap
    clip: Clip | None = None
    samples: list[FaceSample] = field(default_factory=list)
    _tracks: dict[int, _Stabilised] = field(default_factory=dict)
    _sizes: dict[int, int] = field(default_factory=dict)

    def add(self, output: Output) -> None:
        masks = self.tap.take(output.index)
        if not output.face_boxes or output.look is None:
            return
        raw, aged = output.raw.cpu(), output.aged.cpu()
        identity = output.identity or cast(IdentityModel, self.tap)
        for i, face in enumerate(output.face_boxes):
            model_mask = None if masks is None or i >= masks.shape[0] else masks[i : i + 1]
            self.samples.append(
                self._face(output.index, raw, aged, face, identity, output.look, model_mask)
            )

    def _face(
        self,
        index: int,
        raw: torch.Tensor,
        aged: torch.Tensor,
        face: FaceBox,
        identity: IdentityModel,
        look: Look,
        model_mask: torch.Tensor | None,
    ) -> FaceSample:
        points = face.landmarks5.detach().cpu().float()
        hw = (int(raw.shape[0]), int(raw.shape[1]))
        sample = FaceSample(index, face.track_id)
        # detail: inside the face ellipse, in frame pixels
        region_affine = estimate_affine(points, template_points(SFACE_TEMPLATE, _REGION_SIZE))
        box, alpha = in_frame(face_ellipse(_REGION_SIZE), region_affine, hw)
        region = alpha >= 0.5
        if bool(region.any()):
            sample.detail = ratio(
                laplacian_variance(luma(box_of(aged, box)), region),
                laplacian_variance(luma(box_of(raw, box)), region),
            )
        # identity: SFace on both pictures
        crops = torch.cat([self.recogniser.crops(raw, points), self.recogniser.crops(aged, points)])
        embeddings = self.recogniser.embed_crops(crops)
        sample.identity = float(cosine(embeddings[0], embeddings[1])[0])
        self._flicker(sample, raw, aged, points)
        self._paste_edge(sample, raw, aged, points, identity, look, model_mask)
        return sample

    def _paste_edge(
        self,
        sample: FaceSample,
        raw: torch.Tensor,
        aged: torch.Tensor,
        points: torch.Tensor,
        identity: IdentityModel,
        look: Look,
        model_mask: torch.Tensor | None,
    ) -> None:
        """Seam and occlusion: on the paste-back mask, made as the FX stage makes it."""
        hw = (int(raw.shape[0]), int(raw.shape[1]))
        size = identity.crop_size
        paste_affine = estimate_affine(
            points, template_points(identity.manifest.crop.template, size)
        )
        crop_points = transform_points(paste_affine, points)[None]
        paste = paste_masks(identity, model_mask, self.tap.delta, look, crop_points)[0]
        pbox, palpha = in_frame(paste, paste_affine, hw)
        ring = (palpha > _RING[0]) & (palpha < _RING[1])
        if bool(ring.any()):
            sample.seam = ratio(
                gradient_energy(luma(box_of(aged, pbox)), ring),
                gradient_energy(luma(box_of(raw, pbox)), ring),
            )
        occluder = None if self.clip is None else self.clip.measured_occluder(sample.frame)
        if occluder is not None:
            inside = box_of(occluder, pbox) & (palpha > 0.0)
            if bool(inside.any()):
                change = abs_change(box_of(raw, pbox), box_of(aged, pbox), inside)
                sample.occlusion_p99 = float(torch.quantile(change, 0.99))
                sample.occlusion_max = float(change.max())

    def _flicker(
        self, sample: FaceSample, raw: torch.Tensor, aged: torch.Tensor, points: torch.Tensor
    ) -> None:
        track = sample.track
        if track not in self._sizes:  # the plate's resolution, fixed per track
            unit = estimate_affine(points, template_points(SFACE_TEMPLATE, SFACE_SIZE))
            crop_px_per_frame_px = float(torch.linalg.det(unit[:, :2]).abs().sqrt())
            self._sizes[track] = int(min(512, max(64, round(SFACE_SIZE / crop_px_per_frame_px))))
        size = self._sizes[track]
        affine = estimate_affine(points, template_points(SFACE_TEMPLATE, size))
        now = _Stabilised(sample.frame, warp_crop(raw, affine, size), warp_crop(aged, affine, size))
        before = self._tracks.get(track)
        self._tracks[track] = now
        if before is None or before.frame != sample.frame - 1:
            return
        region = face_ellipse(size) > 0.5
        sample.flicker_raw = mean_abs_difference(now.raw, before.raw, region)
        sample.flicker_aged = mean_abs_difference(now.aged, before.aged, region)
        sample.flicker = sample.flicker_aged - sample.flicker_raw


def summarise(values: list[float | None]) -> dict[str, float | int] | None:
    """Median, 10th and 90th percentiles and count of the values that are not None."""
    kept = [v for v in values if v is not None]
    if not kept:
        return None
    p10, p90 = np.percentile(np.asarray(kept, dtype=np.float64), [10, 90])
    return {
        "median": round(statistics.median(kept), 4),
        "p10": round(float(p10), 4),
        "p90": round(float(p90), 4),
        "count": len(kept),
    }


def figures_of(samples: list[FaceSample]) -> dict[str, Any]:
    names = (*FIGURES, "flicker_raw", "flicker_aged")
    out: dict[str, Any] = {name: summarise([getattr(s, name) for s in samples]) for name in names}
    worst = [s.occlusion_max for s in samples if s.occlusion_max is not None]
    out["occlusion_worst"] = max(worst) if worst else None
    return out


def goals(overall: dict[str, Any]) -> dict[str, Any]:
    """Issue 12's goals and whether the medians meet them (None: not measured)."""
    result: dict[str, Any] = {}
    for name, (op, bound) in GOALS.items():
        summary = overall.get(name)
        value = None if summary is None else summary["median"]
        met = None if value is None else (value >= bound if op == ">=" else value <= bound)
        result[name] = {"goal": f"{op} {bound}", "median": value, "met": met}
    return result


def measure(
    settings: Settings,
    *,
    frames: int | None = None,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Render ``settings.source`` (``frames`` of it, default all) and measure every face.

    A source named like a generated clip (``unseen``, ``occluder:demo``, ``occluder:unseen``)
    is generated first (cached). ``progress`` is called with the frames rendered so far.
    Raises :class:`QualityError` when no frame had a face.
    """
    source = settings.source.strip()
    clip = get_clip(source) if is_generated(source) else None
    if clip is not None:
        settings = settings.model_copy(update={"source": str(clip_path(clip, frames))})
    settings = settings.model_copy(update={"layout": "aged", "ai_mark": False, "loop": False})
    recogniser = Recogniser(get_backend("onnxruntime", threads=settings.threads))
    try:
        built = build(settings, mode="render")
        tap = MaskTap(built.identity)
        # the tap wraps the built identity, which stays open (built.close() closes it)
        built.fx.set_identity(cast(IdentityModel, tap), close_old=False)
        measurer = Measurer(recogniser, tap, clip)
        started = time.monotonic()
        try:
            stats = _run(built.pipeline, tap, measurer, frames, progress)
        finally:
            built.close()
        seconds = time.monotonic() - started
    finally:
        recogniser.close()
    samples = measurer.samples
    if not samples:
        raise QualityError(
            f"no face found in {source} ({stats['frames_out']} frames read): "
            "quality is measured on faces; give a clip with a face the detector finds "
            "(try --source demo or --source unseen)"
        )
    if not tap.seen:
        log.warning("the FX stage never called the identity's infer: seam ring from the template")
    report = _report(settings, built.identity, samples, stats, seconds, clip)
    where = {"backend": built.backend.name, "device": str(built.device)}
    return {"source": source, "clip_file": settings.source, **where, **report}


def _run(
    pipeline: Pipeline,
    tap: MaskTap,
    measurer: Measurer,
    frames: int | None,
    progress: Callable[[int], None] | None,
) -> dict[str, Any]:
    """Render every frame (up to ``frames``), measuring each output; the pipeline's stats."""
    pipeline.limit = frames
    pipeline.before_frame = tap.at_frame
    pipeline.start()
    for output in pipeline.outputs():
        if output is None:
            continue
        measurer.add(output)
        if progress is not None:
            progress(pipeline.frames_out)
    if pipeline.error is not None:
        raise pipeline.error
    return pipeline.stats()


def _identity_info(identity: IdentityModel, settings: Settings) -> dict[str, Any]:
    manifest = identity.manifest
    control = identity.age_control
    age_used: float | None = None
    if control is not None:
        lo, hi, default = control
        age_used = default if settings.age is None else min(max(settings.age, lo), hi)
    return {
        "id": manifest.id,
        "family": manifest.family,
        "purpose": manifest.purpose,
        "crop_size": identity.crop_size,
        "template": manifest.crop.template,
        "age_asked": settings.age,
        "age": age_used if control is not None else manifest.target_age,
        "age_range": list(control[:2]) if control is not None else None,
        "sha256": manifest.model.sha256,
    }


def _report(
    settings: Settings,
    identity: IdentityModel,
    samples: list[FaceSample],
    stats: dict[str, Any],
    seconds: float,
    clip: Clip | None,
) -> dict[str, Any]:
    tracks: dict[int, list[FaceSample]] = {}
    for sample in samples:
        tracks.setdefault(sample.track, []).append(sample)
    overall = figures_of(samples)
    stages = stats["stages_ms"]
    processing = stages.get("processing", {})
    frames_out = int(stats["frames_out"])
    return {
        "generated_clip": None if clip is None else clip.name,
        "identity": _identity_info(identity, settings),
        "look": {
            "blend": settings.blend,
            "color_transfer": settings.color_transfer,
            "mask_feather": settings.mask_feather,
        },
        "frames": {
            "rendered": frames_out,
            "with_face": len({s.frame for s in samples}),
            "faces_measured": len(samples),
            "tracks": len(tracks),
            "fx": stats["fx"],
            "fx_errors": stats["fx_errors"],
            "dropped": stats["dropped"],
        },
        "speed": {
            # the render and the measuring share the CPU: the first is what this run took, the
            # second the pipeline's own work per frame (its stages), i.e. the render alone
            "fps_with_measuring": round(frames_out / seconds, 2) if seconds > 0 else None,
            "fps_pipeline": round(1000.0 / processing["mean"], 2)
            if processing.get("mean")
            else None,
            "processing_ms": processing,
            "infer_ms": stages.get("infer"),
        },
        "overall": overall,
        "goals": goals(overall),
        "tracks": {str(track): figures_of(items) for track, items in sorted(tracks.items())},
    }


__all__ = ["FaceSample", "MaskTap", "Measurer", "measure", "summarise"]
