"""inswapper import with small stand-ins of inswapper_128 and w600k_r50 built here."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from PIL import Image
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import IdentityError
from agecast.faces import estimate_affine, make_detector, template_points, warp_crop
from agecast.identities import IdentityModel, read_package
from agecast.identities.inswapper import arcface_normalisation, import_inswapper
from agecast.inference import get_backend
from agecast.manifest import ConsentRecord
from agecast.sources.astronaut import astronaut_rgb

from .conftest import valid_consent

ACTOR = "Eileen Collins"
RNG = np.random.default_rng(7)
V = RNG.normal(size=(512, 3)).astype(np.float32)  # source → per-channel gain of the stand-in
EMAP = RNG.normal(size=(512, 512)).astype(np.float32)
W_ARC = RNG.normal(size=(3 * 14 * 14, 512)).astype(np.float32)


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def inswapper_stand_in(*, emap: bool = True, extra_input: bool = False) -> onnx.ModelProto:
    """output = target · sigmoid(source @ V) per channel; emap is the last initializer (unused
    by the graph, as in inswapper_128)."""
    inputs = [
        helper.make_tensor_value_info("target", TensorProto.FLOAT, [1, 3, 128, 128]),
        helper.make_tensor_value_info("source", TensorProto.FLOAT, [1, 512]),
    ]
    if extra_input:
        inputs.append(helper.make_tensor_value_info("extra", TensorProto.FLOAT, [1, 512]))
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["source", "V"], ["s"]),
            helper.make_node("Sigmoid", ["s"], ["g"]),
            helper.make_node("Reshape", ["g", "g_shape"], ["g4"]),
            helper.make_node("Mul", ["target", "g4"], ["output"]),
        ],
        "inswapper_stand_in",
        inputs,
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 3, 128, 128])],
        [
            numpy_helper.from_array(V, "V"),
            numpy_helper.from_array(np.array([1, 3, 1, 1], np.int64), "g_shape"),
        ]
        + ([numpy_helper.from_array(EMAP, "emap")] if emap else []),
    )
    return _model(graph)


def arcface_stand_in(width: int = 512) -> onnx.ModelProto:
    """(1,3,112,112) → 8×8 average pool → flatten → @ W: channel- and position-sensitive."""
    graph = helper.make_graph(
        [
            helper.make_node(
                "AveragePool", ["input.1"], ["p"], kernel_shape=[8, 8], strides=[8, 8]
            ),
            helper.make_node("Flatten", ["p"], ["f"]),
            helper.make_node("MatMul", ["f", "W"], ["683"]),
        ],
        "arcface_stand_in",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, width])],
        [numpy_helper.from_array(W_ARC[:, :width].copy(), "W")],
    )
    return _model(graph)


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    paths = {
        "model": tmp_path / "inswapper_128.onnx",
        "arcface": tmp_path / "w600k_r50.onnx",
        "face": tmp_path / "Eileen_Collins.png",
    }
    paths["model"].write_bytes(inswapper_stand_in().SerializeToString())
    paths["arcface"].write_bytes(arcface_stand_in().SerializeToString())
    Image.fromarray(astronaut_rgb()).save(paths["face"])
    return paths


def _consent() -> ConsentRecord:
    return ConsentRecord.model_validate(valid_consent(ACTOR))


def _by_hand() -> np.ndarray:
    """The source vector insightface's recipe gives, in numpy from the stand-ins' weights."""
    image = torch.from_numpy(astronaut_rgb().copy())
    face = make_detector(get_backend("onnxruntime")).detect(image)[0]
    affine = estimate_affine(face.landmarks5, template_points("arcface_112", 112))
    crop = warp_crop(image, affine, 112).double().numpy()  # RGB 0–1
    blob = (crop * 255.0 - 127.5) / 127.5
    pooled = blob.reshape(3, 14, 8, 14, 8).mean(axis=(2, 4)).reshape(1, -1)
    embedding = (pooled @ W_ARC.astype(np.float64))[0]
    latent = (embedding / np.linalg.norm(embedding)) @ EMAP.astype(np.float64)
    return latent / np.linalg.norm(latent)


def test_import_stores_the_source_vector_and_runs(tmp_path: Path, files: dict[str, Path]) -> None:
    out = import_inswapper(
        files["model"], files["arcface"], files["face"], tmp_path / "pkg", consent=_consent()
    )
    m = read_package(out).manifest
    assert (m.id, m.actor, m.family) == ("inswapper-eileen_collins", ACTOR, "inswapper")
    assert m.crop.size == 128 and m.crop.template == "arcface_128"
    assert (m.normalisation.layout, m.normalisation.channels) == ("NCHW", "RGB")
    source = m.model.tensor("inputs", "embedding")
    assert source is not None and source.name == "source" and source.value is not None
    stored = np.array(source.value)
    expected = _by_hand()
    np.testing.assert_allclose(stored, expected, atol=2e-5)
    assert abs(np.linalg.norm(stored) - 1.0) < 1e-5
    assert (out / "model.onnx").read_bytes() == files["model"].read_bytes()

    crops = torch.rand((2, 3, 128, 128), generator=torch.Generator().manual_seed(1))
    model = IdentityModel.load(read_package(out), get_backend("onnxruntime"))
    gain = torch.sigmoid(torch.from_numpy(expected.astype(np.float32) @ V)).view(1, 3, 1, 1)
    result = model.infer(crops)
    torch.testing.assert_close(result.faces, (crops * gain).clamp(0, 1), atol=1e-5, rtol=0)
    assert result.masks is None


def test_clear_errors(tmp_path: Path, files: dict[str, Path]) -> None:
    wrong_arcface = tmp_path / "wrong.onnx"
    wrong_arcface.write_bytes(arcface_stand_in(width=256).SerializeToString())
    with pytest.raises(IdentityError, match=r"output shape \[1, 256\].*\(1, 512\)"):
        import_inswapper(files["model"], wrong_arcface, files["face"], tmp_path / "a")

    blank = tmp_path / "wall.png"
    Image.new("RGB", (320, 240), (120, 130, 140)).save(blank)
    with pytest.raises(IdentityError, match=r"no face found in .*wall\.png"):
        import_inswapper(files["model"], files["arcface"], blank, tmp_path / "a")

    not_image = tmp_path / "notes.png"
    not_image.write_text("not a picture")
    with pytest.raises(IdentityError, match="cannot read face image"):
        import_inswapper(files["model"], files["arcface"], not_image, tmp_path / "a")

    no_emap = tmp_path / "no_emap.onnx"
    no_emap.write_bytes(inswapper_stand_in(emap=False).SerializeToString())
    with pytest.raises(IdentityError, match=r"last initializer 'g_shape' has shape \[4\]"):
        import_inswapper(no_emap, files["arcface"], files["face"], tmp_path / "a")

    three = tmp_path / "three.onnx"
    three.write_bytes(inswapper_stand_in(extra_input=True).SerializeToString())
    with pytest.raises(IdentityError, match="a target crop .* and a source vector"):
        import_inswapper(three, files["arcface"], files["face"], tmp_path / "a")
    assert not (tmp_path / "a").exists()


def test_arcface_normalisation_follows_insightface() -> None:
    assert arcface_normalisation(arcface_stand_in()) == (127.5, 127.5)
    mxnet = arcface_stand_in()
    mxnet.graph.node[0].name = "_minus0"
    mxnet.graph.node[1].name = "_mul0"
    assert arcface_normalisation(mxnet) == (0.0, 1.0)


def test_cli_import_inswapper(tmp_path: Path, files: dict[str, Path]) -> None:
    out = tmp_path / "pkg"
    args = ["identity", "import-inswapper", str(files["model"]), "--arcface", str(files["arcface"])]
    args += ["--face", str(files["face"]), "--out", str(out), "--backend", "onnxruntime"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "no consent" in result.output and read_package(out).manifest.actor == ACTOR
