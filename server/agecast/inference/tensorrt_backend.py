"""Native TensorRT backend: plans from the engine cache, torch CUDA tensors bound by pointer.

Written against the TensorRT 10 Python API (name-based tensors: ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``; ``build_serialized_network`` with an optimisation
profile and a timing cache). **It has not run anywhere yet**: TensorRT cannot be installed on the
development machines nor on the lent GPU machines (see FACTS.md). What is tested is what
surrounds it — plan keys, the cache, the lock, prune, and that this backend reports itself
unavailable cleanly without TensorRT.

``tensorrt`` is imported in this module only, and only when the backend is probed or used.
Plans are built offline by ``agecast engines build`` (:func:`build_plan`); ``load`` only looks a
plan up and tells the operator to build it when it is missing — never on a live frame.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import torch

from agecast.errors import BackendError, BackendUnavailable
from agecast.inference.base import Backend, Model, TensorSpec
from agecast.inference.engines import (
    DEFAULT_MAX_BATCH,
    EngineCache,
    GpuTarget,
    PlanKey,
    Precision,
    Profile,
    input_profiles,
)

log = logging.getLogger(__name__)

WORKSPACE_BYTES = 2 << 30


def import_tensorrt() -> Any:
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailable(
            f"TensorRT is not installed ({exc}); the tensorrt backend is part of the GPU path: "
            "use the docker/ image on a GPU box, or --backend onnxruntime-cuda / torch / auto"
        ) from exc
    return tensorrt


def current_target() -> GpuTarget:
    """TensorRT version and GPU 0 here; BackendUnavailable if either is missing."""
    trt = import_tensorrt()
    if not torch.cuda.is_available():
        raise BackendUnavailable("TensorRT needs an NVIDIA GPU and torch sees none")
    major, minor = torch.cuda.get_device_capability(0)
    return GpuTarget(str(trt.__version__), torch.cuda.get_device_name(0), f"{major}.{minor}")


def _logger(trt: Any) -> Any:
    return trt.Logger(trt.Logger.WARNING)


def build_plan(
    onnx_data: bytes,
    profiles: Mapping[str, Profile],
    *,
    fp16: bool,
    timing_cache: Path,
    label: str,
) -> bytes:
    """ONNX → serialised plan, reading and updating ``timing_cache``. Call it under the
    engine cache's lock (``agecast engines build`` does)."""
    trt = import_tensorrt()
    logger = _logger(trt)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_data):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise BackendError(f"{label}: TensorRT cannot parse the ONNX model: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    for name, (lo, opt, hi) in profiles.items():
        profile.set_shape(name, lo, opt, hi)
    config.add_optimization_profile(profile)
    cached = timing_cache.read_bytes() if timing_cache.is_file() else b""
    cache = config.create_timing_cache(cached)
    config.set_timing_cache(cache, False)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise BackendError(f"{label}: TensorRT failed to build a plan (see its log above)")
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(serialized)


_TRT_TO_TORCH = {
    "FLOAT": torch.float32,
    "HALF": torch.float16,
    "INT32": torch.int32,
    "INT64": torch.int64,
    "UINT8": torch.uint8,
    "INT8": torch.int8,
    "BOOL": torch.bool,
}


class TensorRTModel(Model):
    """One deserialised plan and its execution context, run on the caller's CUDA stream.

    Inputs must be CUDA tensors (a CPU tensor is moved once, with a warning); outputs are
    allocated by torch on the device and bound by ``data_ptr()``.
    """

    def __init__(self, engine: Any, label: str) -> None:
        trt = import_tensorrt()
        self.label = label
        self._engine = engine
        self._context = engine.create_execution_context()
        self._device = torch.device("cuda", torch.cuda.current_device())
        inputs: list[TensorSpec] = []
        outputs: list[TensorSpec] = []
        self._dtypes: dict[str, torch.dtype] = {}
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            dtype = _TRT_TO_TORCH.get(engine.get_tensor_dtype(name).name, torch.float32)
            self._dtypes[name] = dtype
            shape = tuple(d if d >= 0 else None for d in engine.get_tensor_shape(name))
            spec = TensorSpec(name, shape, str(dtype).removeprefix("torch."))
            is_input = engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (inputs if is_input else outputs).append(spec)
        self.inputs, self.outputs = inputs, outputs
        self._warned = False

    def _run(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self._context is None:
            raise BackendError(f"{self.label}: the model was closed")
        stream = torch.cuda.current_stream(self._device)
        held: list[torch.Tensor] = []  # keep every bound buffer alive until the run is queued
        for spec in self.inputs:
            t = feeds[spec.name]
            if not t.is_cuda:
                if not self._warned:
                    log.warning("%s: input %s came from the host", self.label, spec.name)
                    self._warned = True
                t = t.to(self._device, non_blocking=True)
            t = t.contiguous()
            held.append(t)
            self._context.set_input_shape(spec.name, tuple(t.shape))
            self._context.set_tensor_address(spec.name, t.data_ptr())
        results: dict[str, torch.Tensor] = {}
        for spec in self.outputs:
            shape = tuple(self._context.get_tensor_shape(spec.name))
            out = torch.empty(shape, dtype=self._dtypes[spec.name], device=self._device)
            self._context.set_tensor_address(spec.name, out.data_ptr())
            results[spec.name] = out
        if not self._context.execute_async_v3(stream.cuda_stream):
            raise BackendError(f"{self.label}: TensorRT execute_async_v3 failed")
        for t in held:
            t.record_stream(stream)
        return results

    def close(self) -> None:
        self._context = None
        self._engine = None


class TensorRTBackend(Backend):
    """Plans from :class:`EngineCache` (fp16 preferred, else fp32); never builds on load."""

    name: ClassVar[str] = "tensorrt"
    device: ClassVar[str] = "cuda"

    def __init__(
        self, engines_dir: Path | None = None, *, max_batch: int = DEFAULT_MAX_BATCH
    ) -> None:
        self.cache = EngineCache(engines_dir)
        self.max_batch = max_batch
        self._runtime: Any = None

    @classmethod
    def probe(cls) -> str | None:
        try:
            current_target()
        except BackendUnavailable as exc:
            return str(exc)
        return None

    def plan_keys(self, data: bytes, target: GpuTarget) -> list[PlanKey]:
        sha = hashlib.sha256(data).hexdigest()
        shapes = input_profiles(data, self.max_batch)
        order: tuple[Precision, ...] = ("fp16", "fp32")
        return [PlanKey.make(sha, target, p, shapes) for p in order]

    def load(self, model: Path | bytes, *, label: str) -> Model:
        trt = import_tensorrt()
        data = model.read_bytes() if isinstance(model, Path) else model
        target = current_target()
        keys = self.plan_keys(data, target)
        plan = next((p for p in map(self.cache.find, keys) if p is not None), None)
        if plan is None:
            raise BackendError(
                f"{label}: no TensorRT plan in {self.cache.root} for ONNX sha256 "
                f"{keys[0].onnx_sha256[:12]}… on {target.gpu_name} (TensorRT "
                f"{target.trt_version}); plans are built offline, never on a live frame: run "
                "`agecast engines build --all` (add --fp16 for half precision), then start again"
            )
        if self._runtime is None:
            self._runtime = trt.Runtime(_logger(trt))
        engine = self._runtime.deserialize_cuda_engine(plan.read_bytes())
        if engine is None:
            raise BackendError(
                f"{label}: TensorRT cannot deserialise {plan}; remove it and run "
                "`agecast engines build` again"
            )
        log.info("%s loaded on TensorRT %s from %s", label, target.trt_version, plan.name)
        return TensorRTModel(engine, label)
