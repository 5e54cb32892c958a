"""Inputs beside the face: a continuous age, and constants fixed in the manifest."""

import hashlib
import json
from pathlib import Path

import onnx
import pytest
import torch
from onnx import TensorProto, helper

from agecast.errors import IdentityError
from agecast.identities import IdentityModel, read_package
from agecast.inference import get_backend

from .conftest import manifest_for

SIZE = 32


def _scaled_model() -> onnx.ModelProto:
    """out = face * age + bias: age and bias are separate (N,1) inputs."""
    graph = helper.make_graph(
        [
            helper.make_node("Unsqueeze", ["age", "axes"], ["age4"]),
            helper.make_node("Unsqueeze", ["bias", "axes"], ["bias4"]),
            helper.make_node("Mul", ["face", "age4"], ["scaled"]),
            helper.make_node("Add", ["scaled", "bias4"], ["out"]),
        ],
        "scaled",
        [
            helper.make_tensor_value_info("face", TensorProto.FLOAT, ["N", 3, SIZE, SIZE]),
            helper.make_tensor_value_info("age", TensorProto.FLOAT, ["N", 1]),
            helper.make_tensor_value_info("bias", TensorProto.FLOAT, ["N", 1]),
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor("axes", TensorProto.INT64, [2], [2, 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _package(tmp_path: Path, **overrides: object) -> Path:
    data = _scaled_model().SerializeToString()
    folder = tmp_path / "aged"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(data)
    manifest = manifest_for(data, SIZE, **overrides)
    manifest["model"]["inputs"] += [
        {"name": "age", "shape": ["N", 1], "role": "age"},
        {"name": "bias", "shape": ["N", 1], "role": "other", "value": [0.25]},
    ]
    manifest["model"]["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_age_in_years_reaches_the_model_and_constants_are_fed(tmp_path: Path) -> None:
    folder = _package(tmp_path, age_range=[30, 70], target_age=60)
    model = IdentityModel.load(read_package(folder), get_backend("onnxruntime"))
    assert model.age_control == (30, 70, 60)
    crops = torch.full((2, 3, SIZE, SIZE), 0.5)
    # 50 years is half-way through 30–70: the model sees 0.5
    assert torch.allclose(model.infer(crops, 50).faces, torch.full_like(crops, 0.5), atol=1e-6)
    # default is the identity's target age (60 → 0.75); out of range clamps to the oldest
    assert torch.allclose(model.infer(crops).faces, torch.full_like(crops, 0.625), atol=1e-6)
    assert torch.allclose(model.infer(crops, 99).faces, torch.full_like(crops, 0.75), atol=1e-6)


def test_an_age_input_without_an_age_range_is_named(tmp_path: Path) -> None:
    folder = _package(tmp_path)
    with pytest.raises(IdentityError, match="age_range"):
        read_package(folder)


def test_a_constant_of_the_wrong_size_is_named(tmp_path: Path) -> None:
    folder = _package(tmp_path, age_range=[30, 70])
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model"]["inputs"][2]["value"] = [1.0, 2.0]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IdentityError, match="'bias': value has 2 numbers"):
        read_package(folder)
