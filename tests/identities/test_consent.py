"""A likeness runs only with its actor's consent in force; reading and listing need none."""

import json
from datetime import date
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import IdentityError
from agecast.identities import IdentityModel, discover, read_package, resolve
from agecast.identities.package import check_consent, load_model
from agecast.identities.vouch import Vouches
from agecast.inference import get_backend
from agecast.settings import REPO_MODELS_DIR

from .conftest import PackageFactory, valid_consent


def _refusal(folder: Path, today: date | None = None) -> str:
    with pytest.raises(IdentityError) as err:
        load_model(read_package(folder), get_backend("onnxruntime"), today=today)
    message = str(err.value)
    assert str(folder / "manifest.json") in message
    assert "models/README.md" in message
    return message


def test_valid_consent_runs(make_package: PackageFactory) -> None:
    package = read_package(make_package())
    assert package.manifest.consent is not None
    assert package.manifest.consent.valid_until == date(2099, 12, 31)
    IdentityModel.load(package, get_backend("onnxruntime")).close()


def test_missing_consent_is_refused(make_package: PackageFactory) -> None:
    folder = make_package(consent=None)
    message = _refusal(folder)
    assert "field consent is missing" in message and "Test Actor" in message
    manifest = json.loads((folder / "manifest.json").read_text())
    del manifest["consent"]  # absent, not null: the same refusal
    (folder / "manifest.json").write_text(json.dumps(manifest))
    assert "field consent is missing" in _refusal(folder)
    with pytest.raises(IdentityError, match="field consent is missing"):
        IdentityModel.load(read_package(folder), get_backend("onnxruntime"))


def test_expired_consent_is_refused(make_package: PackageFactory) -> None:
    folder = make_package(consent=valid_consent("Test Actor", valid_until="2021-06-30"))
    assert "field consent.valid_until" in _refusal(folder)
    assert "expired" in _refusal(folder)
    package = read_package(folder)
    check_consent(package, today=date(2021, 6, 30))  # the last day still counts
    with pytest.raises(IdentityError, match="consent.valid_until"):
        check_consent(package, today=date(2021, 7, 1))


def test_consent_not_yet_valid_is_refused(make_package: PackageFactory) -> None:
    folder = make_package(consent=valid_consent("Test Actor", valid_from="2098-01-01"))
    assert "field consent.valid_from" in _refusal(folder)
    package = read_package(make_package("later", id="later"))
    check_consent(package, today=date(2020, 1, 1))  # the first day counts
    with pytest.raises(IdentityError, match="consent.valid_from.*not in force yet"):
        check_consent(package, today=date(2019, 12, 31))
    with pytest.raises(IdentityError, match="consent.valid_until.*expired"):
        load_model(package, get_backend("onnxruntime"), today=date(2100, 1, 1))


def test_consent_for_another_actor_is_refused(make_package: PackageFactory) -> None:
    folder = make_package(consent=valid_consent("Somebody Else"))
    message = _refusal(folder)
    assert "field consent.actor 'Somebody Else' does not match field actor 'Test Actor'" in message


def test_vouched_tooling_needs_no_consent(make_package: PackageFactory, tmp_path: Path) -> None:
    folder = make_package(purpose="tooling", consent=None)
    vouches = Vouches(tmp_path / "state")
    vouches.add(read_package(folder), by="test")
    package = read_package(folder)
    load_model(package, get_backend("onnxruntime"), date(1990, 1, 1), vouches).close()
    builtin = read_package(REPO_MODELS_DIR / "testpattern")
    assert builtin.manifest.purpose == "tooling" and builtin.manifest.consent is None
    IdentityModel.load(builtin, get_backend("onnxruntime")).close()


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        (
            {"valid_until": "2019-12-31"},
            "field consent.valid_until: 2019-12-31 is before",
        ),
        ({"purposes": []}, "field consent.purposes"),
        ({"purposes": ["dailies", " "]}, "field consent.purposes"),
        ({"valid_from": "1st of May"}, "field consent.valid_from"),
        ({"granted_by": "  "}, "field consent.granted_by"),
        ({"signed": True}, "unknown field 'consent.signed'"),
    ],
)
def test_malformed_consent_is_named_when_read(
    make_package: PackageFactory, change: dict[str, object], needle: str
) -> None:
    folder = make_package(consent=valid_consent("Test Actor", **change))
    with pytest.raises(IdentityError) as err:
        read_package(folder)
    assert needle in str(err.value) and str(folder / "manifest.json") in str(err.value)


def test_packages_without_consent_can_be_read_listed_and_inspected(
    make_package: PackageFactory, tmp_path: Path
) -> None:
    folder = make_package(consent=valid_consent("Test Actor", valid_until="2021-01-01"))
    assert [p.manifest.id for p in discover([tmp_path])] == ["invert"]
    runner = CliRunner()
    inspected = runner.invoke(app, ["identity", "inspect", str(folder)])
    assert inspected.exit_code == 0, inspected.output
    consent = json.loads(inspected.stdout)["consent"]
    assert consent["valid_until"] == "2021-01-01" and consent["actor"] == "Test Actor"
    validated = runner.invoke(app, ["identity", "validate", str(folder)])
    assert validated.exit_code == 2 and "consent.valid_until" in validated.output


def test_auto_prefers_an_identity_that_may_run(
    make_package: PackageFactory, tmp_path: Path
) -> None:
    make_package(
        "a-lapsed", id="a-lapsed", consent=valid_consent("Test Actor", valid_until="2021-01-01")
    )
    tool = make_package("tool", id="tool", purpose="tooling", consent=None)
    vouches = Vouches(tmp_path / "state")
    vouches.add(read_package(tool), by="test")
    assert resolve("auto", [tmp_path], vouches=vouches).manifest.id == "tool"
    make_package("b-consented", id="b-consented")
    assert resolve("auto", [tmp_path], vouches=vouches).manifest.id == "b-consented"
    assert resolve("a-lapsed", [tmp_path]).manifest.id == "a-lapsed"  # asked for: load refuses
