"""Triton backend: the identity's model runs on an NVIDIA Triton Inference Server.

agecast keeps capture, faces, paste-back, encode and the monitor; only the identity's network
crosses to Triton (gRPC through ``tritonclient``, imported here and nowhere else). Every other
model (detector, landmarks, recogniser) goes to the local backend named by ``triton_local``.

- The model is found by name and version (:mod:`agecast.inference.triton_naming`): the version
  is taken from the sha256 of the ONNX bytes agecast checked, so Triton runs exactly them.
- On the same host (a loopback URL, or ``triton_shm = "on"``) tensors travel through system
  shared memory (POSIX shm regions registered with the server); otherwise inside the gRPC
  messages.
- Calls go on one gRPC stream per connection (a unary call a frame opened an HTTP/2 stream
  each time). A call waits for its reply at most ``triton_timeout_ms``; one that fails or times
  out raises :class:`BackendError`: the FX fails open (the aged side shows the raw frame
  flagged, counted). The link is then dropped (the stream cancelled: nothing waits on a hung
  server); calls fail at once (no waiting on a dead server) until ``triton_retry_ms`` has
  passed, then one call reconnects (new channel, model check, shared memory registered again: a
  restarted server forgot it, new stream) — so agecast recovers by itself.
- Tensor specs come from the ONNX file itself, so an identity loads (and its contract is
  checked) while Triton is still down; it starts working when the server answers.
- Tensors travel as the served model's config says (its ``agecast_wire``,
  :mod:`agecast.inference.triton_wire`): the face crop and the results as 8-bit codes or half
  floats, converted here on the way in and out; float32 where the config says nothing.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
import traceback
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import cv2
import numpy as np
import torch

from agecast.errors import BackendError, BackendUnavailable
from agecast.inference.base import Backend, Model, TensorSpec
from agecast.inference.triton_naming import (
    TRITON_DATATYPES,
    TritonConfig,
    file_version,
    identity_of,
    model_name,
)
from agecast.inference.triton_wire import WIRE_PARAMETER, Wire, version_wire, wire_specs

log = logging.getLogger(__name__)


def _import_client() -> tuple[Any, Any]:
    try:
        import tritonclient.grpc as grpcclient
        import tritonclient.utils.shared_memory as shm
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise BackendUnavailable(
            f"tritonclient is not installed ({exc}): pip install 'tritonclient[grpc]'"
        ) from exc
    return grpcclient, shm


def onnx_specs(path: Path) -> tuple[list[TensorSpec], list[TensorSpec]]:
    """Inputs and outputs an ONNX file declares (its weights are not read)."""
    import onnx
    from onnx import helper

    try:
        graph = onnx.load(str(path), load_external_data=False).graph
    except Exception as exc:  # onnx raises its own untyped errors
        raise BackendError(f"{path}: not a readable ONNX model ({exc})") from exc
    weights = {t.name for t in graph.initializer}

    def spec(value: Any) -> TensorSpec:
        kind = value.type.tensor_type
        dims = tuple(d.dim_value if d.HasField("dim_value") else None for d in kind.shape.dim)
        dtype = str(np.dtype(helper.tensor_dtype_to_np_dtype(kind.elem_type)))
        return TensorSpec(value.name, dims, dtype)

    inputs = [spec(v) for v in graph.input if v.name not in weights]
    return inputs, [spec(v) for v in graph.output]


@dataclass
class TritonStats:
    """What one model's link did: calls made, failed (timeouts among them), refused while the
    link was down, and reconnects."""

    calls: int = 0
    failures: int = 0
    timeouts: int = 0
    skipped: int = 0
    connects: int = 0
    last_error: str = ""
    seconds: list[float] = field(default_factory=list, repr=False)


@dataclass
class _ShmPlan:
    """A shared-memory call of one set of input shapes, built once: the gRPC request's inputs
    and requested outputs (their places in the regions set) and tensors viewing those places
    (an output of a variable shape has none: it comes in the gRPC reply)."""

    requests: list[Any] = field(default_factory=list)
    wanted: list[Any] = field(default_factory=list)
    inputs: list[torch.Tensor] = field(default_factory=list)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)


class _Regions:
    """One input and one output system shared-memory region for a model. A region that must
    grow is replaced by one of a new name (a mapping still viewed somewhere cannot close: it is
    never reused under the old name at the wrong size)."""

    def __init__(self, shm: Any, tag: str) -> None:
        self._shm = shm
        self.tag = tag
        self.handles: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}
        self.names: dict[str, str] = {}
        self._made = 0

    def fits(self, kind: str, size: int) -> bool:
        return kind in self.handles and self.sizes.get(kind, 0) >= size

    def ensure(self, client: Any, kind: str, size: int) -> None:
        """A region for ``kind`` (in/out) of at least ``size`` bytes, registered with ``client``
        (a bigger one replaces it: drop every view of the old one first)."""
        if self.fits(kind, size):
            return
        self.drop(client, kind)
        self._made += 1
        name = f"{self.tag}-{kind}{self._made}"
        self.handles[kind] = self._shm.create_shared_memory_region(name, f"/{name}", size)
        self.sizes[kind] = size
        self.names[kind] = name
        client.register_system_shared_memory(name, f"/{name}", size)

    def view(self, kind: str, dtype: str, shape: list[int], offset: int) -> torch.Tensor:
        """A tensor over ``shape`` × ``dtype`` at ``offset`` in region ``kind`` (no copy)."""
        array = self._shm.get_contents_as_numpy(self.handles[kind], np.dtype(dtype), shape, offset)
        return torch.from_numpy(array)

    def register(self, client: Any) -> None:
        """Register every region again: a restarted server has none, and one that only timed
        out still has them (registering a name twice is an error)."""
        for kind, size in self.sizes.items():
            name = self.names[kind]
            try:
                client.unregister_system_shared_memory(name)
            except Exception as exc:  # not registered there: nothing to undo
                log.debug("unregistering %s before registering it: %s", name, exc)
            client.register_system_shared_memory(name, f"/{name}", size)

    def drop(self, client: Any | None, kind: str) -> None:
        handle = self.handles.pop(kind, None)
        self.sizes.pop(kind, None)
        name = self.names.pop(kind, None)
        if handle is None:
            return
        if client is not None:
            try:
                client.unregister_system_shared_memory(name)
            except Exception as exc:  # the server may be gone: its registrations went with it
                log.debug("unregistering %s: %s", name, exc)
        self._shm.destroy_shared_memory_region(handle)

    def close(self, client: Any | None) -> None:
        for kind in list(self.handles):
            self.drop(client, kind)


class TritonModel(Model):
    """A model served by Triton, called from the pipeline's device thread."""

    def __init__(
        self,
        config: TritonConfig,
        name: str,
        version: int,
        inputs: Sequence[TensorSpec],
        outputs: Sequence[TensorSpec],
        label: str,
    ) -> None:
        self.grpc, self._shm = _import_client()
        self.config = config
        self.name = name
        self.version = version
        self.inputs = list(inputs)
        self.outputs = list(outputs)
        self.label = label
        self.stats = TritonStats()
        self._lock = threading.Lock()
        self._client: Any | None = None
        self._retry_at = 0.0
        # per-sample output shapes Triton declares (None: a variable dim, via the gRPC reply)
        self._out_shapes: dict[str, tuple[int, ...] | None] = {}
        tag = f"agecast-{os.getpid()}-{id(self):x}"
        self._regions = _Regions(self._shm, tag) if config.use_shm else None
        self._plans: dict[tuple[tuple[int, ...], ...], _ShmPlan] = {}
        self._version_text = str(version)
        self._wire: Wire = {}
        self._codecs: dict[tuple[str, int], tuple[torch.Tensor, torch.Tensor]] = {}
        self._in_specs = list(self.inputs)  # as they travel (the wire's dtypes)
        self._out_specs = list(self.outputs)
        self._replies: queue.Queue[tuple[Any, Any]] = queue.Queue()
        self._sent = 0
        self._closed = False

    @property
    def connected(self) -> bool:
        return self._client is not None

    def _run(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        with self._lock:
            if self._closed:
                raise BackendError(f"{self.label}: the Triton model was closed")
            client = self._link()
            start = time.perf_counter()
            try:
                result = self._infer(client, feeds)
            except Exception as exc:
                # the failed call's frames hold tensors viewing the shared memory: a kept
                # error must not keep them (a region that grows later is unmapped)
                traceback.clear_frames(exc.__traceback__)
                self._fail(exc)
                raise BackendError(
                    f"{self.label}: Triton at {self.config.url} failed ({_reason(exc)}); "
                    f"showing raw, retrying in {self.config.retry_ms} ms"
                ) from exc
            self.stats.calls += 1
            self.stats.seconds.append(time.perf_counter() - start)
            del self.stats.seconds[:-1000]
            return result

    def _link(self) -> Any:
        """The connected client, connecting when the retry time has come; else BackendError."""
        if self._client is not None:
            return self._client
        now = time.monotonic()
        if now < self._retry_at:
            self.stats.skipped += 1
            raise BackendError(
                f"{self.label}: Triton at {self.config.url} is unreachable "
                f"({self.stats.last_error}); retrying in {(self._retry_at - now) * 1e3:.0f} ms"
            )
        try:
            self._client = self._connect()
        except Exception as exc:
            self._fail(exc)
            raise BackendError(
                f"{self.label}: cannot reach model {self.name} version {self.version} on "
                f"Triton at {self.config.url} ({_reason(exc)}); showing raw, retrying in "
                f"{self.config.retry_ms} ms"
            ) from exc
        return self._client

    def _connect(self) -> Any:
        timeout = self.config.timeout_ms / 1e3
        client = self.grpc.InferenceServerClient(self.config.target)
        try:
            version = str(self.version)
            if not client.is_model_ready(self.name, version, client_timeout=timeout):
                raise BackendError(
                    f"Triton serves no ready version {version} of {self.name} (this ONNX's "
                    "sha256): write the repository again with `agecast triton repo` and let "
                    "Triton load it"
                )
            meta = client.get_model_metadata(
                self.name, version, as_json=True, client_timeout=timeout
            )
            self._out_shapes = {
                o["name"]: _per_sample([int(d) for d in o["shape"]]) for o in meta["outputs"]
            }
            missing = [s.name for s in self.outputs if s.name not in self._out_shapes]
            if missing:
                raise BackendError(f"Triton's {self.name} lacks outputs {missing}")
            self._use_wire(client, meta, timeout)
            if self._regions is not None:
                self._regions.register(client)
            replies: queue.Queue[tuple[Any, Any]] = queue.Queue()
            client.start_stream(callback=lambda result, error: replies.put((result, error)))
        except BaseException:
            _close_client(client)
            raise
        self._replies = replies
        self.stats.connects += 1
        log.info(
            "%s runs on Triton %s as %s version %d (%s)",
            self.label,
            self.config.target,
            self.name,
            self.version,
            "shared memory" if self._regions is not None else "tensors over gRPC",
        )
        return client

    def _use_wire(self, client: Any, meta: dict[str, Any], timeout: float) -> None:
        """How this version's tensors travel (its config's ``agecast_wire``), checked against
        the types Triton declares for them."""
        config = client.get_model_config(
            self.name, str(self.version), as_json=True, client_timeout=timeout
        )
        parameter = config.get("config", {}).get("parameters", {}).get(WIRE_PARAMETER, {})
        wire = version_wire(parameter.get("string_value"), self.version, self.name)
        ins, outs = wire_specs(self.inputs, wire), wire_specs(self.outputs, wire)
        declared = {t["name"]: t["datatype"] for t in (*meta["inputs"], *meta["outputs"])}
        for spec in (*ins, *outs):
            want = _datatype(spec.dtype)
            if spec.name in declared and declared[spec.name] != want:
                raise BackendError(
                    f"Triton's {self.name} version {self.version} declares {spec.name} as "
                    f"{declared[spec.name]}, but its {WIRE_PARAMETER} says {want}: write the "
                    "repository again with `agecast triton repo`"
                )
        if wire != self._wire:
            self._plans.clear()  # laid out for the other wire's sizes
            self._codecs.clear()
        self._wire, self._in_specs, self._out_specs = wire, ins, outs

    def _codec(self, name: str, rank: int) -> tuple[torch.Tensor, torch.Tensor]:
        """(lo, step) of an 8-bit tensor, shaped to broadcast over ``rank`` dimensions."""
        key = (name, rank)
        if key not in self._codecs:
            entry = self._wire[name]
            shape = entry.broadcast_shape(rank)
            lo = torch.tensor(entry.lo, dtype=torch.float32).reshape(shape)
            step = torch.tensor(entry.step, dtype=torch.float32).reshape(shape)
            self._codecs[key] = (lo, step)
        return self._codecs[key]

    def _encode(self, name: str, tensor: torch.Tensor, out: torch.Tensor) -> None:
        """``tensor`` written into ``out`` as it travels: 8-bit codes round((x − lo) / step),
        clamped to 0–255, or converted by the copy (half floats, or as it is)."""
        entry = self._wire.get(name)
        if entry is None or entry.dtype != "uint8":
            out.copy_(tensor)
            return
        low, size = entry.lo[0], entry.step[0]
        uniform = len(set(entry.lo)) == 1 and len(set(entry.step)) == 1
        if (
            uniform
            and tensor.dtype == torch.float32
            and tensor.device.type == "cpu"
            and tensor.is_contiguous()
            and out.is_contiguous()
            and tensor.numel() > 0
            and float(tensor.min()) >= low  # OpenCV's conversion takes |x|: none may be below
        ):
            # one pass, 16 µs for a 256² crop against 150 µs for torch's four
            src = tensor.detach().numpy().reshape(-1, tensor.shape[-1])
            cv2.convertScaleAbs(
                src, out.numpy().reshape(-1, out.shape[-1]), alpha=1 / size, beta=-low / size
            )
            return
        lo, step = self._codec(name, tensor.ndim)
        value = tensor.detach().to("cpu", torch.float32)  # a GPU crop: the codes go to host memory
        out.copy_(torch.sub(value, lo).div_(step).round_().clamp_(0, 255))

    def _decode(self, name: str, tensor: torch.Tensor) -> torch.Tensor:
        """A tensor as it came (viewing shared memory, or a reply's buffer) back in the model's
        own float32: a new tensor, never a view."""
        entry = self._wire.get(name)
        if entry is None:
            return tensor.clone()
        if entry.dtype == "float16":
            return tensor.float()
        lo, step = self._codec(name, tensor.ndim)
        value = tensor.float().mul_(step)
        return value.add_(lo) if any(entry.lo) else value

    def _fail(self, exc: BaseException) -> None:
        self.stats.failures += 1
        self.stats.last_error = _reason(exc)
        if "Deadline" in self.stats.last_error or "timed out" in self.stats.last_error.lower():
            self.stats.timeouts += 1
        if self._client is not None:
            client, self._client = self._client, None
            _close_client(client)
        self._retry_at = time.monotonic() + self.config.retry_ms / 1e3

    def _infer(self, client: Any, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self._regions is None:
            return self._infer_grpc(client, feeds)
        key = tuple(tuple(feeds[s.name].shape) for s in self.inputs)
        plan = self._plans.get(key) or self._plan(client, self._regions, key)
        for view, spec in zip(plan.inputs, self.inputs, strict=True):
            self._encode(spec.name, feeds[spec.name], view)  # into the memory Triton reads
        result = self._call(client, plan.requests, plan.wanted)
        return {
            spec.name: self._decode(spec.name, plan.outputs[spec.name])
            if spec.name in plan.outputs
            else self._decode(spec.name, _from_reply(result, spec.name))
            for spec in self.outputs
        }

    def _plan(
        self, client: Any, regions: _Regions, shapes: tuple[tuple[int, ...], ...]
    ) -> _ShmPlan:
        """The requests of a call with these input shapes, placed in the shared-memory regions,
        and tensors viewing where each input and output lies there. Built on the first call
        of each shape and kept: a call then only copies its inputs in and its outputs out."""
        batch = shapes[0][0] if shapes and shapes[0] else 1
        ins = [(spec, list(shape)) for spec, shape in zip(self._in_specs, shapes, strict=True)]
        outs: list[tuple[TensorSpec, list[int] | None]] = []
        for spec in self._out_specs:
            per_sample = self._out_shapes.get(spec.name)
            outs.append((spec, None if per_sample is None else [batch, *per_sample]))
        in_size = sum(_nbytes(spec, shape) for spec, shape in ins)
        out_size = sum(_nbytes(spec, shape) for spec, shape in outs if shape is not None)
        if not regions.fits("in", in_size) or (out_size and not regions.fits("out", out_size)):
            self._plans.clear()  # the views of every plan go with the regions they view
            regions.ensure(client, "in", in_size)
            if out_size:
                regions.ensure(client, "out", out_size)
        plan = _ShmPlan()
        offset = 0
        for spec, shape in ins:
            size = _nbytes(spec, shape)
            request = self.grpc.InferInput(spec.name, shape, _datatype(spec.dtype))
            request.set_shared_memory(regions.names["in"], size, offset)
            plan.requests.append(request)
            plan.inputs.append(regions.view("in", spec.dtype, shape, offset))
            offset += size
        offset = 0
        for spec, out_shape in outs:
            wanted = self.grpc.InferRequestedOutput(spec.name)
            if out_shape is not None:  # else a variable dimension: it comes in the gRPC reply
                size = _nbytes(spec, out_shape)
                wanted.set_shared_memory(regions.names["out"], size, offset)
                plan.outputs[spec.name] = regions.view("out", spec.dtype, out_shape, offset)
                offset += size
            plan.wanted.append(wanted)
        self._plans[shapes] = plan
        return plan

    def _infer_grpc(
        self, client: Any, feeds: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Tensors inside the gRPC messages (no shared memory: Triton on another host)."""
        requests = []
        for spec in self._in_specs:
            feed = feeds[spec.name].detach().cpu()
            wired = torch.empty(feed.shape, dtype=getattr(torch, spec.dtype))
            self._encode(spec.name, feed, wired)
            array = wired.numpy()
            request = self.grpc.InferInput(spec.name, list(array.shape), _datatype(spec.dtype))
            request.set_data_from_numpy(array)
            requests.append(request)
        wanted = [self.grpc.InferRequestedOutput(spec.name) for spec in self.outputs]
        result = self._call(client, requests, wanted)
        return {
            spec.name: self._decode(spec.name, _from_reply(result, spec.name))
            for spec in self.outputs
        }

    def _call(self, client: Any, requests: list[Any], wanted: list[Any]) -> Any:
        """One request on the connection's gRPC stream and its reply, within the timeout.
        A stream, not one unary call a frame: each unary call opens an HTTP/2 stream of its own
        (measured on loopback: ≈ 0.2 ms more per call, docs/triton.md)."""
        self._sent += 1
        sent = str(self._sent)
        try:
            client.async_stream_infer(
                self.name,
                requests,
                model_version=self._version_text,
                outputs=wanted,
                request_id=sent,
            )
        except Exception:
            if not self._replies.empty():  # the stream broke: its reason came to the callback
                _, error = self._replies.get_nowait()
                if error is not None:
                    raise error from None
            raise
        try:
            result, error = self._replies.get(timeout=self.config.timeout_ms / 1e3)
        except queue.Empty:
            raise TimeoutError(f"no reply in {self.config.timeout_ms} ms: timed out") from None
        if error is not None:
            raise error
        answered = result.get_response().id
        if answered != sent:  # one call at a time, and a failed stream is never reused
            raise BackendError(f"Triton answered request {answered!r} to request {sent}")
        return result

    def status(self) -> dict[str, Any]:
        """The link's state and counts (live/status.py's TritonStatus)."""
        s = self.stats
        return {
            "url": self.config.url,
            "model": self.name,
            "version": self.version,
            "connected": self.connected,
            "calls": s.calls,
            "failures": s.failures,
            "timeouts": s.timeouts,
            "skipped": s.skipped,
            "connects": s.connects,
            "last_error": s.last_error,
            "wire": {name: entry.dtype for name, entry in sorted(self._wire.items())},
        }

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._plans.clear()  # drop the views before the regions they view
            if self._regions is not None:
                self._regions.close(self._client)
            if self._client is not None:
                _close_client(self._client)
                self._client = None


def _per_sample(shape: list[int]) -> tuple[int, ...] | None:
    """The shape after the batch axis, or None where a dimension is variable."""
    rest = shape[1:]
    return None if any(d < 0 for d in rest) else tuple(rest)


def _close_client(client: Any) -> None:
    """Close a client and its stream, cancelling what is in flight (a plain close waits for
    the replies: forever, from a server that hangs)."""
    try:
        client.stop_stream(cancel_requests=True)
        client.close()
    except Exception as exc:  # a dead channel may complain on close
        log.debug("closing the Triton client: %s", exc)


def _nbytes(spec: TensorSpec, shape: list[int] | None) -> int:
    return 0 if shape is None else int(np.prod(shape)) * np.dtype(spec.dtype).itemsize


def _from_reply(result: Any, name: str) -> torch.Tensor:
    """An output of a gRPC reply, viewing the reply's (read-only) buffer: decode it into a
    tensor of its own before anything writes."""
    array = result.as_numpy(name)
    if array is None:
        raise BackendError(f"Triton's reply has no output {name}")
    with warnings.catch_warnings():  # torch warns that the buffer is not writable
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(array)


def _datatype(dtype: str) -> str:
    try:
        return TRITON_DATATYPES[dtype]
    except KeyError:
        raise BackendError(f"Triton has no datatype for {dtype}") from None


def _reason(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]


class TritonBackend(Backend):
    """Identities on a Triton server; every other model on a local backend (``config.local``)."""

    name: ClassVar[str] = "triton"

    def __init__(self, config: TritonConfig, local: Backend) -> None:
        config.target  # noqa: B018 - a bad URL fails here, at startup, with what to give
        self.config = config
        self.local = local
        self.models: list[TritonModel] = []
        self.why = f"named by the backend setting (Triton at {config.url}; others on {local.name})"

    @classmethod
    def probe(cls) -> str | None:
        try:
            _import_client()
        except BackendUnavailable as exc:
            return str(exc)
        return None

    def load(self, model: Path | bytes, *, label: str) -> Model:
        identity = identity_of(label)
        if identity is None:
            return self.local.load(model, label=label)
        if not isinstance(model, Path):
            raise BackendError(f"{label}: the Triton backend loads identities from their file")
        if not model.is_file():
            raise BackendError(f"{label}: model file {model} does not exist")
        _, version = file_version(model)
        inputs, outputs = onnx_specs(model)
        loaded = TritonModel(self.config, model_name(identity), version, inputs, outputs, label)
        self.models.append(loaded)
        return loaded
