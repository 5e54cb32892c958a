"""DeepFaceLive ``.dfm`` models in and out of identity packages.

A ``.dfm`` file is an ONNX model with DeepFaceLab's tensor names: DeepFaceLab's exporter writes
it, DeepFaceLive runs it. The contract, as both projects' code has it:

- ``in_face:0`` (N,H,W,3) float32: the aligned crop, **BGR**, 0–1, square.
- ``morph_value:0`` (1,) float32, only in AMP models: how far the swap goes toward the trained
  face, 0–1. DeepFaceLive's morph slider starts at **0.75**, so that is our default too.
- Outputs, in this order (DeepFaceLive unpacks them by position), all NHWC, 0–1:
  ``out_face_mask:0`` (N,H,W,1) the input (dst) face's mask as the model learned it,
  ``out_celeb_face:0`` (N,H,W,3) the swapped face in BGR,
  ``out_celeb_face_mask:0`` (N,H,W,1) the swapped face's own mask.

Which mask pastes back: agecast pastes an identity's face through one mask, and an imported DFM
declares ``out_celeb_face_mask:0`` as that mask. It says where the *generated* face is drawn, so
where the celeb's jaw or hairline differs from the actor's, no half-drawn pixels are pasted.
``out_face_mask:0`` stays in the contract with role "other". DeepFaceLive's default merge
multiplies the two, which also cuts where the actor's face is occluded; agecast's paste-back
feathers the mask edge itself.

The crop: DeepFaceLab trains a model on one face type; ``whole_face`` is its default and what
DeepFaceLive's aligner approximates out of the box, so imports use the ``dfl_whole_face``
template unless told otherwise (``dfl_full_face``, ``dfl_head`` in ``faces/align.py``).

:func:`write_dfm` goes the other way: it wraps one of our packages (NCHW, RGB, mean/std
normalisation, face + mask outputs, maybe an age input) in a graph with the DFM names, so
DeepFaceLive can run it. Its ``morph_value:0`` drives our age input (0 = the youngest trained
age, 1 = the oldest), and the package's crop template, age range and id travel in the file's
ONNX metadata (key ``agecast``), so importing the file back restores the continuous age.

What every import shares (naming, consent, checking and writing the package) is in
:mod:`agecast.identities.making`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from agecast.errors import IdentityError
from agecast.identities.making import (
    Dims,
    Made,
    graph_inputs,
    known_dims,
    load_onnx,
    make_package,
    now_iso,
    slug,
    tensor_dims,
)
from agecast.identities.package import (
    consent_problem,
    read_package,
    sha256_file,
    verify_files,
)
from agecast.manifest import (
    Manifest,
    TensorDecl,
)

log = logging.getLogger(__name__)

FACE_IN = "in_face:0"
MORPH_IN = "morph_value:0"
FACE_MASK_OUT = "out_face_mask:0"
CELEB_FACE_OUT = "out_celeb_face:0"
CELEB_MASK_OUT = "out_celeb_face_mask:0"
# DeepFaceLive reads the outputs by position: this order is part of the format.
DFM_OUTPUTS = (FACE_MASK_OUT, CELEB_FACE_OUT, CELEB_MASK_OUT)
DEFAULT_MORPH = 0.75  # DeepFaceLive's morph factor until the operator moves it
DEFAULT_TEMPLATE = "dfl_whole_face"
METADATA_KEY = "agecast"


# --- reading a DFM --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DfmContract:
    """What a valid DFM file declares: tensors by name, its crop size, agecast metadata."""

    size: int
    inputs: dict[str, Dims]
    outputs: dict[str, Dims]
    metadata: dict[str, Any]

    @property
    def has_morph(self) -> bool:
        return MORPH_IN in self.inputs


def inspect_dfm(path: Path) -> DfmContract:
    """Check that ``path`` is a DFM model DeepFaceLive could run; errors say what is wrong."""
    model = load_onnx(path, "DFM file")
    where = f"DFM file {path}"

    def declared(info: onnx.ValueInfoProto) -> Dims:
        found = tensor_dims(info)
        if found is None:
            raise IdentityError(f"{where}: tensor {info.name!r} has no declared shape")
        dtype, dims = found
        if dtype != "float32":
            raise IdentityError(
                f"{where}: tensor {info.name!r} is {dtype}; DFM tensors are float32"
            )
        return dims

    inputs = {i.name: i for i in graph_inputs(model)}
    if FACE_IN not in inputs:
        raise IdentityError(
            f"{where} has no input {FACE_IN!r} (it has {sorted(inputs)}): a DFM takes the "
            "aligned face as in_face:0 — is this a DeepFaceLab/DeepFaceLive model?"
        )
    extra = sorted(set(inputs) - {FACE_IN, MORPH_IN})
    if extra:
        raise IdentityError(
            f"{where} has inputs {extra} besides {FACE_IN} and {MORPH_IN}; DeepFaceLive runs a "
            "DFM with those two only"
        )
    face = declared(inputs[FACE_IN])
    if len(face) != 4 or face[3] != 3:
        raise IdentityError(
            f"{where}: input {FACE_IN} has shape {face}; a DFM takes NHWC crops (N, H, W, 3)"
        )
    height, width = face[1], face[2]
    if not (isinstance(height, int) and isinstance(width, int) and height == width):
        raise IdentityError(
            f"{where}: input {FACE_IN} is {height}×{width}; agecast needs a fixed square crop"
        )
    shapes = {FACE_IN: known_dims(face, {})}
    if MORPH_IN in inputs:
        morph = declared(inputs[MORPH_IN])
        if len(morph) > 2 or any(d != 1 for d in morph):
            raise IdentityError(
                f"{where}: input {MORPH_IN} has shape {morph}; it should hold one number (1,)"
            )
        shapes[MORPH_IN] = known_dims(morph, {})
    outputs = {o.name: o for o in model.graph.output}
    missing = [name for name in DFM_OUTPUTS if name not in outputs]
    if missing:
        raise IdentityError(
            f"{where} lacks output(s) {missing} (it has {sorted(outputs)}); a DFM outputs "
            f"{', '.join(DFM_OUTPUTS)}"
        )
    out_shapes: dict[str, Dims] = {}
    for name, channels in zip(DFM_OUTPUTS, (1, 3, 1), strict=True):
        dims = declared(outputs[name])
        if len(dims) != 4 or dims[3] != channels:
            raise IdentityError(
                f"{where}: output {name} has shape {dims}; expected NHWC (N, H, W, {channels})"
            )
        if any(isinstance(d, int) and d > 0 and d != height for d in dims[1:3]):
            raise IdentityError(
                f"{where}: output {name} is {dims[1]}×{dims[2]} but the input is "
                f"{height}×{width}; DFM outputs match the input crop"
            )
        out_shapes[name] = known_dims(dims, {1: height, 2: height, 3: channels})
    if [o.name for o in model.graph.output][:3] != list(DFM_OUTPUTS):
        log.warning("%s: outputs are not in DeepFaceLive's order %s", where, DFM_OUTPUTS)
    return DfmContract(height, shapes, out_shapes, _metadata(model))


def _metadata(model: onnx.ModelProto) -> dict[str, Any]:
    for prop in model.metadata_props:
        if prop.key == METADATA_KEY:
            try:
                data = json.loads(prop.value)
            except json.JSONDecodeError:
                log.warning("ignoring unreadable %r metadata in a DFM file", METADATA_KEY)
                return {}
            return data if isinstance(data, dict) else {}
    return {}


def dfm_names(dfm: Path) -> tuple[str, str, str]:
    """Default (id, display name, actor) for a DFM file: from the agecast metadata of a file
    :func:`write_dfm` wrote, else from the file name (``Jane_Doe.dfm`` → ``Jane Doe``)."""
    return _names(dfm, inspect_dfm(dfm).metadata)


def _names(dfm: Path, meta: dict[str, Any]) -> tuple[str, str, str]:
    name = str(meta.get("display_name") or dfm.stem.replace("_", " ").strip() or dfm.name)
    return slug(str(meta.get("id") or dfm.stem), "dfm"), name, str(meta.get("actor") or name)


# --- DFM → package --------------------------------------------------------------------------


def import_dfm(
    dfm: Path,
    out: Path,
    *,
    template: str | None = None,
    morph: float | None = None,
    target_age: int | None = None,
    **made: Unpack[Made],
) -> Path:
    """Wrap DFM file ``dfm`` as an identity package in folder ``out`` (the file is copied as
    ``model.onnx`` unchanged) and return ``out``.

    ``morph`` fixes ``morph_value:0`` (default 0.75, DeepFaceLive's). A DFM written by
    :func:`write_dfm` from an age-conditioned package keeps its continuous age instead (its
    ``morph_value:0`` is the age), unless ``morph`` is given. ``template`` defaults to the one
    in the file's agecast metadata, else ``dfl_whole_face``. With ``backend`` the model is
    loaded and checked against the manifest before anything is written (:class:`Made`: the
    options every import takes).

    The package is a likeness unless ``purpose`` says it is a demo or tooling model (a test
    model with no real person's face). Consent is the operator's to record (``consent``); a
    consent found in the file's metadata is not trusted. Without one a likeness is written but
    will not load until the actor's consent is added. Without ``display_name`` the crew sees
    the actor's name.
    """
    contract = inspect_dfm(dfm)
    meta = contract.metadata
    default_id, default_name, default_actor = _names(dfm, meta)
    actor = made.get("actor")
    name = made.get("display_name") or actor or default_name
    actor = actor or default_actor
    if morph is not None and not 0.0 <= morph <= 1.0:
        raise IdentityError(f"--morph {morph}: the morph factor is 0–1 (DeepFaceLive's range)")
    consent = made.get("consent")
    age_range = meta.get("age_range")
    continuous_age = contract.has_morph and morph is None and isinstance(age_range, list)
    inputs, morph_note = _dfm_inputs(contract, morph, age_range if continuous_age else None)
    roles = {FACE_MASK_OUT: "other", CELEB_FACE_OUT: "face", CELEB_MASK_OUT: "mask"}
    fields: dict[str, Any] = {
        "schema": 1,
        "id": made.get("id") or default_id,
        "display_name": name,
        "actor": actor,
        "purpose": made.get("purpose", "likeness"),
        "target_age": target_age if target_age is not None else meta.get("target_age"),
        "age_range": age_range if continuous_age else None,
        "family": "dfm",
        "model": {
            "file": "model.onnx",
            "sha256": sha256_file(dfm),
            "inputs": inputs,
            "outputs": [
                {"name": n, "shape": contract.outputs[n], "role": roles[n]} for n in DFM_OUTPUTS
            ],
        },
        "crop": {
            "size": contract.size,
            "template": template or meta.get("template") or DEFAULT_TEMPLATE,
        },
        "normalisation": {"layout": "NHWC", "channels": "BGR"},
        "provenance": {
            "trained_by": "DeepFaceLab (imported DFM)",
            "command": made.get("command", ""),
            "created": now_iso(),
            "notes": f"imported from {dfm.name}; {morph_note}; mask = {CELEB_MASK_OUT}",
        },
        "consent": consent.model_dump(mode="json") if consent is not None else None,
    }
    if not continuous_age:
        fields["target_age"] = target_age  # a morph factor is not an age
    manifest = make_package(fields, dfm, out, made)
    log.info("imported %s as identity %s in %s (%s)", dfm, manifest.id, out, morph_note)
    return out


def _dfm_inputs(
    contract: DfmContract, morph: float | None, age_range: object
) -> tuple[list[dict[str, Any]], str]:
    """The manifest's inputs for a DFM and a note on its morph input: the age over
    ``age_range`` (an agecast-written DFM), else a morph factor fixed at ``morph``."""
    inputs: list[dict[str, Any]] = [
        {"name": FACE_IN, "shape": contract.inputs[FACE_IN], "role": "face"}
    ]
    if not contract.has_morph:
        return inputs, "no morph input"
    shape = contract.inputs[MORPH_IN]
    if age_range is not None:
        inputs.append({"name": MORPH_IN, "shape": shape, "role": "age"})
        return inputs, f"{MORPH_IN} is the age over {age_range} (agecast-written DFM)"
    value = DEFAULT_MORPH if morph is None else morph
    inputs.append({"name": MORPH_IN, "shape": shape, "role": "morph", "value": [value]})
    return inputs, f"{MORPH_IN} fixed at {value:g}"


# --- package → DFM --------------------------------------------------------------------------

_INNER = "agecast/"  # prefix for every name of the wrapped model, so no name can clash


class _Builder:
    """Nodes and constants around the wrapped model, with unique ``dfm/…`` names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.weights: list[onnx.TensorProto] = []
        self._count = 0

    def _name(self, hint: str) -> str:
        self._count += 1
        return f"dfm/{hint}_{self._count}"

    def const(self, value: np.ndarray, hint: str) -> str:
        name = self._name(hint)
        self.weights.append(numpy_helper.from_array(value, name))
        return name

    def op(
        self, kind: str, inputs: list[str], hint: str, out: str | None = None, **attrs: Any
    ) -> str:
        name = out or self._name(hint)
        self.nodes.append(helper.make_node(kind, inputs, [name], name=self._name(kind), **attrs))
        return name

    def cast(self, x: str, dtype: str) -> str:
        """``x`` as ``dtype`` (a float32 tensor going into the model)."""
        if dtype == "float32":
            return x
        to = {"float16": TensorProto.FLOAT16, "uint8": TensorProto.UINT8}[dtype]
        return self.op("Cast", [x], "cast", to=to)

    def to_float(self, x: str, dtype: str) -> str:
        """``x`` (a model output of ``dtype``) as float32."""
        return x if dtype == "float32" else self.op("Cast", [x], "float", to=TensorProto.FLOAT)

    def clip01(self, x: str) -> str:
        # Max/Min rather than Clip: the same semantics in every opset a model may import
        low = self.op("Max", [x, self.const(np.array(0.0, np.float32), "zero")], "floor")
        return self.op("Min", [low, self.const(np.array(1.0, np.float32), "one")], "clip")

    def flip_channels(self, x: str) -> str:
        """RGB ↔ BGR on axis 1 of an NCHW tensor."""
        order = self.const(np.array([2, 1, 0], np.int64), "bgr_rgb")
        return self.op("Gather", [x, order], "flipped", axis=1)


def _per_channel(values: Sequence[float]) -> np.ndarray:
    return np.asarray(values, np.float32).reshape(1, 3, 1, 1)


def _batch_dim(decl: TensorDecl) -> int | str:
    first = decl.shape[0]
    return first if isinstance(first, int) and first > 0 else "N"


def write_dfm(package_dir: Path, out_file: Path) -> Path:
    """Write the identity package in ``package_dir`` as a DeepFaceLive ``.dfm`` at ``out_file``.

    The file runs our model inside a graph that takes DeepFaceLive's BGR NHWC 0–1 crop, converts
    it to the package's layout, channel order and normalisation, and returns the three DFM
    outputs (a package without a mask gives an all-ones mask for both). An age-conditioned
    package gets ``morph_value:0``: 0–1 over its age range, i.e. the same number our runtime
    feeds the age input. Inputs fixed in the manifest are baked in; other extra inputs get
    zeros, as the runtime feeds them. DeepFaceLive does not check consent: a likeness exported
    without consent in force is logged.
    """
    package = read_package(package_dir)
    verify_files(package)
    m = package.manifest
    problem = consent_problem(package)
    if problem is not None:
        log.warning("exporting %s as a DFM, which no one checks for consent: %s", m.id, problem)
    inner = load_onnx(package.model_path, f"identity {m.id}: model")
    opset = next((o.version for o in inner.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 8:
        raise IdentityError(
            f"{package.model_path}: ONNX opset {opset}; write_dfm needs opset 8 or newer — "
            "re-export the model"
        )
    wrapped, uses_morph = _wrap(onnx.compose.add_prefix(inner, _INNER), m)
    meta = {
        "id": m.id,
        "display_name": m.display_name,
        "actor": m.actor,
        "purpose": m.purpose,
        "template": m.crop.template,
        "target_age": m.target_age,
        "age_range": list(m.age_control[:2]) if uses_morph and m.age_control else None,
        "source_sha256": m.model.sha256,
    }
    helper.set_model_props(wrapped, {METADATA_KEY: json.dumps(meta)})
    try:
        onnx.checker.check_model(wrapped)
    except onnx.checker.ValidationError as exc:
        raise IdentityError(
            f"{package.model_path}: the wrapped DFM graph is invalid: {exc}"
        ) from exc
    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(out_file.name + ".partial")
    partial.write_bytes(wrapped.SerializeToString())
    partial.replace(out_file)
    log.info("wrote DFM %s from identity %s (%d px)", out_file, m.id, m.crop.size)
    return out_file


def _wrap(inner: onnx.ModelProto, m: Manifest) -> tuple[onnx.ModelProto, bool]:
    decl = m.model
    norm = m.normalisation
    size = m.crop.size
    face_in = decl.tensor("inputs", "face")
    face_out = decl.tensor("outputs", "face")
    assert face_in is not None and face_out is not None  # the manifest schema guarantees both
    mask_out = decl.tensor("outputs", "mask")
    batch_dim = _batch_dim(face_in)
    b = _Builder()

    # in_face:0 (N,S,S,3) BGR 0–1 → the package's face input
    x = b.op("Transpose", [FACE_IN], "nchw", perm=[0, 3, 1, 2])
    if norm.channels == "RGB":
        x = b.flip_channels(x)
    x = b.op("Sub", [x, b.const(_per_channel(norm.mean), "mean")], "centred")
    x = b.op("Div", [x, b.const(_per_channel(norm.std), "std")], "scaled")
    if norm.layout == "NHWC":
        x = b.op("Transpose", [x], "nhwc", perm=[0, 2, 3, 1])
    b.op("Identity", [b.cast(x, face_in.dtype)], "face", out=_INNER + face_in.name)

    shape = b.op("Shape", [FACE_IN], "in_shape")
    batch = b.op("Gather", [shape, b.const(np.array([0], np.int64), "first")], "batch", axis=0)
    uses_morph = False
    for extra in decl.inputs:
        if extra is face_in:
            continue
        feeds_morph = extra.value is None and extra.role in ("age", "morph")
        uses_morph = uses_morph or feeds_morph
        _extra_input(b, extra, batch, feeds_morph)

    # the package's outputs → out_celeb_face:0, out_celeb_face_mask:0, out_face_mask:0
    split = len(b.nodes)  # the nodes above feed the wrapped model, those below read it
    y = b.to_float(_INNER + face_out.name, face_out.dtype)
    if norm.layout == "NHWC":
        y = b.op("Transpose", [y], "out_nchw", perm=[0, 3, 1, 2])
    y = b.op("Mul", [y, b.const(_per_channel(norm.output_std or norm.std), "ostd")], "ostd")
    y = b.op("Add", [y, b.const(_per_channel(norm.output_mean or norm.mean), "omean")], "omean")
    if norm.channels == "RGB":
        y = b.flip_channels(y)
    y = b.clip01(y)
    b.op("Transpose", [y], "celeb", out=CELEB_FACE_OUT, perm=[0, 2, 3, 1])
    mask = _mask_nhwc(b, mask_out, size, batch)
    b.op("Identity", [mask], "celeb_mask", out=CELEB_MASK_OUT)
    b.op("Identity", [mask], "face_mask", out=FACE_MASK_OUT)

    pre, post = b.nodes[:split], b.nodes[split:]
    inputs = [helper.make_tensor_value_info(FACE_IN, TensorProto.FLOAT, [batch_dim, size, size, 3])]
    if uses_morph:
        inputs.append(helper.make_tensor_value_info(MORPH_IN, TensorProto.FLOAT, [1]))
    weights = {t.name for t in inner.graph.initializer}
    inputs += [i for i in inner.graph.input if i.name in weights]  # old IR: weights as inputs
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, [batch_dim, size, size, channels])
        for name, channels in zip(DFM_OUTPUTS, (1, 3, 1), strict=True)
    ]
    graph = helper.make_graph(
        [*pre, *inner.graph.node, *post],
        "agecast_dfm",
        inputs,
        outputs,
        [*inner.graph.initializer, *b.weights],
        value_info=list(inner.graph.value_info),
    )
    model = helper.make_model(graph, opset_imports=list(inner.opset_import))
    model.ir_version = inner.ir_version
    model.producer_name = "agecast"
    model.functions.extend(inner.functions)
    return model, uses_morph


def _extra_input(b: _Builder, decl: TensorDecl, batch: str, feeds_morph: bool) -> None:
    """Feed an input beside the face: morph_value:0 (age/morph), its fixed value, or zeros,
    broadcast over the batch like the runtime does."""
    tail = [d if isinstance(d, int) and d > 0 else 1 for d in decl.shape[1:]]
    if feeds_morph:
        ones = np.array([1] * max(1, len(decl.shape)), np.int64)
        src = b.op("Reshape", [MORPH_IN, b.const(ones, "morph_shape")], "morph")
    elif decl.value is not None:
        src = b.const(np.asarray(decl.value, np.float32).reshape(1, *tail), "value")
    else:
        src = b.const(np.zeros((1, *tail), np.float32), "zeros")
    if not decl.shape:
        src = b.op("Reshape", [src, b.const(np.zeros(0, np.int64), "scalar")], "scalar")
    else:
        first = decl.shape[0]
        if isinstance(first, int) and first > 0:
            target = b.const(np.array([first, *tail], np.int64), "target")
        else:
            target = b.op("Concat", [batch, b.const(np.array(tail, np.int64), "tail")], "t", axis=0)
        src = b.op("Expand", [src, target], "expanded")
    b.op("Identity", [b.cast(src, decl.dtype)], "extra", out=_INNER + decl.name)


def _mask_nhwc(b: _Builder, decl: TensorDecl | None, size: int, batch: str) -> str:
    if decl is None:  # no mask: the whole crop
        ones = b.const(np.ones((1, size, size, 1), np.float32), "ones")
        target = b.op(
            "Concat", [batch, b.const(np.array([size, size, 1], np.int64), "hw1")], "t", axis=0
        )
        return b.op("Expand", [ones, target], "mask")
    mask = b.to_float(_INNER + decl.name, decl.dtype)
    shape = decl.shape
    if len(shape) == 3:
        dims = np.array([0, size, size, 1], np.int64)  # 0 keeps the batch axis
        mask = b.op("Reshape", [mask, b.const(dims, "nhw1")], "mask_nhwc")
    elif not (len(shape) == 4 and shape[-1] == 1 and shape[1] != 1):
        mask = b.op("Transpose", [mask], "mask_nhwc", perm=[0, 2, 3, 1])
    return b.clip01(mask)
