"""Folding constant DequantizeLinear nodes gives the numbers the operator defines."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from agecast.faces.onnx_fixups import dequantize_constant, fold_constant_dequantize


def test_per_tensor() -> None:
    x = np.array([[-3, 0, 5]], dtype=np.int8)
    out = dequantize_constant(x, np.array(0.5, np.float32), np.array(1, np.int8))
    np.testing.assert_allclose(out, [[-2.0, -0.5, 2.0]])
    assert out.dtype == np.float32


def test_per_axis() -> None:
    x = np.array([[1, 2], [3, 4], [5, 6]], dtype=np.int8)
    out = dequantize_constant(
        x, np.array([1.0, 2.0, 3.0], np.float32), np.array([0, 1, 2], np.int8), axis=0
    )
    np.testing.assert_allclose(out, [[1, 2], [4, 6], [9, 12]])


def test_blocked_with_ragged_last_block() -> None:
    x = np.arange(10, dtype=np.int8).reshape(2, 5)
    scale = np.array([[1.0, 10.0], [2.0, 20.0]], np.float32)  # blocks of 3 along axis 1
    zero = np.array([[0, 1], [1, 0]], np.int8)
    out = dequantize_constant(x, scale, zero, axis=1, block_size=3)
    expected = [[0, 1, 2, 20, 30], [8, 10, 12, 160, 180]]
    np.testing.assert_allclose(out, expected)


def test_one_block_covering_the_axis_is_per_tensor() -> None:
    # the YuNet bias layout that onnxruntime 1.31 refuses: 1-D, one scale, block_size = length
    x = np.array([2, -4, 6], dtype=np.int8)
    out = dequantize_constant(
        x, np.array([0.25], np.float32), np.array([0], np.int8), axis=0, block_size=3
    )
    np.testing.assert_allclose(out, [0.5, -1.0, 1.5])


def _blocked_model() -> tuple[onnx.ModelProto, np.ndarray]:
    weight = np.array([[1, -2, 3, -4], [5, 6, -7, 8]], dtype=np.int8)
    scale = np.array([[0.5, 0.25], [0.125, 2.0]], dtype=np.float32)
    zero = np.array([[1, 0], [0, -1]], dtype=np.int8)
    bias_q = np.array([4, -8], dtype=np.int8)
    graph = helper.make_graph(
        [
            helper.make_node(
                "DequantizeLinear", ["w_q", "w_s", "w_z"], ["w"], axis=1, block_size=2
            ),
            helper.make_node(
                "DequantizeLinear", ["b_q", "b_s", "b_z"], ["b"], axis=0, block_size=2
            ),
            helper.make_node("Add", ["x", "w"], ["xw"]),
            helper.make_node("Add", ["xw", "b_col"], ["y"]),
            helper.make_node("Reshape", ["b", "col_shape"], ["b_col"]),
        ],
        "blocked",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
        [
            numpy_helper.from_array(weight, "w_q"),
            numpy_helper.from_array(scale, "w_s"),
            numpy_helper.from_array(zero, "w_z"),
            numpy_helper.from_array(bias_q, "b_q"),
            numpy_helper.from_array(np.array([0.5], np.float32), "b_s"),
            numpy_helper.from_array(np.array([0], np.int8), "b_z"),
            numpy_helper.from_array(np.array([2, 1], np.int64), "col_shape"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    expected_w = (weight.astype(np.float32) - np.repeat(zero, 2, axis=1)) * np.repeat(
        scale, 2, axis=1
    )
    expected = expected_w + np.array([[2.0], [-4.0]], np.float32)
    return model, expected


def test_folded_graph_runs_and_matches() -> None:
    model, expected = _blocked_model()
    with pytest.raises(Exception, match="block_size"):  # the onnxruntime problem being fixed
        session = ort.InferenceSession(
            model.SerializeToString(), providers=["CPUExecutionProvider"]
        )
        session.run(None, {"x": np.zeros((2, 4), np.float32)})
    assert fold_constant_dequantize(model) == 2
    assert not [n for n in model.graph.node if n.op_type == "DequantizeLinear"]
    assert {i.name for i in model.graph.initializer} == {"w", "b", "col_shape"}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    (y,) = session.run(None, {"x": np.zeros((2, 4), np.float32)})
    np.testing.assert_allclose(y, expected)


def test_dequantize_of_a_graph_input_is_left_alone() -> None:
    graph = helper.make_graph(
        [helper.make_node("DequantizeLinear", ["q", "s"], ["y"])],
        "dynamic",
        [helper.make_tensor_value_info("q", TensorProto.INT8, [3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [3])],
        [numpy_helper.from_array(np.array(0.5, np.float32), "s")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)], ir_version=10)
    assert fold_constant_dequantize(model) == 0
    assert len(model.graph.node) == 1
