"""An identity's ONNX wrapped to take and give its tensors as they travel on the wire
(:mod:`agecast.inference.triton_wire`): the conversions run inside Triton, next to the model.

- an 8-bit input: ``Cast`` to float, ``× step + lo`` → the model's own input;
- an 8-bit output: ``(y − lo) / step``, ``Round`` (half to even), ``Clip`` 0–255, ``Cast``;
- a half-float input or output: one ``Cast``.

The node does the same arithmetic in float32 on its side (``triton_backend``), so a code means
the same value at both ends. The model's own nodes and weights are untouched (external weight
files keep their names beside it).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from agecast.errors import BackendError
from agecast.inference.triton_wire import WireTensor

_SUFFIX = "__agecast_wire"
_ONNX_TYPES = {"uint8": TensorProto.UINT8, "float16": TensorProto.FLOAT16}


def model_opset(model: onnx.ModelProto) -> int:
    """The default-domain opset the model was exported with."""
    return next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 1)


def _rename(graph: onnx.GraphProto, old: str, new: str, *, outputs: bool) -> None:
    """Every use of ``old`` as a node input (in subgraphs too, which see outer names) — and,
    with ``outputs``, as a node output and in value_info — becomes ``new``."""
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        if outputs:
            node.output[:] = [new if name == old else name for name in node.output]
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                _rename(sub, old, new, outputs=False)
    if outputs:
        for info in graph.value_info:
            if info.name == old:
                info.name = new


def _const(graph: onnx.GraphProto, name: str, values: tuple[float, ...], shape: list[int]) -> str:
    array = np.asarray(values, dtype=np.float32).reshape(shape)
    graph.initializer.append(numpy_helper.from_array(array, name))
    return name


def _value(graph: onnx.GraphProto, name: str, kind: str) -> onnx.ValueInfoProto:
    for info in getattr(graph, kind):
        if info.name == name:
            return info
    raise BackendError(f"the model has no {kind[:-1]} {name!r} to put on the wire")


def _scale(graph: onnx.GraphProto, inner: str, entry: WireTensor, rank: int) -> tuple[str, str]:
    """(step, lo) of an 8-bit tensor as constants of ``graph``, shaped to broadcast."""
    shape = entry.broadcast_shape(rank)
    return (
        _const(graph, f"{inner}_step", entry.step, shape),
        _const(graph, f"{inner}_lo", entry.lo, shape),
    )


def _decoding(
    graph: onnx.GraphProto, wired: str, inner: str, entry: WireTensor, rank: int
) -> list[onnx.NodeProto]:
    """Nodes turning input ``wired`` (as it travels) into the model's own ``inner``."""
    if entry.dtype == "float16":
        return [helper.make_node("Cast", [wired], [inner], to=TensorProto.FLOAT)]
    step, lo = _scale(graph, inner, entry, rank)
    return [
        helper.make_node("Cast", [wired], [f"{inner}_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", [f"{inner}_f", step], [f"{inner}_s"]),
        helper.make_node("Add", [f"{inner}_s", lo], [inner]),
    ]


def _encoding(
    graph: onnx.GraphProto, inner: str, wired: str, entry: WireTensor, rank: int
) -> list[onnx.NodeProto]:
    """Nodes turning the model's output ``inner`` into ``wired`` as it travels."""
    if entry.dtype == "float16":
        return [helper.make_node("Cast", [inner], [wired], to=TensorProto.FLOAT16)]
    step, lo = _scale(graph, inner, entry, rank)
    low = _const(graph, f"{inner}_0", (0.0,), [])
    high = _const(graph, f"{inner}_255", (255.0,), [])
    return [
        helper.make_node("Sub", [inner, lo], [f"{inner}_d"]),
        helper.make_node("Div", [f"{inner}_d", step], [f"{inner}_q"]),
        helper.make_node("Round", [f"{inner}_q"], [f"{inner}_r"]),
        helper.make_node("Clip", [f"{inner}_r", low, high], [f"{inner}_c"]),
        helper.make_node("Cast", [f"{inner}_c"], [wired], to=TensorProto.UINT8),
    ]


def wrap_for_wire(model: onnx.ModelProto, wire: Mapping[str, WireTensor]) -> onnx.ModelProto:
    """A copy of ``model`` whose inputs and outputs named in ``wire`` travel as it says."""
    wrapped = onnx.ModelProto()
    wrapped.CopyFrom(model)
    graph = wrapped.graph
    before: list[onnx.NodeProto] = []
    after: list[onnx.NodeProto] = []
    inputs = {i.name for i in graph.input}
    for name, entry in sorted(wire.items()):
        inner = name + _SUFFIX
        is_input = name in inputs
        info = _value(graph, name, "input" if is_input else "output")
        rank = len(info.type.tensor_type.shape.dim)
        _rename(graph, name, inner, outputs=not is_input)
        info.type.tensor_type.elem_type = _ONNX_TYPES[entry.dtype]
        if is_input:
            before += _decoding(graph, name, inner, entry, rank)
        else:
            after += _encoding(graph, inner, name, entry, rank)
    nodes = [*before, *graph.node, *after]
    del graph.node[:]
    graph.node.extend(nodes)
    return wrapped
