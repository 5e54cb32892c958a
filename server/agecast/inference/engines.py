"""The TensorRT plan cache under ``engines/``: keys, lookup, locked builds, list and prune.

A plan is only valid for the exact ONNX bytes, TensorRT version, GPU (name and compute
capability), precision and input shapes it was built for, so its file name is a digest of all of
them; a ``.json`` sidecar beside each plan spells the key out for ``engines list`` and
``engines prune``. Builds (``agecast engines build``) take an exclusive ``fcntl`` lock on the
folder, so two processes never build the same plan or write the timing cache at once. Plans are
never built on a live frame: the TensorRT backend only looks them up.

Nothing here imports TensorRT; building goes through :mod:`agecast.inference.tensorrt_backend`.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import re
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from agecast.errors import BackendError

log = logging.getLogger(__name__)

Precision = Literal["fp32", "fp16"]
# (min, opt, max) shape per input: TensorRT's optimisation profile
Profile = tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]
DEFAULT_MAX_BATCH = 8  # faces per inference call a plan accepts (identities with a dynamic batch)
REPO_ENGINES_DIR = Path(__file__).resolve().parents[3] / "engines"
LOCK_NAME = ".build.lock"


def default_engines_dir() -> Path:
    """``AGECAST_ENGINES_DIR`` if set, else the repository's ``engines/``."""
    env = os.environ.get("AGECAST_ENGINES_DIR")
    return Path(env) if env else REPO_ENGINES_DIR


@dataclass(frozen=True, slots=True)
class GpuTarget:
    """What a plan is specific to besides the model: TensorRT and the GPU."""

    trt_version: str
    gpu_name: str
    compute_capability: str  # "9.0"

    def slug(self) -> str:
        name = re.sub(r"[^a-z0-9]+", "-", self.gpu_name.lower()).strip("-")
        return f"trt{self.trt_version}-{name}-sm{self.compute_capability.replace('.', '')}"


@dataclass(frozen=True, slots=True)
class PlanKey:
    onnx_sha256: str
    trt_version: str
    gpu_name: str
    compute_capability: str
    precision: Precision
    shapes: tuple[tuple[str, Profile], ...]  # sorted by input name

    @classmethod
    def make(
        cls, onnx_sha256: str, target: GpuTarget, precision: Precision, shapes: dict[str, Profile]
    ) -> PlanKey:
        return cls(
            onnx_sha256,
            target.trt_version,
            target.gpu_name,
            target.compute_capability,
            precision,
            tuple(
                (name, tuple(tuple(int(d) for d in s) for s in prof))  # type: ignore[misc]
                for name, prof in sorted(shapes.items())
            ),
        )

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["shapes"] = {name: [list(s) for s in prof] for name, prof in self.shapes}
        return data

    @classmethod
    def from_json(cls, data: dict[str, object]) -> PlanKey:
        shapes = data["shapes"]
        assert isinstance(shapes, dict)
        return cls.make(
            str(data["onnx_sha256"]),
            GpuTarget(
                str(data["trt_version"]), str(data["gpu_name"]), str(data["compute_capability"])
            ),
            "fp16" if data["precision"] == "fp16" else "fp32",
            {str(k): (tuple(v[0]), tuple(v[1]), tuple(v[2])) for k, v in shapes.items()},
        )

    def digest(self) -> str:
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class PlanEntry:
    path: Path
    key: PlanKey | None  # None: no readable sidecar
    label: str
    size: int
    built: str


def input_profiles(onnx_data: bytes, max_batch: int = DEFAULT_MAX_BATCH) -> dict[str, Profile]:
    """Each graph input's (min, opt, max) shape: a dynamic first axis is the batch (1 … max);
    any other dynamic axis has no size to build for, which is an error naming the input."""
    import onnx

    try:
        graph = onnx.load_from_string(onnx_data).graph
    except Exception as exc:  # onnx raises DecodeError and friends, untyped
        raise BackendError(f"not a readable ONNX model ({exc})") from exc
    weights = {init.name for init in graph.initializer}
    profiles: dict[str, Profile] = {}
    for value in graph.input:
        if value.name in weights:
            continue
        dims = value.type.tensor_type.shape.dim
        lo: list[int] = []
        hi: list[int] = []
        for axis, dim in enumerate(dims):
            if dim.HasField("dim_value") and dim.dim_value > 0:
                lo.append(dim.dim_value)
                hi.append(dim.dim_value)
            elif axis == 0:
                lo.append(1)
                hi.append(max_batch)
            else:
                raise BackendError(
                    f"input {value.name} has a dynamic axis {axis}: TensorRT plans here are "
                    "built for a dynamic batch only; export the model with fixed sizes"
                )
        profiles[value.name] = (tuple(lo), tuple(lo), tuple(hi))
    return profiles


class EngineCache:
    """A folder of plans with sidecars, one timing cache per TensorRT × GPU, and a build lock."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or default_engines_dir()

    def plan_path(self, key: PlanKey) -> Path:
        return self.root / f"{key.digest()[:32]}.plan"

    def find(self, key: PlanKey) -> Path | None:
        path = self.plan_path(key)
        return path if path.is_file() else None

    def timing_cache_path(self, target: GpuTarget) -> Path:
        return self.root / f"timing-{target.slug()}.cache"

    @contextlib.contextmanager
    def lock(self, *, blocking: bool = True) -> Iterator[bool]:
        """Hold the folder's build lock; yields False (without waiting) if another process
        holds it and ``blocking`` is False."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def store(self, key: PlanKey, plan: bytes, label: str) -> Path:
        """Write plan and sidecar atomically (a reader never sees half a plan)."""
        path = self.plan_path(key)
        sidecar = {
            "label": label,
            "built": datetime.now(UTC).isoformat(timespec="seconds"),
            "key": key.to_json(),
        }
        _atomic_write(path.with_suffix(".json"), (json.dumps(sidecar, indent=2) + "\n").encode())
        _atomic_write(path, plan)
        return path

    def entries(self) -> list[PlanEntry]:
        if not self.root.is_dir():
            return []
        found: list[PlanEntry] = []
        for plan in sorted(self.root.glob("*.plan")):
            key, label, built = None, "?", "?"
            try:
                meta = json.loads(plan.with_suffix(".json").read_text())
                key = PlanKey.from_json(meta["key"])
                label, built = str(meta.get("label", "?")), str(meta.get("built", "?"))
            except (OSError, ValueError, KeyError, TypeError, AssertionError, IndexError):
                pass  # listed as unreadable; prune removes it
            found.append(PlanEntry(plan, key, label, plan.stat().st_size, built))
        return found

    def prune(self, installed_sha256: set[str], target: GpuTarget | None) -> list[tuple[Path, str]]:
        """Remove plans no installed model needs, or built by another TensorRT than
        ``target``'s (None: TensorRT unknown here, versions are not judged). Returns what was
        removed and why."""
        removed: list[tuple[Path, str]] = []
        for entry in self.entries():
            why = _stale(entry, installed_sha256, target)
            if why is None:
                continue
            entry.path.unlink(missing_ok=True)
            entry.path.with_suffix(".json").unlink(missing_ok=True)
            removed.append((entry.path, why))
            log.info("pruned %s (%s)", entry.path.name, why)
        if self.root.is_dir():
            for sidecar in self.root.glob("*.json"):
                if not sidecar.with_suffix(".plan").exists():
                    sidecar.unlink()
                    removed.append((sidecar, "sidecar without a plan"))
            if target is not None:
                for cache in self.root.glob("timing-*.cache"):
                    if not cache.name.startswith(f"timing-trt{target.trt_version}-"):
                        cache.unlink()
                        removed.append((cache, "timing cache of another TensorRT version"))
        return removed


def _stale(entry: PlanEntry, installed: set[str], target: GpuTarget | None) -> str | None:
    if entry.key is None:
        return "no readable key sidecar"
    if entry.key.onnx_sha256 not in installed:
        return f"no installed model has ONNX sha256 {entry.key.onnx_sha256[:12]}…"
    if target is not None and entry.key.trt_version != target.trt_version:
        return f"built by TensorRT {entry.key.trt_version}, this is {target.trt_version}"
    return None


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


@dataclass(frozen=True, slots=True)
class EngineModel:
    """A model ``engines build`` turns into a plan: what the backend will be given to load."""

    label: str
    data: bytes
    sha256: str  # of ``data``: the plan's key (PlanKey.onnx_sha256)

    @classmethod
    def of(cls, label: str, data: bytes) -> EngineModel:
        return cls(label, data, hashlib.sha256(data).hexdigest())


@dataclass(frozen=True, slots=True)
class BuildResult:
    label: str
    path: Path
    built: bool  # False: the plan was already there


def build_engines(
    models: list[EngineModel],
    cache: EngineCache,
    *,
    fp16: bool,
    max_batch: int = DEFAULT_MAX_BATCH,
) -> list[BuildResult]:
    """A plan for each model that lacks one, under the cache's lock. Needs TensorRT and a GPU
    (BackendUnavailable otherwise, naming the GPU path)."""
    from agecast.inference.tensorrt_backend import build_plan, current_target

    target = current_target()
    precision: Precision = "fp16" if fp16 else "fp32"
    results: list[BuildResult] = []
    with cache.lock():
        for model in models:
            shapes = input_profiles(model.data, max_batch)
            key = PlanKey.make(model.sha256, target, precision, shapes)
            existing = cache.find(key)  # another process may have built it while we waited
            if existing is not None:
                results.append(BuildResult(model.label, existing, False))
                continue
            log.info("building a %s TensorRT plan for %s on %s", precision, model.label, target)
            plan = build_plan(
                model.data,
                shapes,
                fp16=fp16,
                timing_cache=cache.timing_cache_path(target),
                label=model.label,
            )
            results.append(BuildResult(model.label, cache.store(key, plan, model.label), True))
    return results
