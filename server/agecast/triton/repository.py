"""A Triton model repository written from installed identity packages.

``OUT/agecast_ID/config.pbtxt`` and ``OUT/agecast_ID/VERSION/model.onnx`` (or ``model.plan``,
or ``model.py`` + ``model.onnx``), where VERSION comes from the ONNX sha256
(:mod:`agecast.inference.triton_naming`): a re-trained identity is a new version beside the
old one (Triton loads every version, ``version_policy: { all { } }``; ``prune`` removes the
others). The model's bytes are copied from the checked copy of the package (what was hashed
is what is served).

Platforms: ``onnxruntime`` (Triton's ONNX Runtime backend, the production default),
``tensorrt`` (a plan built here with TensorRT: build it on the GPU model and TensorRT version
Triton runs), ``python`` (Triton's Python backend running onnxruntime, for a server without
the ONNX Runtime backend — the one in the nvidia-pytriton wheel).
"""

from __future__ import annotations

import json
import logging
import shutil
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import torch

from agecast.errors import BackendError, BackendUnavailable, OutputError
from agecast.identities.package import MANIFEST_NAME, IdentityPackage, check_consent, staged
from agecast.identities.vouch import Vouches
from agecast.inference.base import TensorSpec
from agecast.inference.triton_naming import TRITON_DATATYPES, model_name, model_version
from agecast.inference.triton_wire import (
    WIRE_PARAMETER,
    Wire,
    WireKind,
    plan_wire,
    wire_from_json,
    wire_parameter,
    wire_specs,
    wire_to_json,
)

if TYPE_CHECKING:
    import onnx

log = logging.getLogger(__name__)

Platform = Literal["onnxruntime", "tensorrt", "python"]
PLATFORMS: tuple[str, ...] = ("onnxruntime", "tensorrt", "python")
InstanceKind = Literal["gpu", "cpu"]
_MODEL_FILE = {"onnxruntime": "model.onnx", "tensorrt": "model.plan", "python": "model.py"}
_PYTHON_MODEL = Path(__file__).with_name("python_model.py")
WIRE_FILE = "agecast-wire.json"  # in each version folder: how that version's tensors travel


@dataclass(frozen=True, slots=True)
class RepoOptions:
    """What every model of the repository gets: batching, instances, platform."""

    platform: Platform = "onnxruntime"
    max_batch: int = 8
    instances: int = 1
    kind: InstanceKind = "gpu"
    # dynamic batching: how long Triton may hold a request for a batch. 0: no waiting; requests
    # that queued while the instance was busy still run as one batch (bench/triton.py: one
    # camera's call 0.5 ms faster than with 500 µs; four cameras still batched)
    delay_us: int = 0
    python_env: Path | None = None  # python platform: the environment with onnxruntime, numpy
    threads: int = 1  # python platform: onnxruntime threads per instance
    prune: bool = False  # remove the other versions of each identity written
    # how tensors travel (inference/triton_wire.py); None: compact, but float32 for TensorRT
    # (8-bit network inputs through TensorRT's ONNX parser were never tried here: no GPU)
    wire: WireKind | None = None

    @property
    def wire_kind(self) -> WireKind:
        if self.wire is not None:
            return self.wire
        return "float32" if self.platform == "tensorrt" else "compact"


@dataclass(frozen=True, slots=True)
class Written:
    identity: str
    name: str
    version: int
    folder: Path


def tensor_block(kind: str, specs: Sequence[TensorSpec], batched: bool) -> str:
    """``input [ … ]`` or ``output [ … ]`` of a config.pbtxt."""
    entries = []
    for spec in specs:
        dims = spec.shape[1:] if batched else spec.shape
        shown = ", ".join(str(d) if isinstance(d, int) and d > 0 else "-1" for d in dims)
        try:
            datatype = TRITON_DATATYPES[spec.dtype]
        except KeyError:
            raise BackendError(f"{spec.name}: Triton has no datatype for {spec.dtype}") from None
        entries.append(
            f'  {{\n    name: "{spec.name}"\n    data_type: TYPE_{datatype}\n'
            f"    dims: [ {shown} ]\n  }}"
        )
    return f"{kind} [\n" + ",\n".join(entries) + "\n]\n"


def is_batched(inputs: Sequence[TensorSpec], outputs: Sequence[TensorSpec]) -> bool:
    """Every tensor's first axis is dynamic: Triton may batch requests along it."""
    return all(s.shape and not isinstance(s.shape[0], int) for s in (*inputs, *outputs))


def render_config(
    name: str,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    options: RepoOptions,
    *,
    identity: str,
    wires: Mapping[int, Wire] | None = None,
) -> str:
    """The config.pbtxt text of one model (``inputs`` and ``outputs`` as they travel; ``wires``:
    each version's wire, when any is not float32)."""
    batched = is_batched(inputs, outputs)
    lines = [f'name: "{name}"']
    if options.platform == "onnxruntime":
        lines.append('backend: "onnxruntime"')
    elif options.platform == "tensorrt":
        lines.append('platform: "tensorrt_plan"')
    else:
        lines.append('backend: "python"')
    lines.append(f'default_model_filename: "{_MODEL_FILE[options.platform]}"')
    lines.append(f"max_batch_size: {options.max_batch if batched else 0}")
    lines.append("version_policy: { all { } }")
    text = "\n".join(lines) + "\n"
    text += tensor_block("input", inputs, batched)
    text += tensor_block("output", outputs, batched)
    if batched:
        text += f"dynamic_batching {{\n  max_queue_delay_microseconds: {options.delay_us}\n}}\n"
    kind = "KIND_GPU" if options.kind == "gpu" else "KIND_CPU"
    text += f"instance_group [\n  {{\n    count: {options.instances}\n    kind: {kind}\n  }}\n]\n"
    params = {"agecast_identity": identity}
    if wires and any(wires.values()):
        params[WIRE_PARAMETER] = wire_parameter(wires)
    if options.platform == "python":
        env = options.python_env or Path(sys.prefix)
        params["EXECUTION_ENV_PATH"] = str(env)
        params["intra_op_threads"] = str(options.threads)
    for key, value in params.items():
        quoted = value.replace("\\", "\\\\").replace('"', '\\"')
        text += f'parameters: {{\n  key: "{key}"\n  value: {{ string_value: "{quoted}" }}\n}}\n'
    return text


def output_specs(model: Path, inputs: Sequence[TensorSpec]) -> list[TensorSpec]:
    """The outputs with their sizes, found by running the model once on zeros (batch 1)
    with onnxruntime: exporters leave output sizes symbolic, Triton wants them."""
    from agecast.inference.registry import get_backend

    loaded = get_backend("onnxruntime", threads=1).load(model, label=f"{model.name} (shapes)")
    try:
        feeds = {
            s.name: torch.zeros(
                [d if isinstance(d, int) and d > 0 else 1 for d in s.shape],
                dtype=getattr(torch, s.dtype),
            )
            for s in inputs
        }
        results = loaded.run(feeds)
    finally:
        loaded.close()
    out = []
    for spec in loaded.outputs:
        got = tuple(results[spec.name].shape)
        dims = tuple(
            spec.shape[0] if axis == 0 and not isinstance(spec.shape[0], int) else size
            for axis, size in enumerate(got)
        )
        out.append(TensorSpec(spec.name, dims, spec.dtype))
    return out


def write_model(out: Path, package: IdentityPackage, options: RepoOptions) -> Written:
    """One identity's model folder (config + this version) under ``out``."""
    import onnx

    from agecast.inference.triton_backend import onnx_specs
    from agecast.triton.wire_graph import model_opset

    manifest = package.manifest
    name = model_name(manifest.id)
    version = model_version(manifest.model.sha256)
    folder = out / name
    version_dir = folder / str(version)
    with staged(package) as copy:
        inputs, _ = onnx_specs(copy)
        outputs = output_specs(copy, inputs)
        graph = onnx.load(str(copy), load_external_data=False)
        wire = plan_wire(manifest, inputs, outputs, options.wire_kind, model_opset(graph))
        wires = _other_wires(folder, version, options) | {version: wire}
        _same_tensor_types(name, version, wires, options)
        config = render_config(
            name,
            wire_specs(inputs, wire),
            wire_specs(outputs, wire),
            options,
            identity=manifest.id,
            wires=wires,
        )
        with tempfile.TemporaryDirectory(dir=out, prefix=f".{name}-") as tmp:
            scratch = Path(tmp)
            batched = is_batched(inputs, outputs)
            _fill_version(scratch, copy, graph, wire, options, batched, name)
            if version_dir.exists():
                shutil.rmtree(version_dir)
            folder.mkdir(parents=True, exist_ok=True)
            scratch.rename(version_dir)
            scratch.mkdir()  # TemporaryDirectory removes what it made
    (folder / "config.pbtxt").write_text(config)
    if options.prune:
        for other in folder.iterdir():
            if other.is_dir() and other.name.isdigit() and other.name != str(version):
                shutil.rmtree(other)
                log.info("pruned %s version %s", name, other.name)
    return Written(manifest.id, name, version, folder)


def _other_wires(folder: Path, version: int, options: RepoOptions) -> dict[int, Wire]:
    """The wire of every other version already in ``folder`` (none when pruning: they go).
    A version written before the wire existed has no wire file: float32."""
    if options.prune or not folder.is_dir():
        return {}
    found: dict[int, Wire] = {}
    for other in folder.iterdir():
        if not (other.is_dir() and other.name.isdigit()) or other.name == str(version):
            continue
        path = other / WIRE_FILE
        try:
            text = path.read_text() if path.is_file() else "{}"
            found[int(other.name)] = wire_from_json(json.loads(text), str(path))
        except (OSError, ValueError) as exc:
            raise OutputError(
                f"{path}: unreadable ({exc}); remove that version or --prune"
            ) from exc
    return found


def _same_tensor_types(
    name: str, version: int, wires: Mapping[int, Wire], options: RepoOptions
) -> None:
    """Triton declares one type per tensor for all of a model's versions: versions whose
    tensors travel differently cannot share the model."""
    mine = {t: w.dtype for t, w in wires[version].items()}
    for other, wire in wires.items():
        theirs = {t: w.dtype for t, w in wire.items()}
        if other != version and theirs != mine:
            raise OutputError(
                f"{name} version {other} is already in the repository with its tensors as "
                f"{theirs or 'float32'}, and this version would send them as "
                f"{mine or 'float32'} (--wire {options.wire_kind}): Triton declares one type "
                "per tensor for all of a model's versions. Write with --prune (the other "
                "versions go) or with the other version's --wire"
            )


def _fill_version(
    target: Path,
    model: Path,
    graph: onnx.ModelProto,
    wire: Wire,
    options: RepoOptions,
    batched: bool,
    label: str,
) -> None:
    """The files of one version folder: the checked model (and its external weights), wrapped
    for the wire when it has one, and the wire itself."""
    from agecast.triton.wire_graph import wrap_for_wire

    wrapped = wrap_for_wire(graph, wire).SerializeToString() if wire else None
    (target / WIRE_FILE).write_text(json.dumps(wire_to_json(wire), indent=2) + "\n")
    if options.platform == "tensorrt":
        _write_plan(target, wrapped or model.read_bytes(), options, batched, label)
        return
    for item in model.parent.iterdir():
        if item.name == MANIFEST_NAME:  # the staged copy's manifest stays with the package
            continue
        destination = target / ("model.onnx" if item == model else item.name)
        if item == model and wrapped is not None:
            destination.write_bytes(wrapped)
        else:
            shutil.copyfile(item, destination)
    if options.platform == "python":
        shutil.copyfile(_PYTHON_MODEL, target / "model.py")


def _write_plan(target: Path, data: bytes, options: RepoOptions, batched: bool, label: str) -> None:
    from agecast.inference.engines import input_profiles
    from agecast.inference.tensorrt_backend import build_plan, current_target

    try:
        gpu = current_target()
    except BackendUnavailable as exc:
        raise OutputError(
            f"--platform tensorrt builds a TensorRT plan, which needs TensorRT and the GPU "
            f"Triton runs on ({exc}); run `agecast triton repo --platform tensorrt` there (the "
            "docker/ image), or write --platform onnxruntime here"
        ) from exc
    profiles = input_profiles(data, options.max_batch if batched else 1)
    timing = target / ".timing-cache"
    plan = build_plan(data, profiles, fp16=True, timing_cache=timing, label=label)
    timing.unlink(missing_ok=True)
    (target / "model.plan").write_bytes(plan)
    log.info("%s: TensorRT %s plan for %s", label, gpu.trt_version, gpu.gpu_name)


def write_repository(
    out: Path,
    packages: Sequence[IdentityPackage],
    options: RepoOptions,
    *,
    vouches: Vouches | None = None,
) -> list[Written]:
    """Every package's model under ``out`` (made if missing; other models there are left).
    Serving a likeness needs its actor's consent (or a vouch), as running it here does."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"--out {out} is a file: give a folder for the model repository")
    out.mkdir(parents=True, exist_ok=True)
    if not packages:
        raise OutputError("no identity to write: install one, or name it with --identity")
    for package in packages:
        check_consent(package, vouches=vouches)
    return [write_model(out, package, options) for package in packages]
