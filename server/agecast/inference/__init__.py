"""Inference backends: one interface, several engines (onnxruntime now; TensorRT, torch later).

The registry (and torch with it) is imported when first used, so a command that only reads
manifests (``agecast identity list``) starts fast.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from agecast.inference.base import Backend, Model, TensorSpec

if TYPE_CHECKING:
    from agecast.inference.registry import BACKEND_NAMES, available_backends, get_backend

_REGISTRY = {"BACKEND_NAMES", "available_backends", "get_backend"}


def __getattr__(name: str) -> Any:
    if name in _REGISTRY:
        from agecast.inference import registry

        return getattr(registry, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["BACKEND_NAMES", "Backend", "Model", "TensorSpec", "available_backends", "get_backend"]
