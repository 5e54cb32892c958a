"""Export: a trained run becomes a package the live runtime loads, equal to torch; DFM trip."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import IdentityError, TrainError
from agecast.identities import IdentityModel, read_package
from agecast.identities.dfm import import_dfm
from agecast.inference import get_backend
from agecast.nets.df import SwapNet
from agecast.training.export import PARITY_LIMIT, ExportMeta, export_run
from agecast.training.train import TrainOptions, load_checkpoint, train
from tests.identities.conftest import vouch

from .conftest import SIZE


@pytest.fixture(scope="module")
def run(facesets: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    src, dst = facesets
    folder = tmp_path_factory.mktemp("export") / "run"
    options = TrainOptions(
        steps=20, lr=1e-3, resolution=SIZE, encoder_dims=8, decoder_dims=8, batch=4,
        device="cpu", preview_every=100, save_every=100,
    )  # fmt: skip
    train(src, dst, folder, options)
    return folder


def test_export_matches_torch_and_loads_live(run: Path, tmp_path: Path) -> None:
    report = export_run(
        run, tmp_path / "pkg", ExportMeta(identity_id="tiny", actor="Test", purpose="demo")
    )
    assert report.parity_max_abs_diff <= PARITY_LIMIT and report.parity_crops >= 1
    package = read_package(vouch(tmp_path / "pkg"))
    m = package.manifest
    assert m.age_range == (38, 75) and m.family == "agecast-df"
    assert m.provenance.parity_max_abs_diff == pytest.approx(report.parity_max_abs_diff, rel=0.01)
    assert "20 steps" in m.provenance.trained_by and (tmp_path / "pkg" / "preview.png").is_file()
    identity = IdentityModel.load(package, get_backend("onnxruntime"))
    assert identity.age_control == (38, 75, 75)
    crops = torch.rand(3, 3, SIZE, SIZE)
    young, old = identity.infer(crops, 38), identity.infer(crops, 75)
    net = SwapNet(load_checkpoint(run)[0]).eval()
    with torch.no_grad():
        expected = net(crops, torch.ones(3, 1))[0]
    assert float((old.faces - expected).abs().max()) <= PARITY_LIMIT
    assert old.masks is not None and old.masks.shape == (3, 1, SIZE, SIZE)
    assert float((young.faces - old.faces).abs().max()) > 0, "the age input changed nothing"


def test_a_likeness_without_consent_exports_but_does_not_load(run: Path, tmp_path: Path) -> None:
    export_run(run, tmp_path / "pkg", ExportMeta(identity_id="actor-x", actor="Actor X"))
    with pytest.raises(IdentityError, match="consent"):
        IdentityModel.load(read_package(tmp_path / "pkg"), get_backend("onnxruntime"))


def test_dfm_export_round_trips(run: Path, tmp_path: Path) -> None:
    report = export_run(
        run, tmp_path / "pkg", ExportMeta(identity_id="tiny", actor="T", purpose="demo"), fmt="dfm"
    )
    assert report.dfm is not None and report.dfm.is_file()
    imported = import_dfm(report.dfm, tmp_path / "back", id="tiny-dfm", actor="T")
    ours = IdentityModel.load(read_package(vouch(tmp_path / "pkg")), get_backend("onnxruntime"))
    package = read_package(imported)
    theirs = IdentityModel(package, get_backend("onnxruntime").load(package.model_path, label="t"))
    crops = torch.rand(2, 3, SIZE, SIZE)
    for age in (38, 60, 75):
        a, b = ours.infer(crops, age), theirs.infer(crops, age)
        assert float((a.faces - b.faces).abs().max()) < 1e-4


def test_export_errors_are_named(run: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainError, match="not a training run"):
        export_run(tmp_path, tmp_path / "pkg", ExportMeta(identity_id="x", actor="T"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "something").write_text("x")
    with pytest.raises(TrainError, match="not empty"):
        export_run(run, tmp_path / "full", ExportMeta(identity_id="x", actor="T"))
    result = CliRunner().invoke(
        app,
        ["export", str(run), "--out", str(tmp_path / "p2"), "--purpose", "celebrity"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 2
    assert "'celebrity' is not one of 'likeness', 'demo', 'tooling'" in result.output


def test_cli_export_prints_parity(run: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(
        app,
        ["export", str(run), "--out", str(tmp_path / "cli"), "--actor", "T", "--purpose", "demo"],
    )
    assert result.exit_code == 0, result.output
    assert "max |diff|" in result.output
    manifest = json.loads((tmp_path / "cli" / "manifest.json").read_text())
    assert manifest["id"] == "cli" and manifest["purpose"] == "demo"


def test_cli_export_with_consent_flags_loads(run: Path, tmp_path: Path) -> None:
    args = ["export", str(run), "--out", str(tmp_path / "actor"), "--actor", "Actor X",
            "--consent-granted-by", "Actor X (agent)", "--consent-production", "Test",
            "--consent-purpose", "on-set monitoring", "--consent-from", "2020-01-01",
            "--consent-until", "2099-12-31"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    package = read_package(tmp_path / "actor")
    assert package.manifest.consent is not None and package.manifest.consent.actor == "Actor X"
    IdentityModel.load(package, get_backend("onnxruntime")).close()
