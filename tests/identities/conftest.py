"""Small identity packages built in the test: a real ONNX model, a real manifest."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import onnx
import pytest
from onnx import TensorProto, helper

from agecast.identities.package import read_package
from agecast.identities.vouch import Vouches

PackageFactory = Callable[..., Path]


def invert_model(size: int = 64) -> onnx.ModelProto:
    """face → 1 - face: an obvious, checkable change."""
    graph = helper.make_graph(
        [
            helper.make_node("Neg", ["face"], ["neg"]),
            helper.make_node("Add", ["neg", "one"], ["out"]),
        ],
        "invert",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, size, size])],
        [helper.make_tensor("one", TensorProto.FLOAT, [], [1.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def valid_consent(actor: str, **overrides: Any) -> dict[str, Any]:
    """A consent record for ``actor``, in force from 2020-01-01 to 2099-12-31."""
    consent: dict[str, Any] = {
        "actor": actor,
        "granted_by": f"{actor} (via Test Agency)",
        "production": "Test Production",
        "purposes": ["on-set monitoring", "dailies"],
        "valid_from": "2020-01-01",
        "valid_until": "2099-12-31",
        "reference": "TEST-CONSENT-001",
    }
    consent.update(overrides)
    return consent


def manifest_for(model_bytes: bytes, size: int = 64, **overrides: Any) -> dict[str, Any]:
    """A likeness manifest for ``model_bytes`` with a valid consent for its actor unless
    ``consent`` is overridden (``consent=None`` writes an explicit null)."""
    manifest: dict[str, Any] = {
        "schema": 1,
        "id": "invert",
        "display_name": "Invert (test)",
        "actor": "Test Actor",
        "target_age": 30,
        "family": "test",
        "model": {
            "file": "model.onnx",
            "sha256": hashlib.sha256(model_bytes).hexdigest(),
            "inputs": [{"name": "face", "shape": ["N", 3, size, size], "role": "face"}],
            "outputs": [{"name": "out", "shape": ["N", 3, size, size], "role": "face"}],
        },
        "crop": {"size": size, "template": "ffhq"},
    }
    manifest.update(overrides)
    manifest.setdefault("consent", valid_consent(manifest["actor"]))
    return manifest


@pytest.fixture
def make_package(tmp_path: Path) -> PackageFactory:
    def make(name: str = "invert", size: int = 64, **overrides: Any) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        data = invert_model(size).SerializeToString()
        (folder / "model.onnx").write_bytes(data)
        manifest = manifest_for(data, size, **overrides)
        (folder / "manifest.json").write_text(json.dumps(manifest))
        return folder

    return make


def vouch(folder: Path) -> Path:
    """Vouch for a demo or tooling package the test made, as its maker (the owner) would: in
    the test's own state folder (``AGECAST_STATE_DIR``, set for every test by tests/conftest.py;
    never the state of the user running the suite). Returns ``folder``."""
    state = os.environ.get("AGECAST_STATE_DIR")
    assert state, "vouch() runs inside a test (tests/conftest.py sets AGECAST_STATE_DIR)"
    Vouches(Path(state)).add(read_package(folder), by="the test that made it")
    return folder
