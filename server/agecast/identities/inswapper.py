"""insightface's ``inswapper_128`` as an identity package.

inswapper is not trained per person: it takes the target crop and a *source* vector that says
whose face to draw. insightface computes that vector from a photo on every call; we compute it
once, at import, and fix it in the manifest (the ``source`` input's ``value``), so the package
runs like any other identity. The recipe, as insightface's ``model_zoo`` code has it:

- ``target`` (1,3,128,128): the crop aligned to the ArcFace template shifted 8 px right
  (our ``arcface_128``), RGB, ``x / 255`` — i.e. our 0–1 RGB crops as they are. The output is
  the swapped crop, RGB 0–1.
- ``source`` (1,512): the ArcFace embedding of the photo's face, L2-normalised, times ``emap``
  (the model file's **last initializer**, 512×512), L2-normalised again.
- ArcFace (``w600k_r50.onnx``, (1,3,112,112) → (1,512)) reads the ``arcface_112`` crop in RGB
  as ``(x - 127.5) / 127.5`` on 0–255 — unless the graph normalises itself (insightface's test:
  a ``Sub`` and a ``Mul`` node among the first eight), then ``x`` on 0–255 as it is.

inswapper has no mask output; the pipeline makes one for mask-less identities.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import onnx
import torch
from numpy.typing import NDArray
from onnx import numpy_helper

from agecast.errors import BackendError, IdentityError
from agecast.faces.align import estimate_affine, template_points, warp_crop
from agecast.frames import FaceBox
from agecast.identities import making
from agecast.identities.making import Made
from agecast.identities.package import sha256_file
from agecast.inference.base import Backend

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class InswapperContract:
    """The swapper's tensors (target crop, source vector, output) and its emap."""

    target: str
    target_shape: list[int | str]
    source: str
    source_shape: list[int | str]
    output: str
    output_shape: list[int | str]
    emap: NDArray[np.float64]

    @property
    def size(self) -> int:
        size = self.target_shape[2]
        assert isinstance(size, int)  # checked by inspect_inswapper
        return size


def crop_template(size: int) -> str:
    """insightface's rule: a crop size that is a multiple of 112 takes the ArcFace template
    scaled, any other the 128-pixel variant (8 px right)."""
    return "arcface_112" if size % 112 == 0 else "arcface_128"


def inspect_inswapper(path: Path) -> InswapperContract:
    """Check ``path`` is an inswapper-style model: a square RGB target, a (1, D) source, one
    image output, and a last initializer (emap) of shape (E, D)."""
    model = making.load_onnx(path, "inswapper model")
    where = f"inswapper model {path}"
    found: dict[str, tuple[str, list[int | str]]] = {}
    for info in making.graph_inputs(model):
        dims = making.tensor_dims(info)
        if dims is None:
            raise IdentityError(f"{where}: input {info.name!r} has no declared shape")
        found[info.name] = dims
    images = [n for n, (_, d) in found.items() if len(d) == 4]
    vectors = [n for n, (_, d) in found.items() if len(d) == 2]
    if len(found) != 2 or len(images) != 1 or len(vectors) != 1:
        raise IdentityError(
            f"{where} has inputs {[(n, d) for n, (_, d) in found.items()]}; an inswapper takes "
            "a target crop (1,3,S,S) and a source vector (1,D)"
        )
    target, source = images[0], vectors[0]
    t_shape, s_shape = found[target][1], found[source][1]
    if t_shape[1] != 3 or not isinstance(t_shape[2], int) or t_shape[2] != t_shape[3]:
        raise IdentityError(f"{where}: target {target!r} is {t_shape}; expected (1,3,S,S) RGB")
    if not isinstance(s_shape[1], int):
        raise IdentityError(f"{where}: source {source!r} is {s_shape}; expected a fixed (1,D)")
    if any(dtype != "float32" for dtype, _ in found.values()):
        raise IdentityError(f"{where}: inputs must be float32 ({found})")
    if len(model.graph.output) != 1:
        raise IdentityError(f"{where} has {len(model.graph.output)} outputs; expected one crop")
    out = model.graph.output[0]
    out_dims = making.tensor_dims(out)
    if out_dims is None or len(out_dims[1]) != 4:
        raise IdentityError(f"{where}: output {out.name!r} is not an image (N,3,S,S)")
    if not model.graph.initializer:
        raise IdentityError(f"{where} has no initializers, so no emap: not an inswapper model")
    raw = numpy_helper.to_array(model.graph.initializer[-1])
    emap = raw.astype(np.float64)
    if emap.ndim != 2 or emap.shape[1] != s_shape[1] or not np.issubdtype(raw.dtype, np.floating):
        raise IdentityError(
            f"{where}: its last initializer {model.graph.initializer[-1].name!r} has shape "
            f"{list(emap.shape)}; the emap that turns an embedding into the source vector must "
            f"be (E, {s_shape[1]}) — is this inswapper_128.onnx?"
        )
    return InswapperContract(target, t_shape, source, s_shape, out.name, out_dims[1], emap)


def arcface_normalisation(model: onnx.ModelProto) -> tuple[float, float]:
    """(mean, std) on 0–255 pixels for an ArcFace graph, by insightface's rule: mxnet exports
    start with their own Sub and Mul nodes and take raw pixels; the others need 127.5 / 127.5."""
    names = [node.name for node in model.graph.node[:8]]
    subtracts = any(n.startswith(("Sub", "_minus")) for n in names)
    multiplies = any(n.startswith(("Mul", "_mul")) for n in names)
    return (0.0, 1.0) if subtracts and multiplies else (127.5, 127.5)


def read_rgb(path: Path) -> torch.Tensor:
    """An image file as an HWC uint8 RGB tensor."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            rgb = np.asarray(image.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, UnidentifiedImageError) as exc:
        raise IdentityError(f"cannot read face image {path}: {exc}") from exc
    return torch.from_numpy(rgb)


def find_face(
    image: torch.Tensor, path: Path, backend: Backend, insightface_dir: Path | None
) -> FaceBox:
    """The largest face in ``image`` (the photo at ``path``)."""
    from agecast.faces.detector import make_detector

    detector = make_detector(backend, insightface_dir=insightface_dir)
    try:
        faces = detector.detect(image)
    finally:
        detector.close()
    if not faces:
        raise IdentityError(
            f"no face found in {path}: use a well-lit photo with one clear, roughly frontal "
            "face, at least ~80 pixels across"
        )
    best = max(faces, key=lambda f: f.area)
    if len(faces) > 1:
        log.warning("%d faces in %s: using the largest (score %.2f)", len(faces), path, best.score)
    return best


def arcface_embedding(
    arcface: Path, image: torch.Tensor, face: FaceBox, backend: Backend, width: int
) -> NDArray[np.float64]:
    """The ArcFace embedding (E,) of ``face`` in ``image``; ``width`` is the E the emap needs."""
    proto = making.load_onnx(arcface, "ArcFace model")
    where = f"ArcFace model {arcface}"
    inputs = making.graph_inputs(proto)
    dims = making.tensor_dims(inputs[0]) if len(inputs) == 1 else None
    if dims is None or len(dims[1]) != 4 or dims[1][1] != 3:
        shapes = [making.tensor_dims(i) for i in inputs]
        raise IdentityError(f"{where}: inputs {shapes}; expected one (1,3,112,112) RGB crop")
    size = dims[1][2]
    if not isinstance(size, int) or size != dims[1][3]:
        raise IdentityError(f"{where}: input {dims[1]} is not a fixed square crop")
    mean, std = arcface_normalisation(proto)
    template = crop_template(size)
    affine = estimate_affine(face.landmarks5, template_points(template, size))
    crop = warp_crop(image, affine, size)  # 3×S×S RGB 0–1
    blob = ((crop * 255.0 - mean) / std).unsqueeze(0).float().contiguous()
    try:
        model = backend.load(arcface, label="ArcFace")
    except BackendError as exc:
        raise IdentityError(f"{where}: {exc}") from exc
    try:
        out = model.run({model.inputs[0].name: blob})[model.outputs[0].name]
    except BackendError as exc:
        raise IdentityError(f"{where}: {exc}") from exc
    finally:
        model.close()
    if out.ndim != 2 or out.shape[0] != 1 or out.shape[1] != width:
        raise IdentityError(
            f"{where}: output shape {list(out.shape)}; the inswapper's emap needs an embedding "
            f"of shape (1, {width}) — is this the recognition model (w600k_r50.onnx)?"
        )
    return out[0].double().cpu().numpy()


def source_latent(embedding: NDArray[np.float64], emap: NDArray[np.float64]) -> NDArray[np.float64]:
    """The inswapper's source vector: normalise(normalise(embedding) @ emap)."""
    norm = float(np.linalg.norm(embedding))
    if not np.isfinite(norm) or norm == 0.0:
        raise IdentityError("the ArcFace embedding is zero or not finite; check the ArcFace model")
    latent = (embedding / norm) @ emap
    return latent / float(np.linalg.norm(latent))


def _model_decl(model: Path, contract: InswapperContract, latent: np.ndarray) -> dict[str, Any]:
    """The manifest's model: the file, the target face in, the fixed source vector, the face out."""
    size = contract.size
    return {
        "file": "model.onnx",
        "sha256": sha256_file(model),
        "inputs": [
            {"name": contract.target, "shape": contract.target_shape, "role": "face"},
            {
                "name": contract.source,
                "shape": contract.source_shape,
                "role": "embedding",
                "value": [float(v) for v in latent.astype(np.float32)],
            },
        ],
        "outputs": [
            {
                "name": contract.output,
                "shape": making.known_dims(contract.output_shape, {1: 3, 2: size, 3: size}),
                "role": "face",
            }
        ],
    }


def import_inswapper(
    model: Path,
    arcface: Path,
    face_image: Path,
    out: Path,
    *,
    insightface_dir: Path | None = None,
    **made: Unpack[Made],
) -> Path:
    """Wrap inswapper ``model`` as an identity package in ``out`` that swaps in the face in
    ``face_image`` (found with agecast's detector, embedded with ``arcface``); returns ``out``.

    The model file is copied unchanged; the source vector is fixed in the manifest. Like every
    likeness it loads only with the actor's ``consent`` recorded (``purpose`` demo or tooling:
    a test face that is no one's likeness). Without ``display_name`` the crew sees the actor's
    name.
    """
    contract = inspect_inswapper(model)
    backend = made.get("backend")
    if backend is None:  # the face and its vector are found on one whatever is asked
        from agecast.inference.registry import get_backend

        backend = made["backend"] = get_backend("onnxruntime")
    image = read_rgb(face_image)
    face = find_face(image, face_image, backend, insightface_dir)
    embedding = arcface_embedding(arcface, image, face, backend, contract.emap.shape[0])
    latent = source_latent(embedding, contract.emap)
    actor = made.get("actor")
    name = made.get("display_name") or actor or face_image.stem.replace("_", " ").strip()
    name = name or face_image.name
    actor = actor or name
    consent = made.get("consent")
    size = contract.size
    fields: dict[str, Any] = {
        "schema": 1,
        "id": made.get("id") or making.slug(f"inswapper-{face_image.stem}", "inswapper"),
        "display_name": name,
        "actor": actor,
        "purpose": made.get("purpose", "likeness"),
        "family": "inswapper",
        "model": _model_decl(model, contract, latent),
        "crop": {"size": size, "template": crop_template(size)},
        "normalisation": {"layout": "NCHW", "channels": "RGB"},
        "provenance": {
            "trained_by": "insightface inswapper (imported)",
            "command": made.get("command", ""),
            "created": making.now_iso(),
            "source_footage": f"{face_image.name} (sha256 {sha256_file(face_image)})",
            "notes": (
                f"source vector from {arcface.name} (sha256 {sha256_file(arcface)}); face "
                f"score {face.score:.2f}, box {[round(float(v)) for v in face.box]}"
            ),
        },
        "consent": consent.model_dump(mode="json") if consent is not None else None,
    }
    manifest = making.make_package(fields, model, out, made)
    log.info("imported %s as identity %s in %s", model, manifest.id, out)
    return out
