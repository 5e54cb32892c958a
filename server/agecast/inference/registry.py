"""Backend names, availability and ``auto`` selection.

Backends are looked up by name and imported only when chosen, so the package and its tests
run on a box without TensorRT, CUDA or even onnxruntime. A backend whose import fails is
reported with the reason, never fatal.
"""

from __future__ import annotations

import logging
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar, Literal

import torch

from agecast.errors import BackendError, BackendUnavailable
from agecast.inference.base import Backend, Model
from agecast.inference.triton_naming import TritonConfig

log = logging.getLogger(__name__)


def _onnxruntime() -> type[Backend]:
    from agecast.inference.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend


def _onnxruntime_cuda() -> type[Backend]:
    from agecast.inference.onnxruntime_backend import OnnxRuntimeCudaBackend

    return OnnxRuntimeCudaBackend


def _torch() -> type[Backend]:
    from agecast.inference.torch_backend import TorchBackend

    return TorchBackend


def _triton() -> type[Backend]:
    from agecast.inference.triton_backend import TritonBackend

    return TritonBackend


def _tensorrt() -> type[Backend]:
    from agecast.inference.tensorrt_backend import TensorRTBackend

    return TensorRTBackend


# Fastest first: with one usable candidate ``auto`` takes it; with several it measures.
_LOADERS: dict[str, Callable[[], type[Backend]]] = {
    "tensorrt": _tensorrt,
    "onnxruntime-cuda": _onnxruntime_cuda,
    "torch": _torch,
    "onnxruntime": _onnxruntime,
}
# Named only, never taken by auto: it needs a server's address (the triton_url setting).
_NAMED_ONLY: dict[str, Callable[[], type[Backend]]] = {"triton": _triton}
BACKEND_NAMES: tuple[str, ...] = ("auto", *_LOADERS, *_NAMED_ONLY)
# torch runs on the CPU too (for checks), but there onnxruntime is the CPU engine: auto takes
# torch only where it has a GPU.
_AUTO_NEEDS_CUDA = frozenset({"torch"})
WARMUP_RUNS = 3


def _probe(name: str) -> tuple[type[Backend] | None, str | None]:
    try:
        cls = {**_LOADERS, **_NAMED_ONLY}[name]()
    except BackendUnavailable as exc:
        return None, str(exc)
    except ImportError as exc:
        return None, f"import failed: {exc}"
    try:
        return cls, cls.probe()
    except Exception as exc:  # a broken install must not take the other backends down
        return None, f"probe failed: {exc}"


def available_backends() -> dict[str, str | None]:
    """Every backend name → None if usable here, else the reason it is not."""
    return {name: _probe(name)[1] for name in (*_LOADERS, *_NAMED_ONLY)}


def auto_note(name: str) -> str | None:
    """Why ``auto`` passes over a backend that is usable here by name, or None."""
    if name in _NAMED_ONLY:
        return "auto never takes it: it needs a server (--triton-url)"
    if name in _AUTO_NEEDS_CUDA and not torch.cuda.is_available():
        return "no CUDA here: auto takes it on a GPU only"
    return None


def _auto_candidates() -> tuple[list[type[Backend]], list[str]]:
    usable: list[type[Backend]] = []
    reasons: list[str] = []
    for name in _LOADERS:
        cls, why = _probe(name)
        if cls is None or why is not None:
            reasons.append(f"{name}: {why}")
        elif auto_note(name) is not None:
            reasons.append(f"{name}: {auto_note(name)}")
        else:
            usable.append(cls)
    return usable, reasons


@dataclass(frozen=True, slots=True)
class TorchOptions:
    """The torch backend's own choices (the other backends ignore them)."""

    precision: Literal["auto", "fp32", "fp16"] = "auto"
    cuda_graphs: bool = True


def get_backend(
    name: str = "auto",
    *,
    threads: int = 0,
    engines_dir: Path | None = None,
    torch_options: TorchOptions | None = None,
    triton: TritonConfig | None = None,
) -> Backend:
    """Instantiate backend ``name``. ``auto``: the one usable backend, or when several can run
    here, an :class:`AutoBackend` that measures them on each model it loads. ``triton``: the
    server of the ``triton`` backend (its other models run on ``triton.local``)."""
    opts = torch_options or TorchOptions()
    if name == "triton":
        return _make_triton(triton, threads, engines_dir, opts)
    if name == "auto":
        usable, reasons = _auto_candidates()
        if not usable:
            raise BackendUnavailable("no inference backend is usable: " + "; ".join(reasons))
        # why the others cannot run (no TensorRT, no CUDA…) is for `agecast backends` and
        # --log-level debug; the startup line says which runs and why (Backend.why)
        if len(usable) == 1:
            log.debug(
                "backend auto → %s (the only usable one; %s)", usable[0].name, "; ".join(reasons)
            )
            backend = _make(usable[0], threads, engines_dir, opts)
            backend.why = "auto: the only backend usable here (`agecast backends` says why)"
            return backend
        log.debug(
            "backend auto: measuring %s on each model (%s)",
            ", ".join(c.name for c in usable),
            "; ".join(reasons) or "all usable",
        )
        auto = AutoBackend([_make(c, threads, engines_dir, opts, auto=True) for c in usable])
        auto.why = "auto: the fastest of " + ", ".join(c.name for c in usable) + " per model"
        return auto
    if name not in _LOADERS:
        raise BackendUnavailable(
            f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}"
        )
    cls, why = _probe(name)
    if cls is None or why is not None:
        raise BackendUnavailable(f"backend {name} is not usable here: {why}")
    return _make(cls, threads, engines_dir, opts)


def _make_triton(
    config: TritonConfig | None, threads: int, engines_dir: Path | None, opts: TorchOptions
) -> Backend:
    if config is None or not config.url:
        raise BackendUnavailable(
            "backend triton needs the server's address: --triton-url grpc://HOST:8001 "
            "(or triton_url in the settings)"
        )
    cls, why = _probe("triton")
    if cls is None or why is not None:
        raise BackendUnavailable(f"backend triton is not usable here: {why}")
    from agecast.inference.triton_backend import TritonBackend

    if config.local == "triton":
        raise BackendUnavailable("triton_local must name an in-process backend, not triton")
    local = get_backend(config.local, threads=threads, engines_dir=engines_dir, torch_options=opts)
    return TritonBackend(config, local)


def _make(
    cls: type[Backend],
    threads: int,
    engines_dir: Path | None,
    opts: TorchOptions,
    *,
    auto: bool = False,
) -> Backend:
    from agecast.inference.onnxruntime_backend import OnnxRuntimeBackend

    if issubclass(cls, OnnxRuntimeBackend):
        return cls(threads=threads, engines_dir=engines_dir)
    if cls.name == "torch":
        from agecast.inference.torch_backend import TorchBackend

        # under auto, torch takes only its own family; the ONNX backends measure the rest
        return TorchBackend(
            threads=threads,
            delegate=not auto,
            precision=opts.precision,
            cuda_graphs=opts.cuda_graphs,
        )
    if cls.name == "tensorrt":
        from agecast.inference.tensorrt_backend import TensorRTBackend

        return TensorRTBackend(engines_dir=engines_dir)
    return cls()


class AutoBackend(Backend):
    """Several usable backends: each model goes to the one that runs it fastest here.

    Every candidate that can load the model runs it on zero inputs where the frames live (one
    untimed run, then :data:`WARMUP_RUNS` timed); the fastest median wins and the others are
    closed. The choice and the times are logged, and kept in :attr:`chosen` (label → backend).
    """

    name: ClassVar[str] = "auto"

    def __init__(self, candidates: list[Backend]) -> None:
        self.candidates = candidates
        self.chosen: dict[str, str] = {}

    @classmethod
    def probe(cls) -> str | None:
        return None

    def load(self, model: Path | bytes, *, label: str) -> Model:
        timed: list[tuple[float, Backend, Model]] = []
        notes: list[str] = []
        for backend in self.candidates:
            try:
                loaded = backend.load(model, label=label)
            except (BackendError, BackendUnavailable) as exc:
                notes.append(f"{backend.name} cannot load it ({exc})")
                continue
            try:
                seconds = measure(loaded)
            except (BackendError, BackendUnavailable, RuntimeError) as exc:
                loaded.close()
                notes.append(f"{backend.name} failed its warm-up ({exc})")
                continue
            timed.append((seconds, backend, loaded))
        if not timed:
            raise BackendError(f"{label}: no usable backend can run it: " + "; ".join(notes))
        timed.sort(key=lambda t: t[0])
        _, best, model_ = timed[0]
        for _, _, other in timed[1:]:
            other.close()
        times = ", ".join(f"{b.name} {s * 1e3:.2f} ms" for s, b, _ in timed)
        log.info(
            "backend auto → %s for %s (median warm-up run: %s%s)",
            best.name,
            label,
            times,
            "; " + "; ".join(notes) if notes else "",
        )
        self.chosen[label] = best.name
        return model_


def measure(model: Model) -> float:
    """Median seconds of :data:`WARMUP_RUNS` runs on zero inputs (after one untimed run).

    The inputs live where the pipeline's frames do (CUDA when present), so a backend that
    copies them to its own device pays for the copy here as it will on a live frame.
    """
    where = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    feeds = {
        spec.name: torch.zeros(
            [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape],
            dtype=getattr(torch, spec.dtype, torch.float32),
            device=where,
        )
        for spec in model.inputs
    }
    model.run(feeds)
    times: list[float] = []
    for _ in range(WARMUP_RUNS):
        if where.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        model.run(feeds)
        if where.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)
