"""In-memory repairs that let a shipped ONNX model run on the installed onnxruntime.

YuNet 2023mar int8bq (the default detector) stores its weights as int8 initializers behind
``DequantizeLinear`` nodes with a ``block_size`` attribute. onnxruntime 1.31 rejects some of
them ("block_size must be 0 for per-tensor quantization": a bias with a one-element scale). The
weights are constants, so dequantizing them once at load and storing the float result as an
initializer gives the same numbers and a graph every runtime accepts. The file on disk is never
changed: the repaired model only exists as bytes handed to the backend.
"""

from __future__ import annotations

import logging

import numpy as np
import onnx
from onnx import numpy_helper

log = logging.getLogger(__name__)


def dequantize_constant(
    x: np.ndarray,
    scale: np.ndarray,
    zero_point: np.ndarray | None,
    *,
    axis: int = 1,
    block_size: int = 0,
) -> np.ndarray:
    """``(x - zero_point) * scale`` with ONNX DequantizeLinear's broadcasting rules.

    Per-tensor when ``scale`` holds one value and ``block_size`` is 0, per-axis when ``scale`` is
    1-D along ``axis``, blocked when ``block_size`` > 0 (``scale`` has ``x``'s rank and
    ``ceil(x.shape[axis] / block_size)`` entries along ``axis``). Computed in float64, returned
    in ``scale``'s dtype (the ONNX default output type).
    """
    out_dtype = scale.dtype
    xf = x.astype(np.float64)
    sf = scale.astype(np.float64)
    zf = np.zeros_like(sf) if zero_point is None else zero_point.astype(np.float64)
    if zf.shape != sf.shape:
        raise ValueError(f"zero point shape {zf.shape} differs from scale shape {sf.shape}")
    axis = axis % max(x.ndim, 1)
    if block_size > 0:
        if sf.ndim != x.ndim:
            raise ValueError(f"blocked scale rank {sf.ndim} differs from input rank {x.ndim}")
        sf = np.repeat(sf, block_size, axis=axis).take(range(x.shape[axis]), axis=axis)
        zf = np.repeat(zf, block_size, axis=axis).take(range(x.shape[axis]), axis=axis)
    elif sf.size == 1:
        sf = sf.reshape(())
        zf = zf.reshape(())
    else:
        if sf.ndim != 1 or sf.shape[0] != x.shape[axis]:
            raise ValueError(f"per-axis scale {sf.shape} does not match axis {axis} of {x.shape}")
        shape = [1] * x.ndim
        shape[axis] = sf.shape[0]
        sf = sf.reshape(shape)
        zf = zf.reshape(shape)
    return ((xf - zf) * sf).astype(out_dtype)


def fold_constant_dequantize(model: onnx.ModelProto) -> int:
    """Replace every DequantizeLinear whose inputs are all initializers by its float result.

    Changes ``model`` in place (top-level graph) and returns how many nodes were folded.
    Initializers that nothing reads any more are dropped.
    """
    graph = model.graph
    overridable = {i.name for i in graph.input}  # an initializer listed as input is not constant
    inits = {i.name: i for i in graph.initializer if i.name not in overridable}
    folded: list[onnx.NodeProto] = []
    new_inits: list[onnx.TensorProto] = []
    for node in graph.node:
        if node.op_type != "DequantizeLinear" or node.domain not in ("", "ai.onnx"):
            continue
        names = [n for n in node.input if n]
        if not names or any(n not in inits for n in names):
            continue
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        if "output_dtype" in attrs and attrs["output_dtype"] != 0:
            out_np = onnx.helper.tensor_dtype_to_np_dtype(int(attrs["output_dtype"]))
        else:
            out_np = None
        arrays = [numpy_helper.to_array(inits[n]) for n in names]
        x, scale = arrays[0], arrays[1]
        zero_point = arrays[2] if len(arrays) > 2 else None
        value = dequantize_constant(
            x,
            scale,
            zero_point,
            axis=int(attrs.get("axis", 1)),
            block_size=int(attrs.get("block_size", 0)),
        )
        if out_np is not None:
            value = value.astype(out_np)
        new_inits.append(numpy_helper.from_array(value, name=node.output[0]))
        folded.append(node)
    if not folded:
        return 0
    for node in folded:
        graph.node.remove(node)
    graph.initializer.extend(new_inits)
    _drop_unused_initializers(graph)
    log.debug("folded %s constant DequantizeLinear nodes", len(folded))
    return len(folded)


def _names_read(graph: onnx.GraphProto) -> set[str]:
    """Every tensor name a node reads, subgraphs (If/Loop bodies) included."""
    names: set[str] = set()
    for node in graph.node:
        names.update(node.input)
        for attr in node.attribute:
            for sub in [attr.g] if attr.HasField("g") else list(attr.graphs):
                names |= _names_read(sub)
    return names


def _drop_unused_initializers(graph: onnx.GraphProto) -> None:
    used = _names_read(graph) | {o.name for o in graph.output}
    keep = [i for i in graph.initializer if i.name in used]
    del graph.initializer[:]
    graph.initializer.extend(keep)


def folded_model_bytes(data: bytes) -> tuple[bytes, int]:
    """Serialised model with constant DequantizeLinear nodes folded, and how many were."""
    model = onnx.load_from_string(data)
    count = fold_constant_dequantize(model)
    if count == 0:
        return data, 0
    return model.SerializeToString(), count
