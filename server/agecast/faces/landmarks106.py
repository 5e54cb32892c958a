"""106 face landmarks (insightface ``2d106det.onnx``), used when the user has a local insightface
model folder. Nothing is downloaded and no weights ship with agecast.

Model contract (insightface's ``Landmark`` wrapper for ``2d106det``):

* one input, N×3×S×S with a static square S (192 for ``2d106det``); the batch may be dynamic;
* the crop is centred on the detection box centre, scale ``S / (max(w, h) * 1.5)``, no rotation:
  frame point ``(x, y)`` goes to crop pixel ``scale · (x - cx, y - cy) + S / 2`` (OpenCV pixel
  centres, as everywhere in agecast), sampled bilinearly as ``cv2.warpAffine`` does;
* colour order RGB (insightface feeds its BGR frame through ``blobFromImage(swapRB=True)``; our
  frames are already RGB), pixel values 0–255 then ``(x - mean) / std`` where ``mean, std`` is
  ``0, 1`` when the graph normalises by itself (among its first 8 nodes one named ``Sub…`` or
  ``_minus…`` and one named ``Mul…`` or ``_mul…``, or ``bn_data`` among the first 3), else
  ``127.5, 128``;
* one output with 212 values per face: 106 (x, y) pairs in [-1, 1] of the crop, crop pixel
  ``(p + 1) · S / 2``.

Point layout (insightface's 2d106 mark-up, as downstream face-swap tools index it; not checked
here against real weights): 0–32 the face contour (jaw), 33–42 and 87–96 the eyes, 43–51 and
97–105 the brows; the rest are nose and mouth. Nothing marks the forehead, so a mask from
these points needs growing to cover the forehead (``agecast.compose.hull.hull_mask``).
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
import torch

from agecast.errors import BackendError, DetectorError
from agecast.faces.align import invert_affine, transform_points, warp_crop
from agecast.inference.base import Backend, Dim

log = logging.getLogger(__name__)

LANDMARKS106_NAME = "2d106det.onnx"
POINT_COUNT = 106
VALUES_PER_FACE = POINT_COUNT * 2
BOX_MARGIN = 1.5  # the crop side is 1.5 × the longer box side


def find_landmarks106(folder: Path) -> Path | None:
    """``2d106det.onnx`` in an insightface model folder (or one level below it), if any."""
    folder = Path(folder)
    for directory in (folder, *sorted(p for p in folder.glob("*") if p.is_dir())):
        path = directory / LANDMARKS106_NAME
        if path.is_file():
            return path
    return None


def graph_normalisation(model_path: Path) -> tuple[float, float]:
    """``(mean, std)`` for inputs of ``model_path``, by insightface's rule for landmark models.

    A graph whose first nodes subtract and multiply (MXNet exports: ``_minusscalar0``,
    ``_mulscalar0``, or a ``bn_data`` batch norm) normalises by itself and takes raw 0–255
    pixels: ``(0, 1)``; any other graph takes ``(x - 127.5) / 128``.
    """
    try:
        graph = onnx.load(str(model_path), load_external_data=False).graph
    except Exception as exc:  # protobuf raises its own untyped decode errors
        raise DetectorError(
            f"landmark model {model_path} is not a readable ONNX file ({exc}); replace it with "
            f"insightface's complete {LANDMARKS106_NAME}"
        ) from exc
    subtracts = multiplies = False
    for index, node in enumerate(graph.node[:8]):
        if node.name.startswith(("Sub", "_minus")):
            subtracts = True
        if node.name.startswith(("Mul", "_mul")):
            multiplies = True
        if index < 3 and node.name == "bn_data":
            subtracts = multiplies = True
    return (0.0, 1.0) if subtracts and multiplies else (127.5, 128.0)


def _static(dim: Dim) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


class Landmarks106:
    """106 landmarks per face box on any backend; crops and decode in torch.

    Not thread-safe in the sense that the loaded model is shared: use one per thread where the
    backend's models are not re-entrant.
    """

    name = "2d106det"

    def __init__(self, backend: Backend, model_path: Path, *, antialias: bool = False) -> None:
        self.model_path = Path(model_path)
        # insightface samples with plain bilinear cv2.warpAffine; antialias=True averages the
        # frame down first when the crop shrinks it ≥ 2× (about 3× the crop cost)
        self.antialias = antialias
        if not self.model_path.is_file():
            raise DetectorError(
                f"landmark model {self.model_path} does not exist; point insightface_dir at a "
                f"folder holding {LANDMARKS106_NAME}, or leave 106-point landmarks off"
            )
        try:
            self.model = backend.load(
                self.model_path, label=f"106 landmarks ({self.model_path.name})"
            )
        except BackendError as exc:
            raise DetectorError(
                f"landmark model {self.model_path} cannot be loaded ({exc}); replace the file "
                f"with insightface's complete {LANDMARKS106_NAME} or remove it"
            ) from exc
        try:
            self.size, self.batched = self._check_interface()
            self.input_mean, self.input_std = graph_normalisation(self.model_path)
        except DetectorError:
            self.model.close()
            raise
        self.input_name = self.model.inputs[0].name
        self.output_name = self.model.outputs[0].name
        log.info(
            "106 landmarks: %s on %s, %d×%d input, mean %.1f std %.1f, %s",
            self.model_path,
            backend.name,
            self.size,
            self.size,
            self.input_mean,
            self.input_std,
            "batched" if self.batched else "one face per run",
        )

    def _check_interface(self) -> tuple[int, bool]:
        """(input size, dynamic batch) of the loaded model, or DetectorError naming the file."""
        inputs, outputs = self.model.inputs, self.model.outputs
        want = (
            f"agecast needs insightface's {LANDMARKS106_NAME}: one N×3×S×S input with a static "
            f"square S (192) and one output of {VALUES_PER_FACE} values (106 points) per face"
        )
        if len(inputs) != 1 or len(outputs) != 1:
            raise DetectorError(
                f"landmark model {self.model_path} has {len(inputs)} inputs and {len(outputs)} "
                f"outputs; {want}"
            )
        shape = inputs[0].shape
        if len(shape) != 4:
            raise DetectorError(
                f"landmark model {self.model_path} has a {len(shape)}-D input {shape}; {want}"
            )
        channels, height, width = (_static(d) for d in shape[1:])
        if channels not in (None, 3) or height is None or width is None or height != width:
            raise DetectorError(
                f"landmark model {self.model_path} has input shape {shape}, not a square "
                f"static 3×S×S; {want}"
            )
        batch = _static(shape[0])
        if batch not in (None, 1):
            raise DetectorError(
                f"landmark model {self.model_path} has a fixed batch of {batch}; {want} "
                "(export it with batch 1 or a dynamic batch)"
            )
        out_shape = outputs[0].shape
        if len(out_shape) < 2:
            raise DetectorError(
                f"landmark model {self.model_path} has output shape {out_shape}; {want}"
            )
        per_face = [_static(d) for d in out_shape[1:]]
        if all(d is not None for d in per_face):
            values = 1
            for d in per_face:
                values *= d or 1
            if values != VALUES_PER_FACE:
                raise DetectorError(
                    f"landmark model {self.model_path} gives {values} values per face (output "
                    f"shape {out_shape}), not {VALUES_PER_FACE}; {want} (1k3d68.onnx, the 68-point "
                    "3-D model, is not supported)"
                )
        return height, batch is None

    def crop_affine(self, box: torch.Tensor) -> torch.Tensor:
        """Frame → crop 2×3 float64 affine for box (x1, y1, x2, y2), insightface's convention."""
        x1, y1, x2, y2 = box.detach().to("cpu", torch.float64).reshape(-1)[:4].tolist()
        side = max(x2 - x1, y2 - y1)
        if not side > 0:
            raise ValueError(f"face box {[x1, y1, x2, y2]} is empty; boxes are (x1, y1, x2, y2)")
        scale = self.size / (side * BOX_MARGIN)
        half = self.size / 2
        cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
        return torch.tensor(
            [[scale, 0.0, half - cx * scale], [0.0, scale, half - cy * scale]],
            dtype=torch.float64,
        )

    def _blob(self, image: torch.Tensor, affine: torch.Tensor) -> torch.Tensor:
        crop = warp_crop(image, affine, self.size, antialias=self.antialias)  # RGB, 0–1
        return crop.mul_(255.0).sub_(self.input_mean).div_(self.input_std)

    def _run(self, blob: torch.Tensor) -> torch.Tensor:
        """Model output for an N×3×S×S blob as N×106×2 float64 CPU values in [-1, 1]."""
        count = int(blob.shape[0])
        raw = self.model.run({self.input_name: blob})[self.output_name]
        raw = raw.detach().to("cpu", torch.float64).reshape(count, -1)
        if raw.shape[1] != VALUES_PER_FACE:
            raise DetectorError(
                f"landmark model {self.model_path} gave {raw.shape[1]} values per face, not "
                f"{VALUES_PER_FACE}; replace it with insightface's {LANDMARKS106_NAME}"
            )
        return raw.reshape(count, POINT_COUNT, 2)

    def landmarks(self, image: torch.Tensor, boxes: list[torch.Tensor]) -> list[torch.Tensor]:
        """106×2 float32 CPU landmarks in frame pixels for each box (x1, y1, x2, y2) of HWC
        uint8 RGB ``image`` (any device), in the order of ``boxes``."""
        if image.ndim != 3 or int(image.shape[2]) != 3:
            raise ValueError(f"image must be HWC RGB, got shape {tuple(image.shape)}")
        if not boxes:
            return []
        affines = [self.crop_affine(box) for box in boxes]
        blobs = [self._blob(image, affine) for affine in affines]
        if self.batched:
            raw = self._run(torch.stack(blobs))
        else:
            raw = torch.cat([self._run(blob.unsqueeze(0)) for blob in blobs])
        crop_points = (raw + 1.0) * (self.size / 2)
        return [
            transform_points(invert_affine(affine), crop_points[i]).float()
            for i, affine in enumerate(affines)
        ]

    def close(self) -> None:
        self.model.close()
