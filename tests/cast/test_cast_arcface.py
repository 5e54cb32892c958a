"""ArcFace from a user's insightface pack: found, checked, used for the cast, its input scaled
as insightface's; a wrong file is named; members enrolled with another recogniser are refused."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from agecast.cast.roster import Member, Roster, save_roster
from agecast.cast.setup import make_router
from agecast.errors import CastError, RecogniserError
from agecast.faces.recognise import ArcFace, Recogniser, make_recogniser, sface_model_path
from agecast.inference import get_backend
from agecast.settings import Settings


def arcface_like(path: Path) -> Path:
    """An ONNX with ArcFace's contract (N×3×112×112 → N×512): the channel means, projected.
    Not a recogniser, but enough to check the wiring and the input scaling."""
    weight = np.zeros((3, 512), np.float32)
    weight[0, 0], weight[1, 1], weight[2, 2] = 1.0, 1.0, 1.0
    graph = helper.make_graph(
        [
            helper.make_node("GlobalAveragePool", ["input.1"], ["pooled"]),
            helper.make_node("Flatten", ["pooled"], ["flat"]),
            helper.make_node("MatMul", ["flat", "w"], ["683"]),
        ],
        "arcface-like",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, ["N", 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, ["N", 512])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(path))
    return path


def test_an_insightface_pack_arcface_is_found_and_fed_like_insightface(tmp_path: Path) -> None:
    pack = tmp_path / "models"
    arcface_like(pack / "buffalo_l" / "w600k_r50.onnx")
    backend = get_backend("onnxruntime")
    recogniser = make_recogniser(backend, pack)
    assert isinstance(recogniser, ArcFace) and recogniser.name == "arcface"
    crop = torch.zeros(1, 3, 112, 112)
    crop[:, 0] = 1.0  # red 255 → +1, green and blue 0 → −1 (RGB, scaled to −1…1)
    embedding = recogniser.embed_crops(crop)[0]
    assert embedding.shape == (512,)
    assert embedding[:3].tolist() == pytest.approx([1 / 3**0.5, -(1 / 3**0.5), -(1 / 3**0.5)])
    assert type(make_recogniser(backend, tmp_path / "empty")) is Recogniser  # SFace otherwise


def test_a_wrong_arcface_file_is_named(tmp_path: Path) -> None:
    wrong = tmp_path / "w600k_r50.onnx"
    shutil.copy(sface_model_path(), wrong)  # SFace: a 128-d output, not ArcFace's 512
    with pytest.raises(RecogniserError, match=f"{wrong} is not an ArcFace recogniser"):
        ArcFace(get_backend("onnxruntime"), wrong)


def test_members_enrolled_with_another_recogniser_are_refused(tmp_path: Path) -> None:
    pack = tmp_path / "pack"
    arcface_like(pack / "w600k_r50.onnx")
    settings = Settings(state_dir=tmp_path / "state", insightface_dir=pack)
    roster = Roster(members=[Member(name="ann", embeddings=[[1.0] * 128], recogniser="sface")])
    save_roster(roster, settings.resolved_cast_file)
    with pytest.raises(CastError, match="ann .*enrolled with another recogniser.*arcface"):
        make_router(settings, roster, get_backend("onnxruntime"), background=False)
