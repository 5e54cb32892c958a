"""Plain ONNX convolution graphs run in torch: the face detector on the GPU without onnxruntime-gpu.

The lent GPU machines (and a facility without onnxruntime-gpu) have torch with CUDA but only
the CPU onnxruntime. A helper model such as YuNet is a small convolution net: this module reads
its ONNX graph (weights from the initializers, ops from the nodes) and runs the same ops with
torch functions on any device, in fp32, so detection stays on the device next to the frame.

Only the ops such nets use are written here (the table :data:`OPS`); a graph with any other op
is refused with :class:`UnsupportedGraph` naming them, and the torch backend then hands the
file to onnxruntime. Nodes whose inputs are all constants (weight reshapes, shape arithmetic)
are computed once at load. Shape-like inputs (a Reshape's shape, a Resize's scales) must be
constants: they become Python values, so a forward pass never reads a device tensor back to the
host and can be captured in a CUDA graph.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from agecast.errors import BackendError


class UnsupportedGraph(BackendError):
    """The graph uses ops (or dynamic shapes) this torch runner does not implement."""


Value = torch.Tensor | tuple[float, ...] | tuple[int, ...] | None
OpFn = Callable[[list[Value], dict[str, Any]], list[torch.Tensor]]


def _ints(values: Sequence[int]) -> list[int]:
    return [int(v) for v in values]


def _conv(x: list[Value], a: dict[str, Any]) -> list[torch.Tensor]:
    data, weight = x[0], x[1]
    assert isinstance(data, torch.Tensor) and isinstance(weight, torch.Tensor)
    bias = x[2] if len(x) > 2 and isinstance(x[2], torch.Tensor) else None
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise UnsupportedGraph(f"Conv auto_pad={a['auto_pad']!r} (explicit pads only)")
    dims = weight.ndim - 2
    if dims != 2:
        raise UnsupportedGraph(f"Conv over {dims} spatial dimensions (2-D only)")
    pads = _ints(a.get("pads", [0] * 4))
    top, left, bottom, right = pads[0], pads[1], pads[2], pads[3]
    if (top, left) != (bottom, right):
        data = F.pad(data, (left, right, top, bottom))
        padding: tuple[int, int] = (0, 0)
    else:
        padding = (top, left)
    out = F.conv2d(
        data,
        weight,
        bias,
        stride=tuple(_ints(a.get("strides", [1, 1]))),
        padding=padding,
        dilation=tuple(_ints(a.get("dilations", [1, 1]))),
        groups=int(a.get("group", 1)),
    )
    return [out]


def _maxpool(x: list[Value], a: dict[str, Any]) -> list[torch.Tensor]:
    data = x[0]
    assert isinstance(data, torch.Tensor)
    pads = _ints(a.get("pads", [0] * 4))
    if pads[:2] != pads[2:]:
        raise UnsupportedGraph(f"MaxPool with uneven pads {pads}")
    out = F.max_pool2d(
        data,
        tuple(_ints(a["kernel_shape"])),
        stride=tuple(_ints(a.get("strides", [1, 1]))),
        padding=tuple(pads[:2]),
        ceil_mode=bool(a.get("ceil_mode", 0)),
    )
    return [out]


def _resize(x: list[Value], a: dict[str, Any]) -> list[torch.Tensor]:
    data = x[0]
    assert isinstance(data, torch.Tensor)
    mode = _text(a.get("mode", "nearest"))
    transform = _text(a.get("coordinate_transformation_mode", "half_pixel"))
    scales = x[2] if len(x) > 2 else None
    sizes = x[3] if len(x) > 3 else None
    if sizes:
        size = [int(s) for s in sizes][2:]
    elif scales:
        if [float(s) for s in scales][:2] != [1.0, 1.0]:
            raise UnsupportedGraph("Resize that scales the batch or channel axis")
        size = [int(d * float(s)) for d, s in zip(data.shape[2:], scales[2:], strict=True)]
    else:
        raise UnsupportedGraph("Resize without constant scales or sizes")
    if mode == "nearest" and transform == "asymmetric" and _text(a.get("nearest_mode")) == "floor":
        return [F.interpolate(data, size=size, mode="nearest")]  # torch's nearest is exactly this
    if mode == "linear" and transform in ("half_pixel", "pytorch_half_pixel"):
        return [F.interpolate(data, size=size, mode="bilinear", align_corners=False)]
    if mode == "linear" and transform == "align_corners":
        return [F.interpolate(data, size=size, mode="bilinear", align_corners=True)]
    raise UnsupportedGraph(f"Resize mode={mode} coordinate_transformation_mode={transform}")


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _reshape(x: list[Value], a: dict[str, Any]) -> list[torch.Tensor]:
    data, shape = x[0], x[1]
    assert isinstance(data, torch.Tensor) and isinstance(shape, tuple)
    wanted = [int(s) for s in shape]
    if not a.get("allowzero", 0):  # 0 copies the input's dimension
        wanted = [data.shape[i] if s == 0 else s for i, s in enumerate(wanted)]
    return [data.reshape(wanted)]


def _tensor(v: Value) -> torch.Tensor:
    assert isinstance(v, torch.Tensor)
    return v


def _binary(fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]) -> OpFn:
    return lambda x, a: [fn(_tensor(x[0]), _tensor(x[1]))]


def _unary(fn: Callable[[torch.Tensor], torch.Tensor]) -> OpFn:
    return lambda x, a: [fn(_tensor(x[0]))]


def _batchnorm(x: list[Value], a: dict[str, Any]) -> list[torch.Tensor]:
    data, scale, bias, mean, var = (_tensor(v) for v in x[:5])
    return [F.batch_norm(data, mean, var, scale, bias, False, 0.0, float(a.get("epsilon", 1e-5)))]


def _flatten(x: list[Value], a: dict[str, Any]) -> list[torch.Tensor]:
    data = _tensor(x[0])
    axis = int(a.get("axis", 1)) % max(data.ndim, 1)
    return [data.reshape(int(np.prod(data.shape[:axis])), -1)]


def _gemm(x: list[Value], a: dict[str, Any]) -> list[torch.Tensor]:
    left, right = _tensor(x[0]), _tensor(x[1])
    left = left.t() if a.get("transA", 0) else left
    right = right.t() if a.get("transB", 0) else right
    out = float(a.get("alpha", 1.0)) * (left @ right)
    if len(x) > 2 and isinstance(x[2], torch.Tensor):
        out = out + float(a.get("beta", 1.0)) * x[2]
    return [out]


# op → (function, indices of inputs that must be constants read as Python values)
OPS: dict[str, tuple[OpFn, frozenset[int]]] = {
    "Conv": (_conv, frozenset()),
    "Relu": (_unary(F.relu), frozenset()),
    "Sigmoid": (_unary(torch.sigmoid), frozenset()),
    "Add": (_binary(torch.add), frozenset()),
    "Sub": (_binary(torch.sub), frozenset()),
    "Mul": (_binary(torch.mul), frozenset()),
    "Div": (_binary(torch.div), frozenset()),
    "MaxPool": (_maxpool, frozenset()),
    "Resize": (_resize, frozenset({1, 2, 3})),
    "Reshape": (_reshape, frozenset({1})),
    "Transpose": (lambda x, a: [_tensor(x[0]).permute(*_ints(a["perm"]))], frozenset()),
    "Concat": (lambda x, a: [torch.cat([_tensor(v) for v in x], dim=int(a["axis"]))], frozenset()),
    "BatchNormalization": (_batchnorm, frozenset()),
    "Flatten": (_flatten, frozenset()),
    "Gemm": (_gemm, frozenset()),
    "Identity": (lambda x, a: [_tensor(x[0])], frozenset()),
    "PRelu": (lambda x, a: [torch.where(_tensor(x[0]) >= 0, _tensor(x[0]),
                                        _tensor(x[0]) * _tensor(x[1]))], frozenset()),
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class _Node:
    op: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    attrs: dict[str, Any]


class OnnxGraphModule(torch.nn.Module):
    """An ONNX graph of :data:`OPS` as a torch module: ``forward(*inputs)`` → outputs in the
    graph's order. Weights are buffers (``.to(device)`` moves them); constant shape inputs are
    Python values. Built from a parsed ``onnx.ModelProto``."""

    def __init__(self, model: Any) -> None:
        super().__init__()
        from onnx import helper, numpy_helper

        graph = model.graph
        consts: dict[str, np.ndarray] = {
            init.name: numpy_helper.to_array(init) for init in graph.initializer
        }
        self.input_names = [i.name for i in graph.input if i.name not in consts]
        self.input_shapes = [
            _dims(i) for i in graph.input if i.name not in consts
        ]  # None where an axis is free
        self.output_names = [o.name for o in graph.output]
        self.output_shapes = [_dims(o) for o in graph.output]
        nodes = [
            _Node(
                n.op_type,
                tuple(n.input),
                tuple(n.output),
                {at.name: helper.get_attribute_value(at) for at in n.attribute},
            )
            for n in graph.node
        ]
        unknown = sorted({n.op for n in nodes if n.op not in OPS and n.op != "Constant"})
        if unknown:
            raise UnsupportedGraph(f"ops not run by the torch graph runner: {', '.join(unknown)}")
        self._nodes: list[_Node] = []
        for node in nodes:
            if node.op == "Constant":
                consts[node.outputs[0]] = numpy_helper.to_array(node.attrs["value"])
            elif all(name in consts for name in node.inputs if name):
                self._fold(node, consts)
            else:
                self._nodes.append(node)
        self._static: dict[str, tuple[Any, ...]] = {}
        used = {name for n in self._nodes for name in n.inputs if name}
        for node in self._nodes:
            for index in OPS[node.op][1]:
                if index < len(node.inputs) and node.inputs[index]:
                    name = node.inputs[index]
                    if name not in consts:
                        raise UnsupportedGraph(
                            f"{node.op} input {name!r} is computed at run time (dynamic shape)"
                        )
                    self._static[name] = tuple(consts[name].reshape(-1).tolist())
        self._buffer_of: dict[str, str] = {}
        for name in sorted(used & set(consts)):
            if name in self._static:
                continue
            key = f"c{len(self._buffer_of)}"
            self.register_buffer(key, torch.from_numpy(np.array(consts[name])))
            self._buffer_of[name] = key

    def _fold(self, node: _Node, consts: dict[str, np.ndarray]) -> None:
        fn, static = OPS[node.op]
        args: list[Value] = []
        for i, name in enumerate(node.inputs):
            if not name:
                args.append(None)
            elif i in static:
                args.append(tuple(consts[name].reshape(-1).tolist()))
            else:
                args.append(torch.from_numpy(np.array(consts[name])))
        for name, value in zip(node.outputs, fn(args, node.attrs), strict=False):
            consts[name] = value.numpy()

    def forward(self, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
        env: dict[str, torch.Tensor] = dict(zip(self.input_names, inputs, strict=True))
        for name, key in self._buffer_of.items():
            env[name] = getattr(self, key)
        for node in self._nodes:
            fn, static = OPS[node.op]
            args: list[Value] = [
                None if not name else (self._static[name] if i in static else env[name])
                for i, name in enumerate(node.inputs)
            ]
            for name, value in zip(node.outputs, fn(args, node.attrs), strict=False):
                env[name] = value
        return tuple(env[name] for name in self.output_names)


def graph_module(model: bytes) -> OnnxGraphModule:
    """Parse serialised ONNX ``model`` into a module (fp32, CPU; move it with ``.to``)."""
    import onnx

    try:
        proto = onnx.load_from_string(model)
    except Exception as exc:  # onnx raises DecodeError and friends, untyped
        raise BackendError(f"not a readable ONNX model ({exc})") from exc
    for opset in proto.opset_import:
        if opset.domain not in ("", "ai.onnx"):
            raise UnsupportedGraph(f"ops of domain {opset.domain!r}")
    return OnnxGraphModule(proto)


def _dims(value_info: Any) -> tuple[int | None, ...]:
    return tuple(
        d.dim_value if d.HasField("dim_value") and d.dim_value > 0 else None
        for d in value_info.type.tensor_type.shape.dim
    )
