"""DeepFaceLive DFM import and export, with small DFM-shaped ONNX models built here."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import IdentityError
from agecast.identities import IdentityModel, read_package
from agecast.identities.dfm import DFM_OUTPUTS, import_dfm, write_dfm
from agecast.identities.vouch import Vouches
from agecast.inference import get_backend
from agecast.manifest import ConsentRecord

from .conftest import PackageFactory, manifest_for, valid_consent

SIZE = 64
GAIN_BGR = np.array([0.2, 0.5, 0.9], np.float32)  # channel-specific: a BGR/RGB mix-up shows
ACTOR = "Test Actor"


def _ramp() -> np.ndarray:
    """(1,S,S,1) 0 at the left edge → 1 at the right: a transposed mask shows."""
    ramp = np.broadcast_to(np.linspace(0, 1, SIZE, dtype=np.float32), (SIZE, SIZE))
    return ramp.reshape(1, SIZE, SIZE, 1).copy()


def stand_in_dfm(
    *, morph: bool = True, face_name: str = "in_face:0", face_shape: list | None = None
) -> onnx.ModelProto:
    """A DFM-shaped model: celeb = in_face · gain(BGR) · morph; celeb mask = a left→right ramp;
    face mask = the mean of the input's channels."""
    nodes = [
        helper.make_node("Mul", [face_name, "gain"], ["tinted"]),
        helper.make_node("ReduceMean", [face_name], ["out_face_mask:0"], axes=[3], keepdims=1),
        helper.make_node("Mul", ["out_face_mask:0", "zero"], ["nothing"]),
        helper.make_node("Add", ["nothing", "ramp"], ["out_celeb_face_mask:0"]),
    ]
    inputs = [
        helper.make_tensor_value_info(
            face_name, TensorProto.FLOAT, face_shape or ["N", SIZE, SIZE, 3]
        )
    ]
    if morph:
        nodes.append(helper.make_node("Mul", ["tinted", "morph_value:0"], ["out_celeb_face:0"]))
        inputs.append(helper.make_tensor_value_info("morph_value:0", TensorProto.FLOAT, [1]))
    else:
        nodes.append(helper.make_node("Identity", ["tinted"], ["out_celeb_face:0"]))
    outputs = [
        helper.make_tensor_value_info(name, TensorProto.FLOAT, ["N", SIZE, SIZE, c])
        for name, c in zip(DFM_OUTPUTS, (1, 3, 1), strict=True)
    ]
    graph = helper.make_graph(
        nodes,
        "stand_in_dfm",
        inputs,
        outputs,
        [
            numpy_helper.from_array(GAIN_BGR.reshape(1, 1, 1, 3), "gain"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
            numpy_helper.from_array(_ramp(), "ramp"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def _save(model: onnx.ModelProto, path: Path) -> Path:
    path.write_bytes(model.SerializeToString())
    return path


def _consent() -> ConsentRecord:
    return ConsentRecord.model_validate(valid_consent(ACTOR))


def _load(folder: Path, vouches: Vouches | None = None) -> IdentityModel:
    return IdentityModel.load(read_package(folder), get_backend("onnxruntime"), vouches)


def _crops(n: int = 1, seed: int = 0) -> torch.Tensor:
    return torch.rand((n, 3, SIZE, SIZE), generator=torch.Generator().manual_seed(seed))


def test_a_dfm_imports_and_runs_with_its_bgr_morph_and_mask(tmp_path: Path) -> None:
    dfm = _save(stand_in_dfm(), tmp_path / "Jane_Doe.dfm")
    out = import_dfm(
        dfm, tmp_path / "jane", actor=ACTOR, consent=_consent(), backend=get_backend("onnxruntime")
    )
    m = read_package(out).manifest
    assert m.id == "jane_doe" and m.display_name == ACTOR and m.family == "dfm"  # --actor names it
    assert (m.normalisation.layout, m.normalisation.channels) == ("NHWC", "BGR")
    assert m.crop.size == SIZE and m.crop.template == "dfl_whole_face"
    morph = m.model.tensor("inputs", "morph")
    assert morph is not None and morph.value == [0.75]  # DeepFaceLive's default
    assert m.model.tensor("outputs", "mask").name == "out_celeb_face_mask:0"  # type: ignore[union-attr]
    assert (out / "model.onnx").read_bytes() == dfm.read_bytes()

    crops = _crops()
    result = _load(out).infer(crops)
    gain_rgb = torch.from_numpy(GAIN_BGR[::-1].copy()).view(1, 3, 1, 1)
    torch.testing.assert_close(result.faces, crops * gain_rgb * 0.75, atol=1e-6, rtol=0)
    assert result.masks is not None and result.masks.shape == (1, 1, SIZE, SIZE)
    ramp = torch.from_numpy(_ramp()).permute(0, 3, 1, 2)
    torch.testing.assert_close(result.masks, ramp, atol=1e-6, rtol=0)


def test_several_faces_run_through_a_dfm_with_a_single_morph_value(tmp_path: Path) -> None:
    """morph_value:0 is (1,), not per face: every face runs on its own with the same value."""
    dfm = _save(stand_in_dfm(), tmp_path / "Jane_Doe.dfm")
    out = import_dfm(
        dfm, tmp_path / "jane", actor=ACTOR, consent=_consent(), backend=get_backend("onnxruntime")
    )
    crops = _crops(3)
    result = _load(out).infer(crops)
    gain_rgb = torch.from_numpy(GAIN_BGR[::-1].copy()).view(1, 3, 1, 1)
    torch.testing.assert_close(result.faces, crops * gain_rgb * 0.75, atol=1e-6, rtol=0)
    assert result.masks is not None and result.masks.shape[0] == 3


def test_morph_option_and_a_dfm_without_morph(tmp_path: Path) -> None:
    dfm = _save(stand_in_dfm(), tmp_path / "a.dfm")
    out = import_dfm(dfm, tmp_path / "a", actor=ACTOR, consent=_consent(), morph=0.3)
    crops = _crops()
    gain_rgb = torch.from_numpy(GAIN_BGR[::-1].copy()).view(1, 3, 1, 1)
    torch.testing.assert_close(_load(out).infer(crops).faces, crops * gain_rgb * 0.3)

    plain = _save(stand_in_dfm(morph=False), tmp_path / "plain.dfm")
    out = import_dfm(plain, tmp_path / "plain", actor=ACTOR, consent=_consent())
    assert [t.name for t in read_package(out).manifest.model.inputs] == ["in_face:0"]
    torch.testing.assert_close(_load(out).infer(crops).faces, crops * gain_rgb)
    with pytest.raises(IdentityError, match="morph factor is 0–1"):
        import_dfm(dfm, tmp_path / "b", actor=ACTOR, morph=1.5)


def test_without_consent_the_package_is_written_but_does_not_load(tmp_path: Path) -> None:
    out = import_dfm(_save(stand_in_dfm(), tmp_path / "x.dfm"), tmp_path / "x", actor=ACTOR)
    assert read_package(out).manifest.consent is None
    with pytest.raises(IdentityError, match="field consent is missing"):
        _load(out)
    with pytest.raises(IdentityError, match="--force"):
        import_dfm(tmp_path / "x.dfm", out, actor=ACTOR)
    import_dfm(tmp_path / "x.dfm", out, actor=ACTOR, consent=_consent(), overwrite=True)
    _load(out).close()


def _aged_package(tmp_path: Path) -> Path:
    """NCHW RGB, mean/std 0.5, an age input: face = x·gain + age; mask = sigmoid(4·x_red)."""
    graph = helper.make_graph(
        [
            helper.make_node("Mul", ["face", "gain"], ["scaled"]),
            helper.make_node("Unsqueeze", ["age", "axes"], ["age4"]),
            helper.make_node("Add", ["scaled", "age4"], ["aged"]),
            helper.make_node("Slice", ["face", "c0", "c1", "c_axis"], ["red"]),
            helper.make_node("Mul", ["red", "four"], ["red4"]),
            helper.make_node("Sigmoid", ["red4"], ["mask"]),
        ],
        "aged",
        [
            helper.make_tensor_value_info("face", TensorProto.FLOAT, ["N", 3, SIZE, SIZE]),
            helper.make_tensor_value_info("age", TensorProto.FLOAT, ["N", 1]),
        ],
        [
            helper.make_tensor_value_info("aged", TensorProto.FLOAT, ["N", 3, SIZE, SIZE]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, SIZE, SIZE]),
        ],
        [
            numpy_helper.from_array(
                np.array([0.9, 0.6, 0.3], np.float32).reshape(1, 3, 1, 1), "gain"
            ),
            numpy_helper.from_array(np.array([2, 3], np.int64), "axes"),
            numpy_helper.from_array(np.array([0], np.int64), "c0"),
            numpy_helper.from_array(np.array([1], np.int64), "c1"),
            numpy_helper.from_array(np.array([1], np.int64), "c_axis"),
            numpy_helper.from_array(np.array(4.0, np.float32), "four"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    data = model.SerializeToString()
    folder = tmp_path / "aged"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(data)
    manifest = manifest_for(data, SIZE, id="aged", age_range=[20, 80], target_age=40)
    manifest["model"]["inputs"].append({"name": "age", "shape": ["N", 1], "role": "age"})
    manifest["model"]["outputs"] = [
        {"name": "aged", "shape": ["N", 3, SIZE, SIZE], "role": "face"},
        {"name": "mask", "shape": ["N", 1, SIZE, SIZE], "role": "mask"},
    ]
    manifest["normalisation"] = {"mean": [0.5] * 3, "std": [0.5] * 3}
    manifest["model"]["sha256"] = hashlib.sha256(data).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_write_dfm_has_the_dfm_contract_and_runs_as_deepfacelive_runs_it(tmp_path: Path) -> None:
    package = _aged_package(tmp_path)
    dfm = write_dfm(package, tmp_path / "aged.dfm")
    model = onnx.load(str(dfm))
    io = [
        (i.name, [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim])
        for i in model.graph.input
    ]
    assert io == [("in_face:0", ["N", SIZE, SIZE, 3]), ("morph_value:0", [1])]
    outs = [
        (o.name, [d.dim_param or d.dim_value for d in o.type.tensor_type.shape.dim])
        for o in model.graph.output
    ]
    assert outs == [
        ("out_face_mask:0", ["N", SIZE, SIZE, 1]),
        ("out_celeb_face:0", ["N", SIZE, SIZE, 3]),
        ("out_celeb_face_mask:0", ["N", SIZE, SIZE, 1]),
    ]
    # DeepFaceLive: BGR NHWC 0–1 in, outputs unpacked by position, morph 0.75
    crops = _crops()
    bgr = crops.flip(1).permute(0, 2, 3, 1).numpy()
    session = ort.InferenceSession(str(dfm), providers=["CPUExecutionProvider"])
    face_mask, celeb, celeb_mask = session.run(
        None, {"in_face:0": bgr, "morph_value:0": np.float32([0.75])}
    )
    original = _load(package).infer(crops, 20 + 0.75 * 60)  # morph 0.75 = 3/4 of 20–80
    torch.testing.assert_close(
        torch.from_numpy(celeb).permute(0, 3, 1, 2).flip(1), original.faces, atol=1e-5, rtol=0
    )
    assert original.masks is not None
    for mask in (face_mask, celeb_mask):
        torch.testing.assert_close(
            torch.from_numpy(mask).permute(0, 3, 1, 2), original.masks, atol=1e-5, rtol=0
        )


def test_dfm_round_trip_keeps_outputs_and_the_age_control(tmp_path: Path) -> None:
    package = _aged_package(tmp_path)
    dfm = write_dfm(package, tmp_path / "aged.dfm")
    back = import_dfm(
        dfm, tmp_path / "back", consent=_consent(), backend=get_backend("onnxruntime")
    )
    m = read_package(back).manifest
    assert (m.id, m.actor, m.crop.template) == ("aged", ACTOR, "ffhq")  # from the file's metadata
    original, imported = _load(package), _load(back)
    assert imported.age_control == original.age_control == (20, 80, 40)
    crops = _crops(seed=3)
    for age in (None, 20, 55.5, 80):
        a, b = original.infer(crops, age), imported.infer(crops, age)
        torch.testing.assert_close(b.faces, a.faces, atol=1e-5, rtol=0)
        assert a.masks is not None and b.masks is not None
        torch.testing.assert_close(b.masks, a.masks, atol=1e-5, rtol=0)
    # an explicit morph fixes the age: 0.5 of 20–80 is 50 years
    fixed = import_dfm(dfm, tmp_path / "fixed", consent=_consent(), morph=0.5)
    torch.testing.assert_close(
        _load(fixed).infer(crops).faces, original.infer(crops, 50).faces, atol=1e-5, rtol=0
    )


def test_round_trip_of_a_package_without_mask_or_age(
    tmp_path: Path, make_package: PackageFactory
) -> None:
    package = make_package()  # face → 1 - face, no mask
    dfm = write_dfm(package, tmp_path / "invert.dfm")
    back = import_dfm(dfm, tmp_path / "back", consent=_consent())
    assert "morph_value:0" not in [t.name for t in read_package(back).manifest.model.inputs]
    crops = _crops(2)
    result = _load(back).infer(crops)
    torch.testing.assert_close(result.faces, _load(package).infer(crops).faces, atol=1e-6, rtol=0)
    assert result.masks is not None and bool((result.masks == 1).all())


def _edit_dfm(tmp_path: Path, **kwargs: object) -> Path:
    return _save(stand_in_dfm(**kwargs), tmp_path / "bad.dfm")  # type: ignore[arg-type]


def test_bad_dfm_files_are_named_with_what_is_wrong(tmp_path: Path) -> None:
    junk = tmp_path / "junk.dfm"
    junk.write_text("this is a text file, not a model\n" * 20)
    with pytest.raises(IdentityError, match=r"junk\.dfm is not an ONNX model"):
        import_dfm(junk, tmp_path / "o", actor=ACTOR)
    with pytest.raises(IdentityError, match=r"has no input 'in_face:0' \(it has \['input'"):
        import_dfm(_edit_dfm(tmp_path, face_name="input"), tmp_path / "o", actor=ACTOR)
    with pytest.raises(IdentityError, match=r"shape \['N', 64, 64\]; a DFM takes NHWC"):
        import_dfm(_edit_dfm(tmp_path, face_shape=["N", SIZE, SIZE]), tmp_path / "o", actor=ACTOR)
    model = stand_in_dfm()
    del model.graph.output[2]
    with pytest.raises(IdentityError, match=r"lacks output\(s\) \['out_celeb_face_mask:0'\]"):
        import_dfm(_save(model, tmp_path / "two.dfm"), tmp_path / "o", actor=ACTOR)
    assert not (tmp_path / "o").exists()  # nothing written on a bad file


runner = CliRunner()


def test_cli_import_dfm_with_and_without_consent(tmp_path: Path) -> None:
    dfm = _save(stand_in_dfm(), tmp_path / "Jane_Doe.dfm")
    bare = runner.invoke(app, ["identity", "import-dfm", str(dfm), "--out", str(tmp_path / "a")])
    assert bare.exit_code == 0, bare.output
    assert "no consent" in bare.output
    refused = runner.invoke(app, ["identity", "validate", str(tmp_path / "a")])
    assert refused.exit_code == 2 and "consent is missing" in refused.output

    consent = [
        "--consent-granted-by", "Jane Doe via Agency",
        "--consent-production", "Test Production",
        "--consent-purpose", "on-set monitoring",
        "--consent-purpose", "dailies",
        "--consent-from", "2020-01-01",
        "--consent-until", "2099-12-31",
    ]  # fmt: skip
    args = ["identity", "import-dfm", str(dfm), "--out", str(tmp_path / "b"), "--id", "jd"]
    done = runner.invoke(app, [*args, "--actor", "Jane Doe", "--morph", "0.5", *consent])
    assert done.exit_code == 0, done.output
    m = read_package(tmp_path / "b").manifest
    assert (
        m.id == "jd"
        and m.consent is not None
        and m.consent.purposes == ["on-set monitoring", "dailies"]
    )
    ok = runner.invoke(app, ["identity", "validate", str(tmp_path / "b")])
    assert ok.exit_code == 0, ok.output

    exported = runner.invoke(
        app, ["identity", "export-dfm", str(tmp_path / "b"), "--out", str(tmp_path / "b.dfm")]
    )
    assert exported.exit_code == 0, exported.output and (tmp_path / "b.dfm").is_file()

    partial = runner.invoke(
        app, ["identity", "import-dfm", str(dfm), "--out", str(tmp_path / "c"), consent[0], "x"]
    )
    assert partial.exit_code == 2 and "production" in partial.output


def _exporter_named_dfm() -> onnx.ModelProto:
    """A DFM as exporters write them: batch and spatial output axes named, not numbered."""
    model = stand_in_dfm()
    for output in model.graph.output:
        dims = output.type.tensor_type.shape.dim
        for axis in (0, 1, 2):
            dims[axis].dim_param = f"Transpose{output.name}_dim_{axis}"
    return model


def test_the_manifest_records_real_shapes_not_exporter_axis_names(tmp_path: Path) -> None:
    dfm = _save(_exporter_named_dfm(), tmp_path / "named.dfm")
    out = import_dfm(dfm, tmp_path / "named", actor=ACTOR, consent=_consent())
    shapes = {t.name: t.shape for t in read_package(out).manifest.model.outputs}
    assert shapes == {
        "out_face_mask:0": [-1, SIZE, SIZE, 1],
        "out_celeb_face:0": [-1, SIZE, SIZE, 3],
        "out_celeb_face_mask:0": [-1, SIZE, SIZE, 1],
    }
    inputs = {t.name: t.shape for t in read_package(out).manifest.model.inputs}
    assert inputs["in_face:0"] == [-1, SIZE, SIZE, 3]
    _load(out).close()  # and the package still matches its model


def test_a_test_model_imports_as_tooling_and_loads_without_consent(
    tmp_path: Path, agecast_state_dir: Path
) -> None:
    dfm = _save(stand_in_dfm(), tmp_path / "stand_in.dfm")
    args = ["identity", "import-dfm", str(dfm), "--out", str(tmp_path / "t")]
    done = runner.invoke(app, [*args, "--purpose", "tooling", "--actor", "Nobody (test)"])
    assert done.exit_code == 0, done.output
    assert "no consent" not in done.output
    m = read_package(tmp_path / "t").manifest
    assert m.purpose == "tooling" and m.display_name == "Nobody (test)"  # --actor names it
    assert "vouched for stand_in (tooling)" in done.output  # made here, by the owner
    _load(tmp_path / "t", Vouches(agecast_state_dir)).close()
    bad = runner.invoke(app, [*args, "--purpose", "fun", "--force"], env={"COLUMNS": "200"})
    assert bad.exit_code == 2 and "'fun' is not one of 'likeness', 'demo', 'tooling'" in bad.output
    help_text = runner.invoke(app, ["identity", "import-dfm", "--help"], env={"COLUMNS": "200"})
    assert "--purpose" in help_text.output and "required for a likeness" in help_text.output
