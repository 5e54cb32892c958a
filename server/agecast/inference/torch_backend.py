"""torch backend: our identity families run natively in torch (CUDA: fp16, channels_last, graphs).

An ``agecast-df`` or ``agecast-reage`` package's ``model.onnx`` holds the network's weights under
the names of its ``state_dict()`` (torch's exporter keeps parameter and buffer names), and its
manifest holds the network's ``family_config``. This backend reads the manifest beside the model
file (the one the package loader checked), rebuilds the network (``SwapNet`` or ``ReageNet``),
loads those weights and runs it in torch on the pipeline's device, so crops already on the GPU
never leave it. Tensors are named and ordered by the manifest's roles.

Bare ONNX helper models (the face detector, landmarks, ArcFace) run in torch too where their
graph is a plain convolution net (:mod:`agecast.inference.onnx_torch`: YuNet is), on CUDA by
default (``helpers="auto"``): detection then stays on the GPU beside the frame, with no
onnxruntime-gpu needed. Other graphs, and every helper on the CPU under ``auto``, go to
onnxruntime (``delegate=True``; onnxruntime's CPU build when its CUDA build is absent, said
in the log). Identity packages of other families are refused with a message naming the backend
to use.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal, TypeAlias

import torch
from pydantic import ValidationError

from agecast.errors import BackendError, BackendUnavailable, explain_fields
from agecast.inference.base import Backend, Model, TensorSpec

if TYPE_CHECKING:
    from agecast.manifest import Manifest, TensorRole

log = logging.getLogger(__name__)

Precision = Literal["auto", "fp32", "fp16"]
# bare ONNX helper models: torch where the graph allows (auto: on CUDA only) or onnxruntime
Helpers = Literal["auto", "torch", "onnxruntime"]


def _cuda_usable() -> bool:
    return torch.cuda.is_available()


class TorchModel(Model):
    """One of our networks on one device. Inputs may live anywhere; outputs stay on the device.

    ``inputs`` are in the network's argument order and ``outputs`` in its result order. On
    CUDA with ``cuda_graphs`` the forward pass is captured once per batch size (after a
    warm-up on a side stream) and replayed: inputs are copied into the graph's static buffers
    on the device, outputs are copied out, so nothing crosses to the host.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        *,
        label: str,
        device: torch.device,
        dtype: torch.dtype,
        inputs: list[TensorSpec],
        outputs: list[TensorSpec],
        cuda_graphs: bool,
    ) -> None:
        self.label = label
        self.device = device
        self.dtype = dtype
        self.inputs = inputs
        self.outputs = outputs
        self._net: torch.nn.Module | None = net
        self._face_in = inputs[0].name
        self._channels_last = device.type == "cuda"
        self._cuda_graphs = cuda_graphs and device.type == "cuda"
        self._graphs: dict[int, tuple[Any, dict[str, torch.Tensor], list[torch.Tensor]]] = {}

    def _prepare(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        out = {
            spec.name: feeds[spec.name].to(self.device, self.dtype, non_blocking=True)
            for spec in self.inputs
        }
        if self._channels_last:
            out[self._face_in] = out[self._face_in].contiguous(memory_format=torch.channels_last)
        return out

    def _forward(self, prepared: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        assert self._net is not None
        return list(self._net(*(prepared[spec.name] for spec in self.inputs)))

    def _run(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        if self._net is None:
            raise BackendError(f"{self.label}: the model was closed")
        prepared = self._prepare(feeds)
        # no_grad, not inference_mode: callers may edit outputs in place, which inference
        # tensors forbid outside inference mode
        with torch.no_grad():
            results = self._replay(prepared) if self._cuda_graphs else self._forward(prepared)
        return {
            spec.name: r.float().contiguous() for spec, r in zip(self.outputs, results, strict=True)
        }

    def _replay(self, prepared: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        batch = prepared[self._face_in].shape[0]
        entry = self._graphs.get(batch)
        if entry is None:
            entry = self._capture(prepared)
            self._graphs[batch] = entry
        graph, static_in, static_out = entry
        for name, t in prepared.items():
            static_in[name].copy_(t, non_blocking=True)
        graph.replay()
        # the graph's output buffers are overwritten by the next replay: hand out copies
        return [t.clone() for t in static_out]

    def _capture(
        self, prepared: Mapping[str, torch.Tensor]
    ) -> tuple[Any, dict[str, torch.Tensor], list[torch.Tensor]]:
        static_in = {name: t.clone() for name, t in prepared.items()}
        if self._channels_last:
            static_in[self._face_in] = static_in[self._face_in].contiguous(
                memory_format=torch.channels_last
            )
        side = torch.cuda.Stream(self.device)
        side.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side):
            for _ in range(3):  # cuDNN picks its kernels before capture
                self._forward(static_in)
        torch.cuda.current_stream(self.device).wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        # thread_local: the pipeline's other threads (detection, other cameras, the encoder's
        # download) keep using CUDA while this thread captures; "global" would fail their calls
        with torch.cuda.graph(graph, capture_error_mode="thread_local"):
            static_out = self._forward(static_in)
        log.info(
            "%s: captured a CUDA graph for batch %d", self.label, prepared[self._face_in].shape[0]
        )
        return graph, static_in, static_out

    def close(self) -> None:
        self._graphs.clear()
        self._net = None


class TorchBackend(Backend):
    """Our identity families in torch; bare ONNX helper models delegated to onnxruntime."""

    name: ClassVar[str] = "torch"
    device: ClassVar[str] = "cuda" if _cuda_usable() else "cpu"

    def __init__(
        self,
        *,
        device: str | None = None,
        precision: Precision = "auto",
        cuda_graphs: bool = True,
        delegate: bool = True,
        threads: int = 0,
        helpers: Helpers = "auto",
    ) -> None:
        self.torch_device = torch.device(device or ("cuda" if _cuda_usable() else "cpu"))
        if self.torch_device.type == "cuda" and not _cuda_usable():
            raise BackendError("the torch backend was asked for CUDA, but torch sees no GPU")
        if precision == "fp16" and self.torch_device.type != "cuda":
            raise BackendError("fp16 runs on CUDA only: use precision fp32 on the CPU")
        use_fp16 = precision == "fp16" or (precision == "auto" and self.torch_device.type == "cuda")
        self.dtype = torch.float16 if use_fp16 else torch.float32
        self.cuda_graphs = cuda_graphs
        self.delegate = delegate
        self.threads = threads
        self.helpers_in_torch = helpers == "torch" or (
            helpers == "auto" and self.torch_device.type == "cuda"
        )
        self._helper: Backend | None = None

    @classmethod
    def probe(cls) -> str | None:
        return None  # torch is a core dependency; CUDA is optional (CPU runs in fp32)

    def load(self, model: Path | bytes, *, label: str) -> Model:
        manifest = _manifest_beside(model)
        if manifest is None:
            why = "it is not an identity package's model"
            if self.helpers_in_torch:
                loaded = self._graph(model, label)
                if loaded is not None:
                    return loaded
                why += " and its graph has ops the torch runner lacks"
            return self._delegated(model, label, why)
        if manifest.family not in FAMILIES:
            raise BackendError(
                f"{label} is of family {manifest.family!r}: the torch backend runs "
                f"{_FAMILY_NAMES} identities; use --backend onnxruntime (or onnxruntime-cuda / "
                f"auto) for {manifest.family!r}"
            )
        assert isinstance(model, Path)
        return self._load_network(model, manifest, label)

    def _graph(self, model: Path | bytes, label: str) -> Model | None:
        """A bare ONNX model as a torch module (fp32) on this device, or None (logged) when
        its graph has ops :mod:`agecast.inference.onnx_torch` does not run."""
        from agecast.inference.onnx_torch import UnsupportedGraph, graph_module

        data = model.read_bytes() if isinstance(model, Path) else model
        try:
            net = graph_module(data)
        except UnsupportedGraph as exc:
            log.info("%s: not run in torch (%s)", label, exc)
            return None
        except BackendError as exc:
            raise BackendError(f"{label}: {exc}") from exc
        net = net.eval().to(self.torch_device)
        inputs = [TensorSpec(n, s) for n, s in zip(net.input_names, net.input_shapes, strict=True)]
        outputs = [
            TensorSpec(n, s) for n, s in zip(net.output_names, net.output_shapes, strict=True)
        ]
        return self._wrap(net, label, "its ONNX graph as torch ops", torch.float32, inputs, outputs)

    def _wrap(
        self,
        net: torch.nn.Module,
        label: str,
        what: str,
        dtype: torch.dtype,
        inputs: list[TensorSpec],
        outputs: list[TensorSpec],
    ) -> TorchModel:
        log.info(
            "%s (%s) loaded on torch %s %s (%s%s)",
            label,
            what,
            torch.__version__,
            self.torch_device,
            str(dtype).removeprefix("torch."),
            ", CUDA graphs" if self.cuda_graphs and self.torch_device.type == "cuda" else "",
        )
        return TorchModel(
            net,
            label=label,
            device=self.torch_device,
            dtype=dtype,
            inputs=inputs,
            outputs=outputs,
            cuda_graphs=self.cuda_graphs,
        )

    def _delegated(self, model: Path | bytes, label: str, why: str) -> Model:
        if not self.delegate:
            raise BackendError(
                f"{label}: the torch backend runs {_FAMILY_NAMES} identities only ({why})"
            )
        if self._helper is None:
            self._helper = self._helper_backend()
        log.info("%s: %s, so it runs on %s", label, why, self._helper.name)
        return self._helper.load(model, label=label)

    def _helper_backend(self) -> Backend:
        from agecast.inference.registry import get_backend

        if self.torch_device.type == "cuda":
            try:
                return get_backend("onnxruntime-cuda", threads=self.threads)
            except BackendUnavailable as exc:
                log.warning(
                    "helper models that torch cannot run go to onnxruntime on the CPU (%s); "
                    "each such run copies its input to the host",
                    exc,
                )
        return get_backend("onnxruntime", threads=self.threads)

    def _load_network(self, path: Path, manifest: Manifest, label: str) -> Model:
        where = path.parent / "manifest.json"
        config = manifest.family_config
        if config is None:
            raise BackendError(
                f"{where}: field family_config is missing; the torch backend rebuilds the "
                "network from it — re-export the package with agecast export"
            )
        try:
            net, input_roles, output_roles = FAMILIES[manifest.family](dict(config))
        except (TypeError, ValueError) as exc:
            raise BackendError(
                f"{where}: field family_config {dict(config)} does not describe an "
                f"{manifest.family} network ({exc})"
            ) from exc
        net.load_state_dict(_onnx_weights(path, net.state_dict(), manifest.family, label))
        net = net.eval().to(self.torch_device, self.dtype)
        if self.torch_device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        inputs = _specs(manifest, "inputs", input_roles, label)
        outputs = _specs(manifest, "outputs", output_roles, label)
        return self._wrap(net, label, manifest.family, self.dtype, inputs, outputs)


# A family's network from its family_config: (module, input roles in its argument order,
# output roles in its result order). The nets are imported only when one is built.
Network: TypeAlias = "tuple[torch.nn.Module, tuple[TensorRole, ...], tuple[TensorRole, ...]]"


def _swapnet(config: dict[str, Any]) -> Network:
    from agecast.nets.df import AgeNet, ModelConfig, SwapNet

    model_config = ModelConfig.from_dict(config)
    inputs: tuple[TensorRole, ...] = ("face", "age") if model_config.age else ("face",)
    return SwapNet(AgeNet(model_config)), inputs, ("face", "mask")


def _reagenet(config: dict[str, Any]) -> Network:
    from agecast.nets.reage import ReageConfig, ReageNet

    return ReageNet(ReageConfig.from_dict(config)), ("face", "age_map"), ("face", "delta", "mask")


# agecast.nets.df.FAMILY and agecast.nets.reage.FAMILY, without importing a net until one is built
FAMILIES: dict[str, Callable[[dict[str, Any]], Network]] = {
    "agecast-df": _swapnet,
    "agecast-reage": _reagenet,
}
_FAMILY_NAMES = " and ".join(FAMILIES)


def _manifest_beside(model: Path | bytes) -> Manifest | None:
    """The identity manifest naming ``model`` as its model file, or None."""
    from agecast.manifest import MANIFEST_NAME, Manifest

    if not isinstance(model, Path):
        return None
    path = model.parent / MANIFEST_NAME
    if not path.is_file():
        return None
    try:
        manifest = Manifest.model_validate_json(path.read_bytes())
    except ValidationError as exc:
        raise BackendError(
            f"{path} is not a valid identity manifest: {explain_fields(exc)}"
        ) from exc
    return manifest if manifest.model.file == model.name else None


def _onnx_weights(
    path: Path, expected: Mapping[str, torch.Tensor], family: str, label: str
) -> dict[str, torch.Tensor]:
    import onnx
    from onnx import numpy_helper

    try:
        graph = onnx.load(str(path)).graph
    except Exception as exc:  # onnx raises DecodeError and friends, untyped
        raise BackendError(f"{label}: {path} is not a readable ONNX model ({exc})") from exc
    found = {init.name: init for init in graph.initializer if init.name in expected}
    missing = [k for k in expected if k not in found]
    if missing:
        raise BackendError(
            f"{label}: {path} lacks weights {missing[:4]}{' …' if len(missing) > 4 else ''} of "
            f"the {family} network its manifest describes; re-export the package with "
            "agecast export (or run it on --backend onnxruntime)"
        )
    state: dict[str, torch.Tensor] = {}
    for name, want in expected.items():
        value = torch.from_numpy(numpy_helper.to_array(found[name]).copy())
        if tuple(value.shape) != tuple(want.shape):
            raise BackendError(
                f"{label}: weight {name} in {path} has shape {tuple(value.shape)}, the network "
                f"from family_config needs {tuple(want.shape)}: manifest and model disagree"
            )
        state[name] = value
    return state


def _specs(
    manifest: Manifest,
    side: Literal["inputs", "outputs"],
    roles: tuple[TensorRole, ...],
    label: str,
) -> list[TensorSpec]:
    """Specs under the manifest's tensor names for ``roles``, in the network's order."""
    specs: list[TensorSpec] = []
    for role in roles:
        decl = manifest.model.tensor(side, role)
        if decl is None:
            raise BackendError(
                f"{label}: an {manifest.family} manifest declares {side} with roles "
                f"{', '.join(roles)}; it lacks {role!r} — re-export the package"
            )
        shape = tuple(d if isinstance(d, int) and d > 0 else None for d in decl.shape)
        specs.append(TensorSpec(decl.name, shape, "float32"))
    return specs
