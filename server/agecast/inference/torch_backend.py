"""torch backend: agecast-df identities run natively in torch (CUDA: fp16, channels_last, graphs).

An agecast-df package's ``model.onnx`` holds the network's weights under the names of
``SwapNet.state_dict()`` (torch's exporter keeps parameter names), and its manifest holds the
network's ``family_config``. This backend rebuilds ``SwapNet`` from the manifest beside the model
file, loads those weights and runs the network in torch on the pipeline's device, so crops
already on the GPU never leave it.

Models that are not agecast-df identities (the face detector, landmarks, ArcFace) have no torch
implementation here: the backend hands bare ONNX files to onnxruntime (``delegate=True``) and
refuses identity packages of other families with a message naming the backend to use.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar, Literal

import torch

from agecast.errors import BackendError
from agecast.inference.base import Backend, Model, TensorSpec

log = logging.getLogger(__name__)

FAMILY = "agecast-df"  # agecast.training.model.FAMILY, without importing training here
Precision = Literal["auto", "fp32", "fp16"]


def _cuda_usable() -> bool:
    return torch.cuda.is_available()


class TorchModel(Model):
    """A ``SwapNet`` on one device. Inputs may live anywhere; outputs stay on the device.

    On CUDA with ``cuda_graphs`` the forward pass is captured once per batch size (after a
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
        face_in: str,
        age_in: str | None,
        cuda_graphs: bool,
    ) -> None:
        self.label = label
        self.device = device
        self.dtype = dtype
        self.inputs = inputs
        self.outputs = outputs
        self._net: torch.nn.Module | None = net
        self._face_in = face_in
        self._age_in = age_in
        self._channels_last = device.type == "cuda"
        self._cuda_graphs = cuda_graphs and device.type == "cuda"
        self._graphs: dict[int, tuple[Any, dict[str, torch.Tensor], list[torch.Tensor]]] = {}

    def _prepare(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        face = feeds[self._face_in].to(self.device, self.dtype, non_blocking=True)
        if self._channels_last:
            face = face.contiguous(memory_format=torch.channels_last)
        out = {self._face_in: face}
        if self._age_in is not None:
            out[self._age_in] = feeds[self._age_in].to(self.device, self.dtype, non_blocking=True)
        return out

    def _forward(self, prepared: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
        assert self._net is not None
        face, mask = self._net(
            prepared[self._face_in], prepared[self._age_in] if self._age_in else None
        )
        return [face, mask]

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
        with torch.cuda.graph(graph):
            static_out = self._forward(static_in)
        log.info(
            "%s: captured a CUDA graph for batch %d", self.label, prepared[self._face_in].shape[0]
        )
        return graph, static_in, static_out

    def close(self) -> None:
        self._graphs.clear()
        self._net = None


class TorchBackend(Backend):
    """agecast-df identities in torch; bare ONNX helper models delegated to onnxruntime."""

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
        self._helper: Backend | None = None

    @classmethod
    def probe(cls) -> str | None:
        return None  # torch is a core dependency; CUDA is optional (CPU runs in fp32)

    def load(self, model: Path | bytes, *, label: str) -> Model:
        manifest = _manifest_beside(model)
        if manifest is None:
            return self._delegated(model, label, "it is not an identity package's model")
        family = manifest.get("family")
        if family != FAMILY:
            raise BackendError(
                f"{label} is of family {family!r}: the torch backend runs {FAMILY} identities; "
                f"use --backend onnxruntime (or onnxruntime-cuda / auto) for {family!r}"
            )
        assert isinstance(model, Path)
        return self._load_swapnet(model, manifest, label)

    def _delegated(self, model: Path | bytes, label: str, why: str) -> Model:
        if not self.delegate:
            raise BackendError(f"{label}: the torch backend runs {FAMILY} identities only ({why})")
        if self._helper is None:
            from agecast.inference.registry import get_backend

            name = "onnxruntime-cuda" if self.torch_device.type == "cuda" else "onnxruntime"
            self._helper = get_backend(name, threads=self.threads)
        log.info("%s: %s, so it runs on %s", label, why, self._helper.name)
        return self._helper.load(model, label=label)

    def _load_swapnet(self, path: Path, manifest: dict[str, Any], label: str) -> Model:
        from agecast.training.model import AgeNet, ModelConfig, SwapNet

        config_dict = manifest.get("family_config")
        if not isinstance(config_dict, dict):
            raise BackendError(
                f"{path.parent / 'manifest.json'}: field family_config is missing; the torch "
                "backend rebuilds the network from it — re-export the package with agecast export"
            )
        try:
            config = ModelConfig.from_dict(config_dict)
        except (TypeError, ValueError) as exc:
            raise BackendError(
                f"{path.parent / 'manifest.json'}: field family_config {config_dict} does not "
                f"describe an {FAMILY} network ({exc})"
            ) from exc
        net = SwapNet(AgeNet(config))
        net.load_state_dict(_onnx_weights(path, net.state_dict(), label))
        net = net.eval().to(self.torch_device, self.dtype)
        if self.torch_device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]
        inputs, outputs, face_in, age_in = _specs(manifest, config.age, label)
        log.info(
            "%s loaded on torch %s %s (%s%s)",
            label,
            torch.__version__,
            self.torch_device,
            str(self.dtype).removeprefix("torch."),
            ", CUDA graphs" if self.cuda_graphs and self.torch_device.type == "cuda" else "",
        )
        return TorchModel(
            net,
            label=label,
            device=self.torch_device,
            dtype=self.dtype,
            inputs=inputs,
            outputs=outputs,
            face_in=face_in,
            age_in=age_in,
            cuda_graphs=self.cuda_graphs,
        )


def _manifest_beside(model: Path | bytes) -> dict[str, Any] | None:
    """The identity manifest naming ``model`` as its model file, or None."""
    if not isinstance(model, Path):
        return None
    path = model.parent / "manifest.json"
    if not path.is_file():
        return None
    try:
        raw = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BackendError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(raw, dict) or raw.get("model", {}).get("file", "model.onnx") != model.name:
        return None
    return raw


def _onnx_weights(
    path: Path, expected: Mapping[str, torch.Tensor], label: str
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
            f"the {FAMILY} network its manifest describes; re-export the package with "
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
    manifest: dict[str, Any], age: bool, label: str
) -> tuple[list[TensorSpec], list[TensorSpec], str, str | None]:
    """Input/output specs under the manifest's tensor names, in SwapNet's argument order."""
    decl = manifest.get("model", {})

    def spec(d: dict[str, Any]) -> TensorSpec:
        shape = tuple(x if isinstance(x, int) and x > 0 else None for x in d.get("shape", []))
        return TensorSpec(str(d["name"]), shape, "float32")

    def by_role(side: str, role: str) -> dict[str, Any] | None:
        return next((d for d in decl.get(side, []) if d.get("role") == role), None)

    face_in, age_in = by_role("inputs", "face"), by_role("inputs", "age")
    face_out, mask_out = by_role("outputs", "face"), by_role("outputs", "mask")
    if face_in is None or face_out is None or mask_out is None or (age and age_in is None):
        raise BackendError(
            f"{label}: an {FAMILY} manifest declares inputs face{' and age' if age else ''} and "
            "outputs face and mask (by role); re-export the package"
        )
    inputs = [spec(face_in)] + ([spec(age_in)] if age and age_in is not None else [])
    return (
        inputs,
        [spec(face_out), spec(mask_out)],
        face_in["name"],
        (age_in["name"] if age and age_in is not None else None),
    )
