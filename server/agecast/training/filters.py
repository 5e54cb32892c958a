"""What makes a face crop worth training on: sharpness, head pose, and not being a duplicate.

Each measure is small and deterministic, so a resumed extraction decides exactly as the first
run did. All of them work on aligned crops (HWC uint8 RGB) or on the five detector landmarks.
"""

from __future__ import annotations

import math
from collections import deque

import torch
import torch.nn.functional as F

from agecast.faces.align import template_points

# Sharpness is measured on the crop resampled to this size, so one threshold means the same
# at every ``--size``.
SHARPNESS_SIZE = 256
# The face region for sharpness: the box round the five template points, widened by this
# fraction of the eye distance (brows to chin, no background or off-frame black).
_REGION_MARGIN = 0.25
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_LUMA = torch.tensor([0.299, 0.587, 0.114])

# Head pose. The frontal reference is the ArcFace 5-point template (the average aligned face):
# there the nose sits on the midline, NOSE_DROP of the way from the eye line to the mouth line.
# NOSE_DEPTH is how far the nose tip stands in front of the eye–mouth plane, in half eye
# distances (≈ 23 mm over ≈ 32 mm for an average adult).
_ARCFACE = template_points("arcface_112", 112).double()
NOSE_DROP = float(
    (_ARCFACE[2, 1] - _ARCFACE[:2, 1].mean()) / (_ARCFACE[3:, 1].mean() - _ARCFACE[:2, 1].mean())
)
# eye line to mouth line, in half eye distances
_FACE_HEIGHT = float(
    (_ARCFACE[3:, 1].mean() - _ARCFACE[:2, 1].mean()) / ((_ARCFACE[1, 0] - _ARCFACE[0, 0]) / 2)
)
NOSE_DEPTH = 0.7

THUMBNAIL_SIDE = 16


def _gray(crop: torch.Tensor) -> torch.Tensor:
    """H×W float luma (0–255) of an HWC uint8 RGB crop."""
    return crop.float() @ _LUMA.to(crop.device)


def face_region(template: str, size: int) -> tuple[int, int, int, int]:
    """Crop pixels ``(x0, y0, x1, y1)`` (end exclusive) holding the face's inner features."""
    points = template_points(template, size)
    margin = _REGION_MARGIN * float(points[1, 0] - points[0, 0])
    low = (points.min(0).values - margin).floor().clamp(0, size - 1).int().tolist()
    high = (points.max(0).values + margin).ceil().clamp(1, size).int().tolist()
    return low[0], low[1], high[0], high[1]


def sharpness(crop: torch.Tensor, template: str) -> float:
    """Variance of the Laplacian of the face region's luma (0–255 scale), measured at
    :data:`SHARPNESS_SIZE`. A sharp 256-pixel face from HD video scores in the tens to hundreds;
    a Gaussian blur of 2 px brings it to single figures.

    ``crop`` is an HWC uint8 RGB aligned crop made with ``template``.
    """
    gray = _gray(crop)[None, None]
    if gray.shape[-1] != SHARPNESS_SIZE:
        gray = F.interpolate(
            gray, size=(SHARPNESS_SIZE, SHARPNESS_SIZE), mode="bilinear", antialias=True
        )
    x0, y0, x1, y1 = face_region(template, SHARPNESS_SIZE)
    region = gray[:, :, y0:y1, x0:x1]
    laplacian = F.conv2d(region, _LAPLACIAN.to(region.device)[None, None])
    return float(laplacian.var())


def estimate_pose(landmarks5: torch.Tensor) -> tuple[float, float]:
    """Rough (yaw, pitch) in degrees from five landmarks (eyes, nose, mouth corners).

    Roll is taken out first (the eye line made level). Then, treating the eyes and mouth
    corners as lying in one plane with the nose tip :data:`NOSE_DEPTH` in front of it, the
    camera as far away (orthographic), and the head as nodding by φ about its own ear-to-ear
    axis after turning by θ about the vertical:

    - pitch: the nod moves the nose up by ``depth · sin φ`` while the eye–mouth height
      shrinks by ``cos φ``, so the nose's fraction of the way from eye line to mouth line
      falls from :data:`NOSE_DROP` by ``NOSE_DEPTH / face height · tan φ`` (the turn leaves
      that fraction alone). Positive pitch: looking up.
    - yaw: the turn moves the nose off the face's midline by ``depth · sin θ / cos φ`` while
      the eyes close up to ``cos θ`` of their distance, so the nose offset in half eye
      distances is ``NOSE_DEPTH · tan θ / cos φ``. Positive yaw: the nose points to the
      image's right.

    Exact for a face with those proportions; real faces and detectors differ, so expect about
    10°: enough to drop profiles and extreme tilts, where five-point alignment stops being
    reliable anyway. Degenerate landmarks (eyes on one point, mouth not below the eyes) read
    as 90°.
    """
    points = landmarks5.detach().to("cpu", torch.float64).reshape(5, 2)
    left_eye, right_eye = points[0], points[1]
    eye_vector = right_eye - left_eye
    half_eye = float(eye_vector.norm()) / 2.0
    if half_eye < 1e-6:
        return 90.0, 90.0
    roll = math.atan2(float(eye_vector[1]), float(eye_vector[0]))
    cos, sin = math.cos(-roll), math.sin(-roll)
    level = torch.tensor([[cos, -sin], [sin, cos]], dtype=torch.float64)
    # eye midpoint at the origin, eye line along +x, y down; lengths in half eye distances
    face = (points - (left_eye + right_eye) / 2.0) @ level.T / half_eye
    nose = face[2]
    mouth = (face[3] + face[4]) / 2.0
    height = float(mouth[1])
    if height <= 1e-6:
        return 90.0, 90.0
    drop = float(nose[1]) / height
    midline_x = float(mouth[0]) * drop  # the eye-to-mouth midline at the nose's height
    pitch = math.atan((NOSE_DROP - drop) * _FACE_HEIGHT / NOSE_DEPTH)
    yaw = math.atan((float(nose[0]) - midline_x) * math.cos(pitch) / NOSE_DEPTH)
    return math.degrees(yaw), math.degrees(pitch)


def thumbnail(crop: torch.Tensor) -> torch.Tensor:
    """A 16×16 luma thumbnail of an HWC uint8 crop, zero mean and unit spread, so a change of
    exposure alone does not make two faces look different."""
    gray = F.adaptive_avg_pool2d(_gray(crop)[None, None], THUMBNAIL_SIDE)[0, 0]
    return (gray - gray.mean()) / (gray.std() + 1e-3)


class DuplicateFilter:
    """Near-duplicate test against the last ``window`` kept faces.

    Distance: mean absolute difference of :func:`thumbnail` s (in units of the thumbnail's
    spread). Re-encoded copies of one picture measure ≈ 0.001; consecutive frames of a person
    moving, 0.02–0.3. A face closer than ``threshold`` to any recent kept face is a duplicate;
    ``threshold`` 0 keeps everything.
    """

    def __init__(self, threshold: float, window: int) -> None:
        self.threshold = threshold
        self._recent: deque[torch.Tensor] = deque(maxlen=max(1, window))

    def distance(self, thumb: torch.Tensor) -> float:
        """Distance to the nearest recent kept face (inf when none is kept yet)."""
        if not self._recent:
            return math.inf
        return min(float((thumb - kept).abs().mean()) for kept in self._recent)

    def is_duplicate(self, thumb: torch.Tensor) -> bool:
        return self.threshold > 0 and self.distance(thumb) < self.threshold

    def keep(self, thumb: torch.Tensor) -> None:
        """Remember a kept face."""
        self._recent.append(thumb)
