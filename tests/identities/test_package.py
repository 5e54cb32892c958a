import json
from pathlib import Path

import pytest
import torch

from agecast.errors import IdentityError
from agecast.identities import IdentityModel, read_package, resolve
from agecast.inference import get_backend

from .conftest import PackageFactory


def _edit(folder: Path, path: list[str], value: object) -> None:
    manifest = json.loads((folder / "manifest.json").read_text())
    target = manifest
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_valid_package_loads_and_runs(make_package: PackageFactory) -> None:
    model = IdentityModel.load(read_package(make_package()), get_backend("onnxruntime"))
    crops = torch.rand(3, 3, 64, 64)
    result = model.infer(crops)
    assert result.masks is None
    assert torch.allclose(result.faces, 1 - crops, atol=1e-6)


@pytest.mark.parametrize(
    ("path", "value", "needle"),
    [
        (["id"], "Bad Id!", "field id"),
        (["crop", "size"], 8, "field crop.size"),
        (["model", "sha256"], "abc", "field model.sha256"),
        (["model", "file"], "../model.onnx", "field model.file"),
        (["crop", "template"], [[0.1, 0.2]], "field crop.template"),
        (["crop", "template"], "celebrity", "unknown template 'celebrity'"),
        (["normalisation"], {"std": [1, 0, 1]}, "field normalisation.std"),
        (["schema"], 99, "upgrade agecast"),
        (["colour"], "red", "unknown field 'colour'"),
    ],
)
def test_bad_manifest_fields_are_named(
    make_package: PackageFactory, path: list[str], value: object, needle: str
) -> None:
    folder = make_package()
    _edit(folder, path, value)
    with pytest.raises(IdentityError) as err:
        read_package(folder)
    assert needle in str(err.value)
    assert str(folder / "manifest.json") in str(err.value)


def test_missing_or_broken_manifest(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(IdentityError, match="manifest.json is missing"):
        read_package(tmp_path / "empty")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "manifest.json").write_text("{nope")
    with pytest.raises(IdentityError, match="not valid JSON"):
        read_package(tmp_path / "broken")


def test_hash_mismatch_and_missing_model(make_package: PackageFactory) -> None:
    backend = get_backend("onnxruntime")
    folder = make_package()
    (folder / "model.onnx").write_bytes((folder / "model.onnx").read_bytes() + b"\0")
    with pytest.raises(IdentityError, match="does not match field model.sha256"):
        IdentityModel.load(read_package(folder), backend)
    (folder / "model.onnx").unlink()
    with pytest.raises(IdentityError, match="field model.file names model.onnx, which is missing"):
        IdentityModel.load(read_package(folder), backend)


def test_model_not_matching_manifest_tensors(make_package: PackageFactory) -> None:
    backend = get_backend("onnxruntime")
    folder = make_package()
    _edit(folder, ["model", "outputs", 0, "name"], "aged")
    with pytest.raises(IdentityError, match=r"model.outputs\[0\].name 'aged' is not a tensor"):
        IdentityModel.load(read_package(folder), backend)
    folder = make_package("wrong-shape", id="wrong-shape")
    _edit(folder, ["model", "inputs", 0, "shape"], ["N", 3, 128, 128])
    with pytest.raises(IdentityError, match=r"model.inputs\[0\] shape"):
        IdentityModel.load(read_package(folder), backend)


def test_a_wrong_file_as_model_is_a_clear_error(make_package: PackageFactory) -> None:
    folder = make_package()
    junk = b"this is a JPEG, honest"
    (folder / "model.onnx").write_bytes(junk)
    import hashlib

    _edit(folder, ["model", "sha256"], hashlib.sha256(junk).hexdigest())
    with pytest.raises(IdentityError, match="model.onnx.*cannot load the model"):
        IdentityModel.load(read_package(folder), get_backend("onnxruntime"))


def test_resolve_by_id_path_and_auto(make_package: PackageFactory, tmp_path: Path) -> None:
    likeness = make_package("a-likeness", id="a-likeness")
    make_package("tool", id="tool", purpose="tooling")
    assert resolve("auto", [tmp_path]).manifest.id == "a-likeness"
    assert resolve("tool", [tmp_path]).manifest.purpose == "tooling"
    assert resolve(str(likeness), []).path == likeness
    with pytest.raises(
        IdentityError, match="identity 'nobody' not found.*installed: a-likeness, tool"
    ):
        resolve("nobody", [tmp_path])
    with pytest.raises(IdentityError, match="no identity package found"):
        resolve("auto", [tmp_path / "none"])
