import json
from pathlib import Path

from typer.testing import CliRunner

from agecast.cli import app
from agecast.identities.package import read_package
from agecast.identities.testpattern import build_package
from agecast.settings import REPO_MODELS_DIR

runner = CliRunner()


def test_help_lists_the_commands_a_newcomer_needs() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("render", "bench", "serve", "backends", "identity"):
        assert command in result.output
    render_help = runner.invoke(app, ["render", "--help"]).output
    assert "--source" in render_help and "--identity" in render_help and "--report" in render_help


def test_render_with_a_bad_source_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["render", "--source", str(tmp_path / "nope.mov"), "--out", str(tmp_path / "o.mp4")]
    )
    assert result.exit_code == 2
    assert "nope.mov" in result.output


def test_render_with_a_bad_setting_fails_clearly(tmp_path: Path) -> None:
    result = runner.invoke(app, ["render", "--blend", "4", "--out", str(tmp_path / "o.mp4")])
    assert result.exit_code == 2 and "blend" in result.output


def test_identity_commands(tmp_path: Path) -> None:
    listed = runner.invoke(app, ["identity", "list"])
    assert listed.exit_code == 0 and "testpattern" in listed.output
    inspected = runner.invoke(app, ["identity", "inspect", "testpattern"])
    assert inspected.exit_code == 0 and json.loads(inspected.stdout)["purpose"] == "tooling"
    ok = runner.invoke(app, ["identity", "validate", str(REPO_MODELS_DIR / "testpattern")])
    assert ok.exit_code == 0, ok.output
    (tmp_path / "broken").mkdir()
    bad = runner.invoke(app, ["identity", "validate", str(tmp_path / "broken")])
    assert bad.exit_code == 2 and "an identity package needs a manifest" in bad.output


def test_backends_table() -> None:
    result = runner.invoke(app, ["backends"])
    assert result.exit_code == 0 and "onnxruntime" in result.output and "usable" in result.output


def test_committed_testpattern_package_is_reproducible(tmp_path: Path) -> None:
    rebuilt = read_package(build_package(tmp_path / "tp"))
    committed = read_package(REPO_MODELS_DIR / "testpattern")
    assert rebuilt.manifest.model.sha256 == committed.manifest.model.sha256
    assert rebuilt.manifest == committed.manifest


def test_render_takes_local_age_offsets(tmp_path: Path) -> None:
    """--age-offsets reaches the render (a bad region is named, the good one renders)."""
    bad = CliRunner().invoke(
        app,
        ["render", "--source", "demo", "--age-offsets", "nose:3", "--out", str(tmp_path / "a.mp4")],
    )
    assert bad.exit_code != 0 and "forehead, eyes, mouth, hair" in bad.output
