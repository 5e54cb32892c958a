"""Finding, reading and validating identity packages.

A package is checked whole: ``model.sha256`` covers the model file and ``model.files`` every
other file it reads (ONNX external weights); a file the model reads that the manifest does not
cover, a file that is a link, or one whose contents changed is refused. The model is loaded
from a private copy of exactly the bytes that were hashed, so rewriting the package while an
identity runs cannot reach it (onnxruntime memory-maps external weights: a file truncated
under it killed the server with SIGBUS).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import stat
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from agecast.errors import BackendError, IdentityError, explain_fields
from agecast.identities.vouch import Vouches
from agecast.inference.base import Backend, Model, TensorSpec
from agecast.manifest import MANIFEST_NAME, Manifest, TensorDecl

log = logging.getLogger(__name__)

# When several packages are installed and none is asked for, prefer a real likeness, then the
# shipped demo identity, then tooling.
_PURPOSE_RANK = {"likeness": 0, "demo": 1, "tooling": 2}
_CONSENT_HELP = "see models/README.md (identity consent)"
MAX_MANIFEST_BYTES = 1 << 20  # a manifest is a few KB; a bigger one is not a manifest


@dataclass(frozen=True, slots=True)
class IdentityPackage:
    """A package folder whose manifest parsed (the model is not loaded yet)."""

    path: Path
    manifest: Manifest
    digest: str = ""  # sha256 of manifest.json's bytes as read: the whole package (vouch.py)

    @property
    def model_path(self) -> Path:
        return self.path / self.manifest.model.file


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def read_package(path: Path) -> IdentityPackage:
    """Parse ``path/manifest.json``; errors name the file and the field."""
    manifest_path = path / MANIFEST_NAME
    if not path.is_dir():
        raise IdentityError(f"identity package {path} is not a folder")
    if not manifest_path.is_file():
        raise IdentityError(f"{manifest_path} is missing: an identity package needs a manifest")
    if manifest_path.stat().st_size > MAX_MANIFEST_BYTES:
        raise IdentityError(f"{manifest_path} is over {MAX_MANIFEST_BYTES} bytes: not a manifest")
    try:
        data = manifest_path.read_bytes()
        raw = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise IdentityError(f"{manifest_path} is not valid JSON: {exc}") from exc
    except RecursionError as exc:  # "[[[[…" thousands deep
        raise IdentityError(f"{manifest_path} is nested too deeply to be a manifest") from exc
    try:
        manifest = Manifest.model_validate(raw)
    except ValidationError as exc:
        raise IdentityError(f"{manifest_path}: {explain_fields(exc)}") from exc
    return IdentityPackage(path, manifest, hashlib.sha256(data).hexdigest())


def verify_files(package: IdentityPackage) -> None:
    """Every file the model reads exists, is a plain file and has the manifest's sha256."""
    with staged(package):
        pass


@contextlib.contextmanager
def staged(package: IdentityPackage) -> Iterator[Path]:
    """A private copy of the model's files, each checked against the manifest as it is copied;
    yields the copy of the model file. Load from it: what was checked is what runs, and the
    package can be rewritten without touching the running model (the copy is deleted after;
    a loaded model keeps its mapped files)."""
    where = package.path / MANIFEST_NAME
    decl = package.manifest.model
    with tempfile.TemporaryDirectory(prefix="agecast-identity-") as tmp:  # 0700
        model = Path(tmp) / decl.file
        _copy_checked(package.path / decl.file, model, decl.sha256, where, "model.file")
        for name in _external_files(model, where):
            if name not in decl.files:
                raise IdentityError(
                    f"{where}: {decl.file} reads external weights {name!r}, which field "
                    f'model.files does not cover: add "{name}": "<its sha256>" to '
                    "model.files (sha256sum prints it)"
                )
        for name, digest in decl.files.items():
            _copy_checked(package.path / name, Path(tmp) / name, digest, where, "model.files")
        # backends that rebuild a network read the manifest beside the model: the one checked
        manifest = package.manifest.model_dump(mode="json", by_alias=True, exclude_none=True)
        (Path(tmp) / MANIFEST_NAME).write_text(json.dumps(manifest))
        yield model


def _copy_checked(source: Path, copy: Path, digest: str, where: Path, field: str) -> None:
    """Copy ``source`` (a plain file, never through a link) to ``copy``, checking its sha256;
    ``field`` is the manifest field that names the file."""
    try:
        fd = os.open(source, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise IdentityError(
            f"{where}: field {field} names {source.name}, which is missing"
        ) from None
    except OSError as exc:  # ELOOP: a link
        raise IdentityError(
            f"{where}: {source.name} is a link, not a file ({exc.strerror}); copy the file "
            "itself into the package"
        ) from None
    sha = hashlib.sha256()
    with os.fdopen(fd, "rb") as src:
        if not stat.S_ISREG(os.fstat(src.fileno()).st_mode):
            raise IdentityError(f"{where}: {source.name} is not a regular file")
        with copy.open("xb") as dst:
            for chunk in iter(lambda: src.read(1 << 20), b""):
                sha.update(chunk)
                dst.write(chunk)
    if sha.hexdigest() != digest:
        hashed = "model.sha256" if field == "model.file" else f"model.files.{source.name}"
        raise IdentityError(
            f"{source}: its sha256 does not match field {hashed} in {where}; the file was "
            "changed or replaced — re-export the package or fix the manifest"
        )


def _external_files(model_path: Path, where: Path) -> list[str]:
    """The external-data files an ONNX model names (their ``location``)."""
    import onnx  # heavy: only when a model is checked

    try:
        model = onnx.load(str(model_path), load_external_data=False)
    except Exception as exc:  # protobuf's DecodeError and friends
        raise IdentityError(
            f"{where}: {model_path.name}: cannot load the model, it is not ONNX ({exc})"
        ) from exc
    names: set[str] = set()
    for tensor in _tensors(model.graph):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            found = [entry.value for entry in tensor.external_data if entry.key == "location"]
            names.update(found)
    for name in names:
        if "/" in name or "\\" in name or name.startswith("."):
            raise IdentityError(
                f"{where}: the model reads external weights from {name!r}, outside its package"
            )
    return sorted(names)


def _tensors(graph: Any) -> Iterator[Any]:
    """Every tensor stored in ``graph``: initializers, constants, and those of subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from _tensors(attribute.g)
            for sub in attribute.graphs:
                yield from _tensors(sub)


def check_contract(package: IdentityPackage, model: Model) -> None:
    """The loaded model's tensors match the manifest's names, shapes and dtypes."""
    where = package.path / MANIFEST_NAME
    for side, declared, actual in (
        ("inputs", package.manifest.model.inputs, model.inputs),
        ("outputs", package.manifest.model.outputs, model.outputs),
    ):
        by_name = {spec.name: spec for spec in actual}
        if side == "inputs" and {d.name for d in declared} != set(by_name):
            raise IdentityError(
                f"{where}: field model.inputs declares {sorted(d.name for d in declared)} "
                f"but {package.model_path.name} has inputs {sorted(by_name)}"
            )
        for i, decl in enumerate(declared):
            spec = by_name.get(decl.name)
            if spec is None:
                raise IdentityError(
                    f"{where}: field model.{side}[{i}].name {decl.name!r} is not a tensor of "
                    f"{package.model_path.name} (it has {sorted(by_name)})"
                )
            problem = _shape_problem(decl, spec)
            if problem:
                raise IdentityError(f"{where}: field model.{side}[{i}] {problem}")


def _shape_problem(decl: TensorDecl, spec: TensorSpec) -> str | None:
    if decl.dtype != spec.dtype:
        return f"dtype {decl.dtype} but the model has {spec.dtype}"
    if len(decl.shape) != len(spec.shape):
        return f"shape {decl.shape} but the model has {list(spec.shape)}"
    for want, got in zip(decl.shape, spec.shape, strict=True):
        if isinstance(want, int) and want > 0 and isinstance(got, int) and got > 0 and want != got:
            return f"shape {decl.shape} but the model has {list(spec.shape)}"
    return None


def consent_problem(
    package: IdentityPackage, today: date | None = None, vouches: Vouches | None = None
) -> str | None:
    """Why the package may not run on ``today`` (default: the local date), or None if it may.

    A likeness needs a consent record for its own actor that is in force today. A package that
    says it is no one's likeness (demo, tooling) needs no consent when it is vouched for
    (``vouches``, default this user's: :meth:`Vouches.default`) — the purpose is what its
    author wrote (vouch.py); otherwise it is held to a likeness's rule. The message names the
    manifest and the field.
    """
    m = package.manifest
    where = package.path / MANIFEST_NAME
    if m.purpose != "likeness":
        if (vouches or Vouches.default()).covers(package):
            return None
        if m.consent is None:
            return (
                f"{where}: field purpose says {m.purpose!r} (no real person's likeness), but "
                "nobody this server trusts has vouched for that: a purpose is what the "
                f"package's author wrote. If {m.id!r} truly shows no one's likeness, run "
                f"'agecast identity vouch {package.path}' on the server; if it is someone's "
                f"likeness, record their consent in the manifest; {_CONSENT_HELP}"
            )
    consent = m.consent
    if consent is None:
        return (
            f"{where}: field consent is missing: identity {m.id!r} is the likeness of "
            f"{m.actor} and may not run without their consent — obtain the actor's consent and "
            "record it in the manifest (actor, granted_by, production, purposes, valid_from, "
            f"valid_until, reference); {_CONSENT_HELP}"
        )
    if consent.actor != m.actor:
        return (
            f"{where}: field consent.actor {consent.actor!r} does not match field actor "
            f"{m.actor!r}: a consent record covers only the actor it names — record "
            f"{m.actor}'s own consent, or fix the actor name; {_CONSENT_HELP}"
        )
    day = today or date.today()
    if day < consent.valid_from:
        return (
            f"{where}: field consent.valid_from is {consent.valid_from}, so the consent of "
            f"{m.actor} for {consent.production!r} is not in force yet (today is {day}) — "
            f"wait until then, or record a consent that covers today; {_CONSENT_HELP}"
        )
    if day > consent.valid_until:
        return (
            f"{where}: field consent.valid_until is {consent.valid_until}, so the consent of "
            f"{m.actor} for {consent.production!r} has expired (today is {day}) — obtain a "
            f"renewed consent and record its dates; {_CONSENT_HELP}"
        )
    return None


def check_consent(
    package: IdentityPackage, today: date | None = None, vouches: Vouches | None = None
) -> None:
    """Refuse to run a likeness without the actor's consent in force ``today`` (or a package
    that says it is no one's likeness without a vouch: :func:`consent_problem`).

    Everything that loads an identity to run it goes through here (via ``load_model``);
    reading, listing and inspecting a package do not.
    """
    problem = consent_problem(package, today, vouches)
    if problem is not None:
        raise IdentityError(problem)


def load_model(
    package: IdentityPackage,
    backend: Backend,
    today: date | None = None,
    vouches: Vouches | None = None,
) -> Model:
    """Check consent and the files, load the model on ``backend`` and check its tensors."""
    check_consent(package, today, vouches)
    try:
        with staged(package) as copy:
            model = backend.load(copy, label=f"identity {package.manifest.id}")
    except BackendError as exc:
        raise IdentityError(f"{package.model_path}: {exc}") from exc
    try:
        check_contract(package, model)
    except IdentityError:
        model.close()
        raise
    return model


def discover(dirs: list[Path]) -> list[IdentityPackage]:
    """Every readable package directly inside ``dirs`` (unreadable ones are logged, skipped)."""
    found: list[IdentityPackage] = []
    for root in dirs:
        if not root.is_dir():
            continue
        for child in sorted(root.iterdir()):
            if (child / MANIFEST_NAME).is_file():
                try:
                    found.append(read_package(child))
                except IdentityError as exc:
                    log.warning("skipping identity package: %s", exc)
    return found


def resolve(
    name: str,
    dirs: list[Path],
    *,
    installed_only: bool = False,
    vouches: Vouches | None = None,
) -> IdentityPackage:
    """``name`` is a package folder path, an identity id, or ``auto`` (best installed).
    ``installed_only``: only ids of packages in ``dirs`` (what a monitor's operator may pick:
    not any folder on the server's disk). ``vouches``: which demo/tooling packages ``auto`` may
    count as runnable (:func:`consent_problem`)."""
    candidate = Path(name).expanduser()
    if not installed_only and name != "auto" and (candidate / MANIFEST_NAME).exists():
        return read_package(candidate)
    installed = discover(dirs)
    if name == "auto":
        if not installed:
            raise IdentityError(
                f"no identity package found in {', '.join(map(str, dirs))}; "
                "pass --identity PATH or add packages to --identities-dir"
            )
        # A likeness whose consent is not in force cannot run: rank it after every runnable one.
        blocked = {p.path: consent_problem(p, vouches=vouches) for p in installed}
        for why in filter(None, blocked.values()):
            log.warning("identity auto: a package cannot run now: %s", why)
        best = min(
            installed,
            key=lambda p: (
                blocked[p.path] is not None,
                _PURPOSE_RANK[p.manifest.purpose],
                p.manifest.id,
            ),
        )
        log.info("identity auto → %s (%s)", best.manifest.id, best.path)
        return best
    for package in installed:
        if package.manifest.id == name:
            return package
    known = ", ".join(p.manifest.id for p in installed) or "none"
    raise IdentityError(
        f"identity {name!r} not found (installed: {known}; searched {', '.join(map(str, dirs))}); "
        "pass an installed id or a package folder path"
    )
