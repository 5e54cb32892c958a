"""Generated clips for measuring picture quality, drawn offline from ``skimage.data.astronaut()``.

- ``unseen``: the astronaut's head cut out and moving over a plain backdrop with a motion the
  bundled demo clip never makes (a wide sideways travel, a zoom that brings the face up to about
  twice the demo's size, a slow roll and an exposure drift), so a model trained on the demo
  clip is measured on pictures it has not seen.
- ``occluder:demo`` / ``occluder:unseen``: that clip's frames with an opaque hand-like shape
  crossing the face. The occluder is drawn from the frame index alone, so its mask is known for
  every frame (:meth:`Clip.occluder_mask`) and the quality run can check that the aged picture
  left those pixels alone.

Clips are encoded once (H.264 through PyAV) into the cache folder, atomically, under versioned
names: bump :data:`CLIPS_VERSION` whenever the pictures change.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from numpy.typing import NDArray

from agecast.errors import SourceError
from agecast.media.writer import Mp4Writer
from agecast.sources.astronaut import FACE_LANDMARKS5, astronaut_rgb
from agecast.sources.demo import (
    DEMO_FPS,
    DEMO_HEIGHT,
    DEMO_WIDTH,
    DemoRenderer,
    cache_dir,
    demo_truth,
)

log = logging.getLogger(__name__)

CLIPS_VERSION = 1
UNSEEN = "unseen"
OCCLUDER_PREFIX = "occluder:"
CAST_DEMO = "cast:demo"  # three real people (agecast.cast.scene)
CLIP_NAMES = (UNSEEN, "occluder:demo", "occluder:unseen", CAST_DEMO)
UNSEEN_FRAMES = 300
OCCLUDER_FRAMES = 150
# the occluder's edge pixels are mixed with the face by anti-aliasing and 4:2:0 chroma: the
# measured mask is the drawn one shrunk by this many pixels
OCCLUDER_ERODE_PX = 2

_HEAD_CENTRE = (228.0, 130.0)  # photo pixels: the middle of the cut-out (below the eyes)
_HEAD_RADII = (115.0, 128.0)  # the cut-out ellipse: hair, face, chin and some neck
_BACKDROP = (58.0, 86.0, 104.0)  # a plain blue-grey wall


def _wave(t: float, *terms: tuple[float, float, float]) -> float:
    return sum(a * math.sin(2.0 * math.pi * hz * t + phase) for a, hz, phase in terms)


def unseen_truth(index: int) -> NDArray[np.float64]:
    """2×3 affine from astronaut-photo pixels to unseen-clip frame pixels for frame ``index``."""
    t = (index % UNSEEN_FRAMES) / DEMO_FPS
    scale = 1.75 + _wave(t, (0.45, 0.1, -1.2))  # 1.3 … 2.2: up to twice the demo's face
    angle = math.radians(_wave(t, (9.0, 0.2, 0.4)))  # a slow roll, ±9°
    cx = DEMO_WIDTH / 2 + _wave(t, (300.0, 0.1, 0.0), (40.0, 0.3, 1.0))  # wide travel
    cy = DEMO_HEIGHT / 2 + _wave(t, (50.0, 0.2, 2.0))
    linear = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    offset = np.array([cx, cy]) - linear @ np.array(_HEAD_CENTRE)
    return np.hstack([linear, offset[:, None]])


def _exposure(index: int) -> float:
    return 1.0 + _wave((index % UNSEEN_FRAMES) / DEMO_FPS, (0.08, 0.1, 0.5))


class UnseenRenderer:
    """Draws the unseen clip's frames: the cut-out head warped by :func:`unseen_truth`."""

    def __init__(self) -> None:
        photo = astronaut_rgb().astype(np.float32)
        yy, xx = np.mgrid[0 : photo.shape[0], 0 : photo.shape[1]].astype(np.float32)
        r = np.hypot(
            (xx - _HEAD_CENTRE[0]) / _HEAD_RADII[0], (yy - _HEAD_CENTRE[1]) / _HEAD_RADII[1]
        )
        alpha = np.clip((1.0 - r) * 12.0, 0.0, 1.0)  # a soft edge a few pixels wide
        self._premultiplied = np.dstack([photo * alpha[..., None], alpha]).astype(np.float32)
        self._backdrop = np.empty((DEMO_HEIGHT, DEMO_WIDTH, 3), np.float32)
        self._backdrop[:] = _BACKDROP

    def render(self, index: int) -> NDArray[np.uint8]:
        truth = unseen_truth(index)
        # only the box the head covers is warped and blended (a few ms instead of ~100)
        corners = np.array([[0, 0, 1], [511, 0, 1], [0, 511, 1], [511, 511, 1]], np.float64)
        placed = corners @ truth.T
        x0, y0 = (max(0, int(np.floor(v)) - 1) for v in placed.min(0))
        x1 = min(DEMO_WIDTH, int(np.ceil(placed[:, 0].max())) + 2)
        y1 = min(DEMO_HEIGHT, int(np.ceil(placed[:, 1].max())) + 2)
        frame = np.empty((DEMO_HEIGHT, DEMO_WIDTH, 3), np.uint8)
        frame[:] = np.array(_BACKDROP, np.float32).round().astype(np.uint8)
        if x1 <= x0 or y1 <= y0:
            return frame
        shifted = truth.copy()
        shifted[:, 2] -= (x0, y0)
        warped = cv2.warpAffine(
            self._premultiplied,
            shifted,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=(0.0, 0.0, 0.0, 0.0),
        )
        alpha = warped[..., 3:]
        backdrop = self._backdrop[y0:y1, x0:x1]
        picture = warped[..., :3] * _exposure(index) + backdrop * (1.0 - alpha)
        frame[y0:y1, x0:x1] = np.clip(picture + 0.5, 0.0, 255.0).astype(np.uint8)
        return frame


def _hand_outline(scale: float) -> list[NDArray[np.int32]]:
    """A hand-like silhouette (palm, four fingers, a thumb) as polygons, centred on (0, 0) in
    units of ``scale`` pixels (about one face width across the palm and fingers)."""
    palm = cv2.ellipse2Poly((0, 0), (int(0.42 * scale), int(0.5 * scale)), 0, 0, 360, 10)
    polygons: list[NDArray[np.int32]] = [np.asarray(palm, np.int32)]
    for i, (dx, length) in enumerate(((-0.3, 0.62), (-0.1, 0.75), (0.1, 0.72), (0.3, 0.58))):
        top = -0.35 - length
        finger = np.array(
            [
                [dx - 0.085, -0.2],
                [dx - 0.085, top + 0.08],
                [dx, top - 0.01 * i],
                [dx + 0.085, top + 0.08],
                [dx + 0.085, -0.2],
            ]
        )
        polygons.append((finger * scale).astype(np.int32))
    thumb = np.array([[0.3, 0.1], [0.75, -0.3], [0.85, -0.2], [0.45, 0.3]])
    polygons.append((thumb * scale).astype(np.int32))
    return [p.reshape(-1, 2) for p in polygons]


@dataclass(frozen=True)
class Clip:
    """A generated clip: its name, frames, and how to draw frame ``i`` (and its occluder)."""

    name: str
    frames: int
    draw_base: Callable[[int], NDArray[np.uint8]]
    face_truth: Callable[[int], NDArray[np.float64]] | None
    occluded: bool

    def _occluder_pose(self, index: int) -> tuple[float, float, float, float]:
        """(x, y, size, angle°) of the occluder in frame ``index``: it crosses the face from
        left to right and back, over the nose and mouth."""
        assert self.face_truth is not None
        truth = self.face_truth(index)
        points = np.array(FACE_LANDMARKS5) @ truth[:, :2].T + truth[:, 2]
        eyes = float(np.linalg.norm(points[1] - points[0]))
        centre = points.mean(0)
        # it starts beside the face, is over it by frame 15 and crosses it twice in the clip
        phase = 2.0 * math.pi * (index + 22) / self.frames
        x = centre[0] - 2.6 * eyes * math.cos(phase)
        y = centre[1] + 1.1 * eyes + 0.2 * eyes * math.sin(3.0 * phase)
        return float(x), float(y), 1.5 * eyes, 12.0 * math.sin(phase)

    def occluder_mask(self, index: int) -> NDArray[np.bool_] | None:
        """HxW bool: the pixels the occluder covers in frame ``index`` (None: no occluder)."""
        if not self.occluded:
            return None
        x, y, size, angle = self._occluder_pose(index)
        rotation = cv2.getRotationMatrix2D((0.0, 0.0), angle, 1.0)
        mask = np.zeros((DEMO_HEIGHT, DEMO_WIDTH), np.uint8)
        polygons = [
            np.round(p @ rotation[:, :2].T + (x, y)).astype(np.int32) for p in _hand_outline(size)
        ]
        cv2.fillPoly(mask, polygons, 1)
        return mask.astype(bool)

    def render(self, index: int) -> NDArray[np.uint8]:
        """Frame ``index`` as HWC uint8 RGB."""
        frame = self.draw_base(index)
        mask = self.occluder_mask(index)
        if mask is None:
            return frame
        frame = frame.copy()
        ys, xs = np.nonzero(mask)
        if ys.size:
            # skin-toned with shading and creases, so it is a texture a face model could mistake
            # for skin, not a flat patch
            shade = 0.85 + 0.15 * np.sin(xs / 9.0) * np.cos(ys / 13.0)
            skin = np.array([214.0, 160.0, 128.0])
            frame[ys, xs] = np.clip(skin[None, :] * shade[:, None], 0, 255).astype(np.uint8)
        return frame

    def measured_occluder(self, index: int) -> torch.Tensor | None:
        """The occluder's mask as measured (shrunk by :data:`OCCLUDER_ERODE_PX`), HxW bool."""
        mask = self.occluder_mask(index)
        if mask is None:
            return None
        size = 2 * OCCLUDER_ERODE_PX + 1
        kernel = np.ones((size, size), np.uint8)
        return torch.from_numpy(cv2.erode(mask.astype(np.uint8), kernel).astype(bool))


def get_clip(name: str) -> Clip:
    """The generated clip called ``name`` (one of :data:`CLIP_NAMES`)."""
    if name == UNSEEN:
        return Clip(UNSEEN, UNSEEN_FRAMES, UnseenRenderer().render, unseen_truth, False)
    if name == CAST_DEMO:
        from agecast.cast.scene import FRAMES, CastScene  # the sample photo is read only here

        return Clip(CAST_DEMO, FRAMES, CastScene().render, None, False)
    if name.startswith(OCCLUDER_PREFIX):
        base = name.removeprefix(OCCLUDER_PREFIX)
        if base == "demo":
            return Clip(name, OCCLUDER_FRAMES, DemoRenderer().render, demo_truth, True)
        if base == UNSEEN:
            return Clip(name, OCCLUDER_FRAMES, UnseenRenderer().render, unseen_truth, True)
    raise SourceError(f"unknown generated clip {name!r}: one of {', '.join(CLIP_NAMES)}")


def is_generated(uri: str) -> bool:
    return uri.strip() in CLIP_NAMES


def write_clip(clip: Clip, path: Path, *, frames: int | None = None) -> Path:
    """Encode ``frames`` (default: all) of ``clip`` to ``path`` as H.264 MP4, atomically."""
    count = clip.frames if frames is None else min(frames, clip.frames)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        writer = Mp4Writer(tmp, DEMO_FPS)
        try:
            for index in range(count):
                writer.write(torch.from_numpy(clip.render(index)))
        finally:
            writer.close()
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def clip_path(clip: Clip, frames: int | None = None) -> Path:
    """The clip's first ``frames`` frames (default all) in the cache folder, encoded there first
    if they are not yet."""
    count = clip.frames if frames is None else max(1, min(frames, clip.frames))
    slug = clip.name.replace(":", "-")
    size = f"{DEMO_WIDTH}x{DEMO_HEIGHT}p{DEMO_FPS}"
    path = cache_dir() / f"quality-{slug}-v{CLIPS_VERSION}-{size}-{count}f.mp4"
    if path.is_file():
        return path
    log.info("generating the %s clip at %s (once; takes a few seconds)", clip.name, path)
    try:
        return write_clip(clip, path, frames=count)
    except OSError as exc:
        raise SourceError(
            f"cannot write the {clip.name} clip to {path.parent} ({exc}): set AGECAST_CACHE_DIR "
            "to a writable folder"
        ) from exc
