import json
from pathlib import Path
from typing import Any

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


def test_every_setting_has_its_flag() -> None:
    from agecast.settings import Settings

    shown = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "250"}).output
    for name in Settings.model_fields:
        assert f"--{name.replace('_', '-')}" in shown, name
        assert f"AGECAST_{name.upper()}" in shown, name
    assert "--no-loop" in shown and "--no-ai-mark" in shown


def test_the_loop_and_identities_dir_flags_reach_the_settings(tmp_path: Path) -> None:
    build_package(tmp_path / "a" / "tp")
    listed = runner.invoke(
        app, ["render", "--no-loop", "--identities-dir", f"{tmp_path / 'a'}:{tmp_path / 'b'}",
              "--identity", "nope", "--out", str(tmp_path / "o.mp4")],
    )  # fmt: skip
    assert listed.exit_code == 2
    assert str(tmp_path / "a") in listed.output and str(tmp_path / "b") in listed.output


def test_help_starts_a_newcomer_with_serve() -> None:
    text = runner.invoke(app, ["--help"], env={"COLUMNS": "200"}).output
    assert "Start with `agecast serve`" in text


def test_identity_list_fits_80_columns_and_reads_only_manifests(tmp_path: Path) -> None:
    import subprocess
    import sys

    script = (
        "import sys\n"
        "from agecast.cli import app\n"
        "try:\n"
        "    app(['identity', 'list'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "heavy = sorted(m for m in ('torch', 'onnxruntime', 'cv2', 'av') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"COLUMNS": "80", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[-1] == "HEAVY []"  # no model library is even imported
    table = lines[:-1]
    assert all(len(line) <= 80 for line in table), table
    assert table[1].split() == ["ID", "AGE", "PURPOSE", "NAME"]
    assert any(line.startswith("testpattern ") for line in table)


def test_links_use_the_address_serve_recorded(tmp_path: Path) -> None:
    from agecast.serving import record_address

    env = {"AGECAST_STATE_DIR": str(tmp_path)}
    first = runner.invoke(app, ["links", "create"], env=env)
    assert first.exit_code == 0 and first.stdout.startswith("http://127.0.0.1:8000/?token=")
    record_address(tmp_path, "https://monitor.local:9443", "0.0.0.0", 9443)
    made = runner.invoke(app, ["links", "create", "--role", "operator"], env=env)
    assert made.exit_code == 0 and made.stdout.startswith("https://monitor.local:9443/?token=")
    given = runner.invoke(app, ["links", "create", "--url", "http://x:1"], env=env)
    assert given.stdout.startswith("http://x:1/?token=")


def _commands(command: Any, path: list[str]) -> list[list[str]]:
    found = [path]
    for name, sub in getattr(command, "commands", {}).items():
        found += _commands(sub, [*path, name])
    return found


def test_every_command_has_its_help() -> None:
    import typer

    paths = _commands(typer.main.get_command(app), [])
    assert len(paths) > 30  # the groups and their commands, not the top level alone
    for path in paths:
        shown = runner.invoke(app, [*path, "--help"], env={"COLUMNS": "200"})
        assert shown.exit_code == 0 and "Usage:" in shown.output, (path, shown.output)


def test_typed_choices_are_the_ones_the_commands_take() -> None:
    """The CLI's choices for a link's role and a take's format are those of the code behind."""
    from typing import get_args

    from agecast.api.auth import ROLES
    from agecast.cli.links import LinkRole
    from agecast.cli.takes import TakeFormat
    from agecast.takes.rerender import ExportFormat

    assert set(get_args(LinkRole)) == set(ROLES)
    assert set(get_args(TakeFormat)) == set(get_args(ExportFormat))


def test_a_bad_choice_names_the_valid_ones() -> None:
    shown = runner.invoke(app, ["--log-level", "loud", "backends"], env={"COLUMNS": "200"})
    assert shown.exit_code == 2
    assert "'loud' is not one of 'debug', 'info', 'warning', 'error'" in shown.output
    assert runner.invoke(app, ["--log-level", "WARNING", "backends"]).exit_code == 0
