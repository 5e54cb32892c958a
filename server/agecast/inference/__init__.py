"""Inference backends: one interface, several engines (onnxruntime now; TensorRT, torch later)."""

from agecast.inference.base import Backend, Model, TensorSpec
from agecast.inference.registry import BACKEND_NAMES, available_backends, get_backend

__all__ = ["BACKEND_NAMES", "Backend", "Model", "TensorSpec", "available_backends", "get_backend"]
