"""onnxruntime backend (CPU; with onnxruntime-gpu the TensorRT and CUDA execution providers).

onnxruntime is imported here and nowhere else. On CUDA, inputs and outputs are bound to torch
CUDA tensors by pointer (IO binding), so a crop already on the GPU is never copied to the host.
The GPU parts (providers, IO binding) have not run on the development machines: they have no
GPU, and the lent GPU machines have no onnxruntime-gpu.
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
        return self._run_host(feeds)

    def _run_host(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
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


class OnnxRuntimeCudaModel(OnnxRuntimeModel):
    """CUDA tensors in and out through IO binding (``data_ptr()``), no host copies.

    Outputs are allocated by torch with the input's batch size; an output with another dynamic
    axis cannot be sized beforehand and comes back through the host (logged once).
    ``stream`` is the CUDA stream the session was given; work queued by torch on another stream
    is waited for before the run.
    """

    def __init__(self, session: Any, label: str, device_id: int, stream: int | None) -> None:
        super().__init__(session, label)
        self._device = torch.device("cuda", device_id)
        self._stream = stream
        self._warned = False

    def _run(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if not all(t.is_cuda for t in feeds.values()):
            feeds = {k: t.to(self._device, non_blocking=True) for k, t in feeds.items()}
        batch = next(iter(feeds.values())).shape[0] if feeds else 1
        shapes = {}
        for spec in self.outputs:
            dims = [batch if i == 0 and d is None else d for i, d in enumerate(spec.shape)]
            if any(d is None for d in dims):
                if not self._warned:
                    log.warning("%s: output %s has a dynamic shape: via host", self.label, spec)
                    self._warned = True
                return {k: v.to(self._device) for k, v in self._run_host(feeds).items()}
            shapes[spec.name] = [int(d) for d in dims if d is not None]
        current = torch.cuda.current_stream(self._device)
        if current.cuda_stream != self._stream:
            current.synchronize()  # the session runs on its own stream
        binding = self._session.io_binding()
        inputs = {k: t.contiguous() for k, t in feeds.items()}
        for name, t in inputs.items():
            binding.bind_input(
                name, "cuda", self._device.index or 0, _np_dtype(t.dtype), list(t.shape),
                t.data_ptr(),
            )  # fmt: skip
        outputs: dict[str, torch.Tensor] = {}
        for spec in self.outputs:
            dtype = getattr(torch, spec.dtype, torch.float32)
            out = torch.empty(shapes[spec.name], dtype=dtype, device=self._device)
            binding.bind_output(
                spec.name, "cuda", self._device.index or 0, _np_dtype(dtype), list(out.shape),
                out.data_ptr(),
            )  # fmt: skip
            outputs[spec.name] = out
        try:
            self._session.run_with_iobinding(binding)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise BackendError(f"{self.label}: onnxruntime run failed: {exc}") from exc
        return outputs


def _np_dtype(dtype: torch.dtype) -> Any:
    return np.dtype(str(dtype).removeprefix("torch."))


def _spec(node: Any) -> TensorSpec:
    shape = tuple(d if isinstance(d, int) else None for d in node.shape)
    return TensorSpec(node.name, shape, _ORT_DTYPES.get(node.type, node.type))


class OnnxRuntimeBackend(Backend):
    """onnxruntime on the CPU execution provider."""

    name: ClassVar[str] = "onnxruntime"
    providers: ClassVar[tuple[str, ...]] = ("CPUExecutionProvider",)

    def __init__(self, threads: int = 0, engines_dir: Path | None = None) -> None:
        # 0 lets onnxruntime choose; the pipeline passes a number to share a small box fairly.
        self.threads = threads
        self.engines_dir = engines_dir

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
            session = ort.InferenceSession(source, options, providers=self._providers(ort))
        except Exception as exc:
            raise BackendError(
                f"{label}: onnxruntime cannot load the model ({exc}); "
                "check the file is a complete ONNX model"
            ) from exc
        log.debug(
            "%s loaded on onnxruntime %s %s", label, ort.__version__, session.get_providers()[0]
        )
        return self._model(session, label)

    def _providers(self, ort: Any) -> list[Any]:
        return list(self.providers)

    def _model(self, session: Any, label: str) -> Model:
        return OnnxRuntimeModel(session, label)


class OnnxRuntimeCudaBackend(OnnxRuntimeBackend):
    """onnxruntime-gpu: the TensorRT execution provider where onnxruntime finds TensorRT, then
    CUDA, then CPU for unsupported ops. TensorRT-EP engines and its timing cache are kept under
    ``<engines>/onnxruntime-trt`` (onnxruntime keys them itself); the first load of a model
    builds them, so run it once before going live (``agecast engines build`` does)."""

    name: ClassVar[str] = "onnxruntime-cuda"
    device: ClassVar[str] = "cuda"
    providers: ClassVar[tuple[str, ...]] = ("CUDAExecutionProvider", "CPUExecutionProvider")

    def __init__(
        self, threads: int = 0, engines_dir: Path | None = None, *, fp16: bool = True
    ) -> None:
        super().__init__(threads, engines_dir)
        self.fp16 = fp16
        self.device_id = 0
        self._stream: int | None = None

    @classmethod
    def probe(cls) -> str | None:
        if os.environ.get("CUDA_VISIBLE_DEVICES") == "":
            return "CUDA_VISIBLE_DEVICES is empty"
        if not torch.cuda.is_available():
            return "torch sees no CUDA device (frames are bound to torch CUDA tensors)"
        return super().probe()

    def _providers(self, ort: Any) -> list[Any]:
        return provider_list(
            ort.get_available_providers(),
            device_id=self.device_id,
            stream=self._stream_handle(),
            cache_dir=_trt_cache_dir(self.engines_dir),
            fp16=self.fp16,
        )

    def _stream_handle(self) -> int | None:
        # the pipeline's current stream at load time; the legacy default stream (0) is left to
        # onnxruntime's own stream
        handle = int(torch.cuda.current_stream(self.device_id).cuda_stream)
        self._stream = handle or None
        return self._stream

    def _model(self, session: Any, label: str) -> Model:
        return OnnxRuntimeCudaModel(session, label, self.device_id, self._stream)


def _trt_cache_dir(engines_dir: Path | None) -> Path:
    from agecast.inference.engines import default_engines_dir

    return (engines_dir or default_engines_dir()) / "onnxruntime-trt"


def provider_list(
    available: list[str], *, device_id: int, stream: int | None, cache_dir: Path, fp16: bool
) -> list[Any]:
    """(name, options) pairs for InferenceSession: TensorRT EP if present, CUDA, CPU."""
    cuda: dict[str, str] = {"device_id": str(device_id), "cudnn_conv_algo_search": "HEURISTIC"}
    if stream is not None:
        cuda["user_compute_stream"] = str(stream)
    providers: list[Any] = []
    if "TensorrtExecutionProvider" in available:
        cache_dir.mkdir(parents=True, exist_ok=True)
        trt: dict[str, str] = {
            "device_id": str(device_id),
            "trt_engine_cache_enable": "True",
            "trt_engine_cache_path": str(cache_dir),
            "trt_timing_cache_enable": "True",
            "trt_timing_cache_path": str(cache_dir),
            "trt_fp16_enable": str(fp16),
        }
        if stream is not None:
            trt["user_compute_stream"] = str(stream)
        providers.append(("TensorrtExecutionProvider", trt))
    providers.append(("CUDAExecutionProvider", cuda))
    providers.append("CPUExecutionProvider")
    return providers
