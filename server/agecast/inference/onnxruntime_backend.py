"""onnxruntime backend (CPU, and the CUDA execution provider where onnxruntime-gpu is installed).

onnxruntime is imported here and nowhere else.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import torch

from agecast.errors import BackendError, BackendUnavailable
from agecast.inference.base import Backend, Model, TensorSpec

log = logging.getLogger(__name__)

_ORT_DTYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(uint8)": "uint8",
    "tensor(int64)": "int64",
    "tensor(int32)": "int32",
}


def _import_ort() -> Any:
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendUnavailable(
            "onnxruntime is not installed: pip install 'agecast[cpu]' (or '[gpu]' on a CUDA box)"
        ) from exc
    return onnxruntime


class OnnxRuntimeModel(Model):
    def __init__(self, session: Any, label: str) -> None:
        self._session = session
        self.label = label
        self.inputs = [_spec(i) for i in session.get_inputs()]
        self.outputs = [_spec(o) for o in session.get_outputs()]
        self._output_names = [o.name for o in self.outputs]

    def _run(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        arrays = {name: t.detach().cpu().contiguous().numpy() for name, t in feeds.items()}
        try:
            results = self._session.run(self._output_names, arrays)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendError(f"{self.label}: onnxruntime run failed: {exc}") from exc
        return {
            name: torch.from_numpy(np.ascontiguousarray(r))
            for name, r in zip(self._output_names, results, strict=True)
        }

    def close(self) -> None:
        self._session = None


def _spec(node: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in node.shape)
    return TensorSpec(node.name, shape, _ORT_DTYPES.get(node.type, node.type))


class OnnxRuntimeBackend(Backend):
    """onnxruntime on the CPU execution provider."""

    name: ClassVar[str] = "onnxruntime"
    providers: ClassVar[tuple[str, ...]] = ("CPUExecutionProvider",)

    def __init__(self, threads: int = 0) -> None:
        # 0 lets onnxruntime choose; the pipeline passes a number to share a small box fairly.
        self.threads = threads

    @classmethod
    def probe(cls) -> str | None:
        try:
            ort = _import_ort()
        except BackendUnavailable as exc:
            return str(exc)
        missing = [p for p in cls.providers if p not in ort.get_available_providers()]
        if missing:
            return (
                f"onnxruntime {ort.__version__} lacks {', '.join(missing)} "
                f"(has {', '.join(ort.get_available_providers())})"
            )
        return None

    def load(self, model: Path | bytes, *, label: str) -> Model:
        ort = _import_ort()
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        # Spinning pool threads steal the cores the capture and device threads need between
        # runs: detect p95 went 21 → 14.5 ms with it off in `agecast bench` on 2 cores.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        source = str(model) if isinstance(model, Path) else model
        if isinstance(model, Path) and not model.is_file():
            raise BackendError(f"{label}: model file {model} does not exist")
        try:
            session = ort.InferenceSession(source, options, providers=list(self.providers))
        except Exception as exc:
            raise BackendError(
                f"{label}: onnxruntime cannot load the model ({exc}); "
                "check the file is a complete ONNX model"
            ) from exc
        log.info("%s loaded on onnxruntime %s %s", label, ort.__version__, self.providers[0])
        return OnnxRuntimeModel(session, label)


class OnnxRuntimeCudaBackend(OnnxRuntimeBackend):
    """onnxruntime-gpu with the CUDA execution provider (CPU as fallback for unsupported ops)."""

    name: ClassVar[str] = "onnxruntime-cuda"
    device: ClassVar[str] = "cuda"
    providers: ClassVar[tuple[str, ...]] = ("CUDAExecutionProvider", "CPUExecutionProvider")

    @classmethod
    def probe(cls) -> str | None:
        if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
            return "CUDA_VISIBLE_DEVICES is empty"
        return super().probe()
