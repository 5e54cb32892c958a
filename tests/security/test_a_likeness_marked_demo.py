"""Attack 9: a package's purpose is what its author wrote. A real actor's likeness marked
``demo`` (or ``tooling``) ran with no consent. Now the claim counts only with a vouch from this
server's owner (or for agecast's own shipped packages): otherwise the package is held to a
likeness's rule, and the refusal says how to put it right."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import IdentityError
from agecast.identities import IdentityModel, read_package, resolve
from agecast.identities.vouch import Vouches
from agecast.inference import get_backend
from agecast.settings import REPO_MODELS_DIR, Settings
from tests.identities.conftest import PackageFactory, make_package, valid_consent

__all__ = ["make_package"]  # the fixture, shared with tests/identities

runner = CliRunner()


@pytest.fixture
def disguised(make_package: PackageFactory) -> Path:
    """Someone's face, handed over as a 'demo' with no consent record."""
    return make_package(
        "star", id="star", actor="A Real Actor", display_name="Demo", purpose="demo", consent=None
    )


def test_a_likeness_marked_demo_does_not_load(disguised: Path) -> None:
    with pytest.raises(IdentityError) as refused:
        IdentityModel.load(read_package(disguised), get_backend("onnxruntime"))
    message = str(refused.value)
    assert "field purpose says 'demo'" in message and "vouched" in message
    assert f"agecast identity vouch {disguised}" in message  # the owner's way to run it
    validated = runner.invoke(app, ["identity", "validate", str(disguised)])
    assert validated.exit_code == 2 and "vouched" in validated.output


def test_the_server_does_not_start_on_it_or_pick_it_for_auto(
    disguised: Path, tmp_path: Path
) -> None:
    from agecast.pipeline.build import load_identity

    settings = Settings(identity="star", identities_dir=[tmp_path])
    with pytest.raises(IdentityError, match="field purpose says 'demo'"):
        load_identity(settings, get_backend("onnxruntime"))
    # auto skips it for an identity that may run
    shipped = [tmp_path, REPO_MODELS_DIR]
    assert resolve("auto", shipped, vouches=Vouches.default()).manifest.id != "star"


def test_the_owners_vouch_lets_it_run_until_it_changes(
    disguised: Path, agecast_state_dir: Path
) -> None:
    done = runner.invoke(app, ["identity", "vouch", str(disguised)])
    assert done.exit_code == 0, done.output
    vouches = json.loads((agecast_state_dir / "vouched.json").read_text())
    assert [v["id"] for v in vouches] == ["star"]
    assert (agecast_state_dir / "vouched.json").stat().st_mode & 0o777 == 0o600
    IdentityModel.load(read_package(disguised), get_backend("onnxruntime")).close()
    listed = runner.invoke(app, ["identity", "vouch"])
    assert "star" in listed.output and "demo" in listed.output

    # a vouch is for these bytes: the same package with another manifest is not vouched for
    manifest = json.loads((disguised / "manifest.json").read_text())
    manifest["display_name"] = "Demo (v2)"
    (disguised / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IdentityError, match="vouched"):
        IdentityModel.load(read_package(disguised), get_backend("onnxruntime"))

    runner.invoke(app, ["identity", "vouch", str(disguised)])
    IdentityModel.load(read_package(disguised), get_backend("onnxruntime")).close()
    withdrawn = runner.invoke(app, ["identity", "vouch", "star", "--withdraw"])
    assert withdrawn.exit_code == 0, withdrawn.output
    with pytest.raises(IdentityError, match="vouched"):
        IdentityModel.load(read_package(disguised), get_backend("onnxruntime"))
    again = runner.invoke(app, ["identity", "vouch", "star", "--withdraw"])
    assert again.exit_code == 2 and "no vouch for 'star'" in again.output


def test_a_likeness_is_never_vouched_for(make_package: PackageFactory) -> None:
    folder = make_package("lead", id="lead", consent=None)
    done = runner.invoke(app, ["identity", "vouch", str(folder)])
    assert done.exit_code == 2 and "consent" in done.output


def test_a_demo_with_its_actors_consent_runs_without_a_vouch(make_package: PackageFactory) -> None:
    folder = make_package(
        "consented", id="consented", purpose="demo", consent=valid_consent("Test Actor")
    )
    IdentityModel.load(read_package(folder), get_backend("onnxruntime")).close()


def test_the_shipped_packages_need_no_vouch(agecast_state_dir: Path) -> None:
    assert not (agecast_state_dir / "vouched.json").exists()
    for name in ("demo-aged", "testpattern"):
        IdentityModel.load(read_package(REPO_MODELS_DIR / name), get_backend("onnxruntime")).close()
