"""Making an identity package from another project's model, as every import does it: the
options each import takes (:class:`Made`), the package's name and its consent, the ONNX file's
declared tensors, and the checked manifest written beside the copied model
(:func:`make_package`). :mod:`agecast.identities.dfm` and :mod:`agecast.identities.inswapper`
are the imports."""

from __future__ import annotations

import json
import logging
import re
import shutil
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypedDict

import onnx
from google.protobuf.message import DecodeError
from onnx import TensorProto
from pydantic import ValidationError

from agecast.errors import BackendError, IdentityError, explain_fields
from agecast.identities.package import IdentityPackage, check_contract
from agecast.inference.base import Backend
from agecast.manifest import MANIFEST_NAME, ConsentRecord, Manifest, Purpose

log = logging.getLogger(__name__)

Dims = list[int | str]

_DTYPES: dict[int, str] = {
    TensorProto.FLOAT: "float32",
    TensorProto.FLOAT16: "float16",
    TensorProto.UINT8: "uint8",
}


class Made(TypedDict, total=False):
    """What every import is told besides its model: the identity's id, actor and display name
    (each has a default from the files), the actor's consent, the purpose (likeness unless a
    demo or tooling model), the backend to check the model on, whether to replace a package,
    and the command line that made it (kept in the manifest)."""

    id: str | None
    actor: str | None
    display_name: str | None
    consent: ConsentRecord | None
    purpose: Purpose
    backend: Backend | None
    overwrite: bool
    command: str


def make_package(fields: dict[str, Any], model_file: Path, out: Path, made: Made) -> Manifest:
    """Check manifest ``fields`` for ``model_file`` (and its consent's actor), load the model on
    ``made``'s backend where one is given and check it against them, then write the package."""
    manifest = build_manifest(fields, model_file)
    if manifest.consent is not None and manifest.consent.actor != manifest.actor:
        raise IdentityError(
            f"consent is {manifest.consent.actor!r}'s but the identity's actor is "
            f"{manifest.actor!r}: a consent record covers only the actor it names"
        )
    backend = made.get("backend")
    if backend is not None:
        check_loads(manifest, model_file, backend, out)
    write_package(out, model_file, manifest, overwrite=made.get("overwrite", False))
    return manifest


def slug(text: str, fallback: str = "identity") -> str:
    """An identity id from a file name: lowercase letters, digits, '.', '_' and '-'."""
    cleaned = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")[:64].strip("-._")
    return cleaned or fallback


def consent_record(
    actor: str,
    *,
    granted_by: str | None = None,
    production: str | None = None,
    purposes: Sequence[str] = (),
    valid_from: str | None = None,
    valid_until: str | None = None,
    reference: str | None = None,
    consent_file: Path | None = None,
) -> ConsentRecord | None:
    """The actor's consent from a JSON file or from fields (None when neither is given).

    A file without ``actor`` is taken to be about ``actor``; a record naming someone else is
    refused here, because it could never let this identity load.
    """
    fields = {
        "granted_by": granted_by,
        "production": production,
        "purposes": list(purposes) or None,
        "valid_from": valid_from,
        "valid_until": valid_until,
        "reference": reference,
    }
    given = {k: v for k, v in fields.items() if v is not None}
    if consent_file is not None:
        if given:
            raise IdentityError(
                f"consent given both as {consent_file} and as --consent-* options "
                f"({', '.join(sorted(given))}); use one"
            )
        try:
            raw = json.loads(consent_file.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise IdentityError(f"cannot read consent file {consent_file}: {exc}") from exc
        if not isinstance(raw, dict):
            raise IdentityError(f"{consent_file}: a consent record is a JSON object")
        raw.setdefault("actor", actor)
        where = str(consent_file)
    elif given:
        raw = {"actor": actor, **given}
        where = "--consent-* options"
    else:
        return None
    try:
        record = ConsentRecord.model_validate(raw)
    except ValidationError as exc:
        raise IdentityError(f"consent ({where}): {explain_fields(exc)}") from exc
    if record.actor != actor:
        raise IdentityError(
            f"consent ({where}) is {record.actor!r}'s but the identity's actor is {actor!r}: "
            "a consent record covers only the actor it names — pass --actor or the right record"
        )
    return record


def build_manifest(fields: dict[str, Any], source: Path) -> Manifest:
    """Validate manifest ``fields`` for a package made from ``source``; errors name the field."""
    try:
        return Manifest.model_validate(fields)
    except ValidationError as exc:
        problems = explain_fields(exc)
        raise IdentityError(f"cannot make an identity from {source}: {problems}") from exc


def write_package(out: Path, model_file: Path, manifest: Manifest, *, overwrite: bool) -> Path:
    """Copy ``model_file`` into ``out`` as the manifest's model file and write the manifest.

    A folder that already holds a package is replaced only with ``overwrite``.
    """
    target = out / manifest.model.file
    if out.exists() and not out.is_dir():
        raise IdentityError(f"{out} is a file; pass a folder for the identity package")
    if ((out / MANIFEST_NAME).exists() or target.exists()) and not overwrite:
        raise IdentityError(
            f"{out} already holds an identity package; pass --force to replace it or "
            "choose another --out"
        )
    out.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(target.name + ".partial")
    shutil.copyfile(model_file, partial)
    partial.replace(target)
    body = manifest.model_dump(mode="json", by_alias=True)
    (out / MANIFEST_NAME).write_text(json.dumps(body, indent=2, ensure_ascii=False) + "\n")
    return out


def check_loads(manifest: Manifest, model_file: Path, backend: Backend, out: Path) -> None:
    """Load ``model_file`` on ``backend`` and check it against ``manifest`` before writing."""
    try:
        model = backend.load(model_file, label=f"identity {manifest.id}")
    except BackendError as exc:
        raise IdentityError(f"{model_file}: {exc}") from exc
    try:
        check_contract(IdentityPackage(out, manifest), model)
    finally:
        model.close()


def now_iso() -> str:
    return datetime.now(UTC).replace(microsecond=0).isoformat()


def load_onnx(path: Path, what: str) -> onnx.ModelProto:
    """Parse ``path`` as ONNX (weights kept external if they are); errors say what it is not."""
    if not path.is_file():
        raise IdentityError(f"{what} {path} does not exist")
    try:
        model = onnx.load(str(path), load_external_data=False)
    except (DecodeError, ValueError, RuntimeError, OSError) as exc:
        raise IdentityError(f"{what} {path} is not an ONNX model ({exc})") from exc
    if not model.graph.node or not model.graph.output:
        raise IdentityError(f"{what} {path} is not an ONNX model (no graph nodes or outputs)")
    return model


def graph_inputs(model: onnx.ModelProto) -> list[onnx.ValueInfoProto]:
    """Real inputs (old ONNX files also list their initializers as inputs)."""
    weights = {t.name for t in model.graph.initializer}
    return [i for i in model.graph.input if i.name not in weights]


def tensor_dims(info: onnx.ValueInfoProto) -> tuple[str, Dims] | None:
    """(dtype, dims) of a tensor: an int per static axis, the axis name (or -1) where dynamic;
    None when the file declares no shape."""
    kind = info.type.tensor_type
    if not kind.HasField("shape"):
        return None
    dims: Dims = []
    for d in kind.shape.dim:
        if d.HasField("dim_value") and d.dim_value > 0:
            dims.append(int(d.dim_value))
        else:
            dims.append(d.dim_param or -1)
    elem = int(kind.elem_type)
    dtype = _DTYPES.get(elem) or str(TensorProto.DataType.Name(elem)).lower()
    return dtype, dims


def known_dims(dims: Dims, fill: dict[int, int]) -> Dims:
    """``dims`` with each named (dynamic) axis replaced: by ``fill[axis]`` where the contract
    fixes it (a DFM's output is the input crop's size), else by -1. A manifest records 224, not
    an exporter's ``Transposeout_face_mask:0_dim_1``."""
    return [
        d if isinstance(d, int) and d > 0 else fill.get(axis, -1) for axis, d in enumerate(dims)
    ]
