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
        if name in inputs:
            info = _value(graph, name, "input")
            rank = len(info.type.tensor_type.shape.dim)
            _rename(graph, name, inner, outputs=False)
            if entry.dtype == "float16":
                info.type.tensor_type.elem_type = TensorProto.FLOAT16
                before.append(helper.make_node("Cast", [name], [inner], to=TensorProto.FLOAT))
                continue
            info.type.tensor_type.elem_type = TensorProto.UINT8
            shape = entry.broadcast_shape(rank)
            step = _const(graph, f"{inner}_step", entry.step, shape)
            lo = _const(graph, f"{inner}_lo", entry.lo, shape)
            before += [
                helper.make_node("Cast", [name], [f"{inner}_f"], to=TensorProto.FLOAT),
                helper.make_node("Mul", [f"{inner}_f", step], [f"{inner}_s"]),
                helper.make_node("Add", [f"{inner}_s", lo], [inner]),
            ]
        else:
            info = _value(graph, name, "output")
            rank = len(info.type.tensor_type.shape.dim)
            _rename(graph, name, inner, outputs=True)
            if entry.dtype == "float16":
                info.type.tensor_type.elem_type = TensorProto.FLOAT16
                after.append(helper.make_node("Cast", [inner], [name], to=TensorProto.FLOAT16))
                continue
            info.type.tensor_type.elem_type = TensorProto.UINT8
            shape = entry.broadcast_shape(rank)
            step = _const(graph, f"{inner}_step", entry.step, shape)
            lo = _const(graph, f"{inner}_lo", entry.lo, shape)
            low = _const(graph, f"{inner}_0", (0.0,), [])
            high = _const(graph, f"{inner}_255", (255.0,), [])
            after += [
                helper.make_node("Sub", [inner, lo], [f"{inner}_d"]),
                helper.make_node("Div", [f"{inner}_d", step], [f"{inner}_q"]),
                helper.make_node("Round", [f"{inner}_q"], [f"{inner}_r"]),
                helper.make_node("Clip", [f"{inner}_r", low, high], [f"{inner}_c"]),
                helper.make_node("Cast", [f"{inner}_c"], [name], to=TensorProto.UINT8),
            ]
    nodes = [*before, *graph.node, *after]
    del graph.node[:]
    graph.node.extend(nodes)
    return wrapped
