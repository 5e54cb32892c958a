"""SCRFD (insightface ``det_10g.onnx`` and the ``scrfd_*_kps`` family), used when the user has
a local insightface model folder. Nothing is downloaded and no weights ship with agecast.

Model contract (the insightface export): one input, RGB, ``(x - 127.5) / 128``, 640×640 unless
the model fixes another size. Outputs come in the model's order: the scores of every stride,
then the box distances, then the landmark distances. With 9 outputs the strides are 8/16/32 with
2 anchors per location; with 15 outputs 8/16/32/64/128 with one anchor. Each location's anchor
centre is (col, row) × stride (the anchors of one location are consecutive); a box is the
centre minus/plus (left, top, right, bottom) × stride and each landmark the centre plus
(dx, dy) × stride.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from agecast.errors import BackendError, DetectorError
from agecast.faces.detector import LetterboxDetector
from agecast.inference.base import Backend

log = logging.getLogger(__name__)

SCRFD_SIZE = 640
# outputs → (strides, anchors per location); models without landmarks (6 or 10) are refused
_LAYOUTS = {9: ((8, 16, 32), 2), 15: ((8, 16, 32, 64, 128), 1)}


class ScrfdDetector(LetterboxDetector):
    """SCRFD on any backend; pre-processing and decode in torch."""

    name = "scrfd"

    def __init__(
        self,
        backend: Backend,
        model_path: Path,
        *,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        max_faces: int = 32,
    ) -> None:
        self.model_path = Path(model_path)
        if not self.model_path.is_file():
            raise DetectorError(
                f"SCRFD model {self.model_path} does not exist; point insightface_dir at a folder "
                "holding det_10g.onnx, or leave it unset to use the bundled YuNet"
            )
        try:
            self.model = backend.load(self.model_path, label=f"SCRFD ({self.model_path.name})")
        except BackendError as exc:
            raise DetectorError(
                f"SCRFD model {self.model_path} cannot be loaded ({exc}); replace the file with a "
                "complete det_10g.onnx or remove it to use the bundled YuNet"
            ) from exc
        count = len(self.model.outputs)
        if count not in _LAYOUTS:
            raise DetectorError(
                f"SCRFD model {self.model_path} has {count} outputs; agecast needs a model with "
                "five landmarks (9 or 15 outputs, e.g. det_10g.onnx or scrfd_10g_bnkps.onnx)"
            )
        self.strides, self.anchors = _LAYOUTS[count]
        self.input_name = self.model.inputs[0].name
        shape = self.model.inputs[0].shape
        fixed = len(shape) == 4 and isinstance(shape[2], int) and isinstance(shape[3], int)
        if fixed and shape[2] != shape[3]:
            raise DetectorError(
                f"SCRFD model {self.model_path} has a non-square input {shape}; "
                "export it with a square (or dynamic) input"
            )
        self.size = int(shape[2]) if fixed and isinstance(shape[2], int) else SCRFD_SIZE
        self.output_names = [spec.name for spec in self.model.outputs]
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_faces = max_faces
        self._centres: dict[tuple[int, str], torch.Tensor] = {}

    def _anchor_centres(self, stride: int, device: torch.device) -> torch.Tensor:
        """Anchor centres (x, y) in input pixels, anchors of one location consecutive, N×2."""
        key = (stride, str(device))
        if key not in self._centres:
            cells = self.size // stride
            rows, cols = torch.meshgrid(
                torch.arange(cells, device=device),
                torch.arange(cells, device=device),
                indexing="ij",
            )
            centres = torch.stack([cols, rows], dim=-1).reshape(-1, 2).float() * stride
            self._centres[key] = centres.repeat_interleave(self.anchors, dim=0)
        return self._centres[key]

    def decode(
        self, outputs: dict[str, torch.Tensor], min_score: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Boxes N×4, scores N and landmarks N×5×2 in input pixels of anchors ≥ ``min_score``."""
        levels = len(self.strides)
        all_boxes, all_scores, all_points = [], [], []
        for level, stride in enumerate(self.strides):
            scores = outputs[self.output_names[level]].reshape(-1)
            keep = torch.nonzero(scores >= min_score).squeeze(1)
            dist = outputs[self.output_names[level + levels]].reshape(-1, 4)[keep] * stride
            kps = outputs[self.output_names[level + 2 * levels]].reshape(-1, 5, 2)[keep] * stride
            centres = self._anchor_centres(stride, dist.device)
            if centres.shape[0] != scores.shape[0]:
                raise DetectorError(
                    f"SCRFD model {self.model_path}: stride {stride} gave {scores.shape[0]} "
                    f"scores for {centres.shape[0]} anchors at {self.size}×{self.size}; "
                    "the model's outputs are not in insightface's order"
                )
            centres = centres[keep]
            all_boxes.append(torch.cat([centres - dist[:, :2], centres + dist[:, 2:]], dim=1))
            all_scores.append(scores[keep])
            all_points.append(centres[:, None, :] + kps)
        return torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_points)

    def prepare(self, blob: torch.Tensor) -> torch.Tensor:
        return blob.sub_(127.5).div_(128.0)  # SCRFD's training normalisation
