"""YuNet run by the torch backend (its ONNX graph rebuilt as torch ops) finds the same faces as
onnxruntime: the path that keeps detection on the GPU where only onnxruntime's CPU build is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper

from agecast.faces.boxes import letterbox
from agecast.faces.yunet import YuNetDetector
from agecast.inference.base import Backend
from agecast.inference.onnx_torch import UnsupportedGraph, graph_module
from agecast.inference.torch_backend import TorchBackend, TorchModel

from .conftest import FRAME_HW, place, placement


@pytest.fixture(scope="module")
def torch_yunet() -> YuNetDetector:
    return YuNetDetector(TorchBackend(device="cpu", helpers="torch"))


@pytest.fixture(scope="module")
def three_faces(astronaut: torch.Tensor) -> torch.Tensor:
    """Three astronauts of different sizes and turns in one 1280×720 frame."""
    frame = torch.zeros((*FRAME_HW, 3), dtype=torch.uint8)
    for scale, angle, centre in (
        (1.0, 0, (260, 260)),
        (0.6, 20, (700, 200)),
        (1.4, -15, (1000, 470)),
    ):
        placed = place(astronaut, placement(scale, angle, centre))
        frame = torch.maximum(frame, placed)
    return frame


def test_torch_yunet_is_a_torch_model_not_onnxruntime(torch_yunet: YuNetDetector) -> None:
    assert isinstance(torch_yunet.model, TorchModel)


def test_torch_yunet_finds_the_same_faces_as_onnxruntime(
    yunet: YuNetDetector, torch_yunet: YuNetDetector, three_faces: torch.Tensor
) -> None:
    want = yunet.detect(three_faces)
    got = torch_yunet.detect(three_faces)
    assert len(want) == 3
    assert len(got) == len(want)
    for a, b in zip(want, got, strict=True):
        assert float((a.box - b.box).abs().max()) < 1.0
        assert float((a.landmarks5 - b.landmarks5).abs().max()) < 1.0
        assert abs(a.score - b.score) < 1e-3


def test_torch_yunet_outputs_match_onnxruntime_tensor_by_tensor(
    yunet: YuNetDetector, torch_yunet: YuNetDetector, astronaut: torch.Tensor
) -> None:
    blob = letterbox(astronaut, 640, bgr=True).tensor
    want = yunet.model.run({"input": blob})
    got = torch_yunet.model.run({"input": blob})
    assert set(got) == set(want)
    for name, value in want.items():
        assert got[name].shape == value.shape, name
        assert float((got[name] - value).abs().max()) < 1e-3, name


def test_torch_yunet_finds_nothing_in_an_empty_frame(torch_yunet: YuNetDetector) -> None:
    assert torch_yunet.detect(torch.zeros((*FRAME_HW, 3), dtype=torch.uint8)) == []


def _softmax_graph() -> bytes:
    node = helper.make_node("Softmax", ["x"], ["y"], axis=1)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model.SerializeToString()


def test_a_graph_with_ops_torch_lacks_is_named_and_goes_to_onnxruntime(
    backend: Backend,
) -> None:
    with pytest.raises(UnsupportedGraph, match="Softmax"):
        graph_module(_softmax_graph())
    model = TorchBackend(device="cpu", helpers="torch").load(_softmax_graph(), label="softmax")
    assert not isinstance(model, TorchModel)
    out = model.run({"x": torch.tensor([[0.0, 0.0, 0.0, np.log(3.0)]], dtype=torch.float32)})
    assert torch.allclose(out["y"], torch.tensor([[1 / 6, 1 / 6, 1 / 6, 1 / 2]]), atol=1e-6)


def test_a_computed_reshape_shape_is_refused() -> None:
    shape = helper.make_node("Shape", ["x"], ["s"])
    reshape = helper.make_node("Reshape", ["x", "s"], ["y"])
    graph = helper.make_graph(
        [shape, reshape],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(UnsupportedGraph, match="Shape"):
        graph_module(model.SerializeToString())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_yunet_on_cuda_with_graphs_finds_the_same_faces(
    yunet: YuNetDetector, three_faces: torch.Tensor
) -> None:
    gpu = YuNetDetector(TorchBackend(device="cuda", cuda_graphs=True))
    assert isinstance(gpu.model, TorchModel)
    want = yunet.detect(three_faces)
    for _ in range(3):  # the second run replays the captured graph
        got = gpu.detect(three_faces.cuda())
        assert len(got) == len(want)
        for a, b in zip(want, got, strict=True):
            assert float((a.box - b.box).abs().max()) < 2.0
            assert float((a.landmarks5 - b.landmarks5).abs().max()) < 2.0
