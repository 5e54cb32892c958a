"""Colour transfer on auto follows the identity; the operator's explicit choice wins."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from agecast.identities import IdentityModel, read_package
from agecast.inference import get_backend
from agecast.pipeline.fx import colour_for
from tests.identities.conftest import invert_model, manifest_for, vouch


def _identity(tmp_path: Path, **overrides: object) -> IdentityModel:
    data = invert_model(32).SerializeToString()
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "model.onnx").write_bytes(data)
    (folder / "manifest.json").write_text(json.dumps(manifest_for(data, 32, **overrides)))
    if overrides.get("purpose", "likeness") != "likeness":
        vouch(folder)
    return IdentityModel.load(read_package(folder), get_backend("onnxruntime"))


@pytest.mark.parametrize(
    ("declared", "setting", "expected"),
    [
        (None, "auto", "rct"),
        ("none", "auto", "none"),
        ("rct-lab", "auto", "rct-lab"),
        ("none", "rct", "rct"),
        (None, "none", "none"),
    ],
)
def test_auto_follows_the_identity(
    tmp_path: Path, declared: str | None, setting: str, expected: str
) -> None:
    identity = _identity(tmp_path, color_transfer=declared)
    assert colour_for(identity, setting) == expected  # type: ignore[arg-type]


def test_tooling_is_never_colour_matched(tmp_path: Path) -> None:
    identity = _identity(tmp_path, purpose="tooling", consent=None)
    assert colour_for(identity, "rct") == "none"
