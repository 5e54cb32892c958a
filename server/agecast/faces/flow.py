"""Landmark tracking between detections: pyramidal Lucas–Kanade on a small grey patch.

The five landmarks are followed from the previous frame's patch to the same rectangle of the
new frame, then one similarity (shift, turn, scale) is fitted to the points that tracked and
applied to all five. The fit keeps the face rigid, so a point on low-texture skin (nose,
mouth corners) cannot wander off alone; expressions are picked up at the next detection.
The patch is cut around the face and shrunk so the face is at most ``face_px`` wide, which
keeps the cost independent of the frame size.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch

from agecast.faces.align import estimate_affine, transform_points

_LK_STOP = (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 20, 0.03)  # LK's iterations per level


@dataclass(frozen=True, slots=True)
class Patch:
    """A grey patch of one frame: the frame rectangle it came from and its shrink factor."""

    grey: np.ndarray
    rect: tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels, end exclusive
    scale: float  # patch pixels per frame pixel


@dataclass(frozen=True, slots=True)
class FlowResult:
    landmarks5: torch.Tensor  # 5×2 frame pixels (rigidly moved)
    motion: torch.Tensor  # 2×3 similarity old → new frame pixels
    tracked: int  # how many of the five points LK followed


@dataclass(frozen=True, slots=True, kw_only=True)
class LandmarkFlow:
    """Follows five landmarks from one frame to the next: LK in a ``window``-px window over
    ``levels`` pyramid levels, on a patch ``margin`` face sizes around the face, shrunk to at
    most ``face_px``; a point whose LK error is over ``max_error`` did not track."""

    face_px: int = 128
    margin: float = 0.5
    window: int = 21
    levels: int = 3
    max_error: float = 30.0

    def grab(self, image: torch.Tensor, box: torch.Tensor) -> Patch:
        """The patch of ``image`` around ``box`` (x1, y1, x2, y2) to track from next frame."""
        height, width = int(image.shape[0]), int(image.shape[1])
        x1, y1, x2, y2 = (float(v) for v in box)
        size = max(x2 - x1, y2 - y1, 8.0)
        pad = self.margin * size
        rect = (
            max(0, int(x1 - pad)),
            max(0, int(y1 - pad)),
            min(width, int(x2 + pad) + 1),
            min(height, int(y2 + pad) + 1),
        )
        scale = min(1.0, self.face_px / size)
        return Patch(self._grey(image, rect, scale), rect, scale)

    def _grey(
        self, image: torch.Tensor, rect: tuple[int, int, int, int], scale: float
    ) -> np.ndarray:
        x0, y0, x1, y1 = rect
        rgb = np.ascontiguousarray(image[y0:y1, x0:x1].cpu().numpy())
        grey = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if scale < 1.0:
            size = (max(1, round((x1 - x0) * scale)), max(1, round((y1 - y0) * scale)))
            grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        return grey

    def track(
        self, previous: Patch, image: torch.Tensor, landmarks5: torch.Tensor
    ) -> FlowResult | None:
        """Where ``landmarks5`` (in ``previous``'s frame) went in ``image``; None when lost."""
        x0, y0, x1, y1 = previous.rect
        if x1 - x0 < 8 or y1 - y0 < 8:
            return None
        current = self._grey(image, previous.rect, previous.scale)
        if current.shape != previous.grey.shape:
            return None
        origin = np.array([x0, y0], dtype=np.float32)
        # patch pixel centres: (frame + 0.5) * scale - 0.5, the cv2.resize correspondence
        old = landmarks5.detach().cpu().numpy().astype(np.float32)
        old_patch = ((old - origin + 0.5) * previous.scale - 0.5).reshape(-1, 1, 2)
        new_patch, status, error = cv2.calcOpticalFlowPyrLK(
            previous.grey,
            current,
            old_patch,
            old_patch.copy(),
            winSize=(self.window, self.window),
            maxLevel=self.levels,
            criteria=_LK_STOP,
        )
        if new_patch is None or status is None:
            return None
        good = (status.reshape(-1) == 1) & (error.reshape(-1) < self.max_error)
        if int(good.sum()) < 3:
            return None
        new = (new_patch.reshape(-1, 2) + 0.5) / previous.scale - 0.5 + origin
        old_t = torch.from_numpy(old)
        motion = estimate_affine(old_t[good], torch.from_numpy(new[good]))
        return FlowResult(transform_points(motion, old_t), motion, int(good.sum()))
