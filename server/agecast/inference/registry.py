"""Backend names, availability and ``auto`` selection.

Backends are looked up by name and imported only when chosen, so the package and its tests
run on a box without TensorRT, CUDA or even onnxruntime.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from agecast.errors import BackendUnavailable
from agecast.inference.base import Backend

log = logging.getLogger(__name__)


def _onnxruntime() -> type[Backend]:
    from agecast.inference.onnxruntime_backend import OnnxRuntimeBackend

    return OnnxRuntimeBackend


def _onnxruntime_cuda() -> type[Backend]:
    from agecast.inference.onnxruntime_backend import OnnxRuntimeCudaBackend

    return OnnxRuntimeCudaBackend


def _reserved(name: str) -> Callable[[], type[Backend]]:
    def loader() -> type[Backend]:
        raise BackendUnavailable(
            f"the {name} backend is part of the GPU path and not in this build yet; "
            "use --backend onnxruntime (or auto)"
        )

    return loader


# Fastest first: ``auto`` takes the first one whose probe passes.
_LOADERS: dict[str, Callable[[], type[Backend]]] = {
    "tensorrt": _reserved("tensorrt"),
    "onnxruntime-cuda": _onnxruntime_cuda,
    "torch": _reserved("torch"),
    "onnxruntime": _onnxruntime,
}
BACKEND_NAMES: tuple[str, ...] = ("auto", *_LOADERS)


def _probe(name: str) -> tuple[type[Backend] | None, str | None]:
    try:
        cls = _LOADERS[name]()
    except BackendUnavailable as exc:
        return None, str(exc)
    except ImportError as exc:
        return None, f"import failed: {exc}"
    return cls, cls.probe()


def available_backends() -> dict[str, str | None]:
    """Every backend name → None if usable here, else the reason it is not."""
    return {name: _probe(name)[1] for name in _LOADERS}


def get_backend(name: str = "auto", *, threads: int = 0) -> Backend:
    """Instantiate backend ``name``; ``auto`` picks the fastest usable one and logs why."""
    if name == "auto":
        reasons: list[str] = []
        for candidate in _LOADERS:
            cls, why = _probe(candidate)
            if cls is not None and why is None:
                log.info("backend auto → %s (%s)", candidate, "; ".join(reasons) or "first choice")
                return _make(cls, threads)
            reasons.append(f"{candidate}: {why}")
        raise BackendUnavailable("no inference backend is usable: " + "; ".join(reasons))
    if name not in _LOADERS:
        raise BackendUnavailable(
            f"unknown backend {name!r}; choose one of {', '.join(BACKEND_NAMES)}"
        )
    cls, why = _probe(name)
    if cls is None or why is not None:
        raise BackendUnavailable(f"backend {name} is not usable here: {why}")
    return _make(cls, threads)


def _make(cls: type[Backend], threads: int) -> Backend:
    from agecast.inference.onnxruntime_backend import OnnxRuntimeBackend

    if issubclass(cls, OnnxRuntimeBackend):
        return cls(threads=threads)
    return cls()
