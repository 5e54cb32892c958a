"""The presets store and the takes/presets commands (in-process through typer's runner)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import SettingsError
from agecast.settings import Settings
from agecast.takes.presets import PresetStore, make_preset
from agecast.takes.recorder import record
from agecast.takes.store import TakeStore

from .conftest import take_settings


def test_preset_store_saves_atomically_and_refuses_bad_input(tmp_path: Path) -> None:
    store = PresetStore(tmp_path)
    store.save(make_preset("old-age", identity="testpattern", age=70, blend=0.9))
    store.save(make_preset("soft", mask_feather=0.2))
    assert [p.name for p in store.list()] == ["old-age", "soft"]
    assert store.get("old-age").values() == {"identity": "testpattern", "age": 70, "blend": 0.9}
    assert not list(tmp_path.glob(".*.tmp"))  # written through a temporary file, then replaced
    data = json.loads((tmp_path / "presets.json").read_text())
    assert set(data["presets"]) == {"old-age", "soft"}
    with pytest.raises(SettingsError, match="preset name '../x' is not allowed"):
        make_preset("../x", blend=0.5)
    with pytest.raises(SettingsError, match="blend"):
        make_preset("loud", blend=3)
    with pytest.raises(SettingsError, match="sets nothing"):
        make_preset("empty")
    with pytest.raises(SettingsError, match="no preset 'nope' to delete"):
        store.delete("nope")
    store.delete("soft")
    with pytest.raises(SettingsError, match="presets: old-age"):
        store.get("soft")
    (tmp_path / "presets.json").write_text("{not json")
    with pytest.raises(SettingsError, match="not valid JSON"):
        store.list()


def flat(text: str) -> str:
    """Output with rich's line wrapping undone."""
    return " ".join(text.split())


def _env(tmp: Path) -> dict[str, str]:
    return {"AGECAST_STATE_DIR": str(tmp / "state"), "AGECAST_TAKES_DIR": str(tmp / "takes")}


def test_takes_and_presets_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    env = _env(tmp_path)
    settings: Settings = take_settings(tmp_path)
    info = record(settings, "cli", "1", seconds=0.5)

    listed = runner.invoke(app, ["takes", "list", "--json"], env=env)
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [info.id] and rows[0]["versions"] == ["v1"]
    shown = runner.invoke(app, ["takes", "show", info.id], env=env)
    assert json.loads(shown.stdout)["frames"] == info.frames
    missing = runner.invoke(app, ["takes", "show", "cli_2"], env=env)
    assert missing.exit_code == 2 and "close: cli_1" in flat(missing.output)

    rendered = runner.invoke(
        app,
        ["takes", "render", info.id, "--identity", "testpattern", "--set", "blend=0.4",
         "--out", str(tmp_path / "v2.mp4")],
        env=env,
    )  # fmt: skip
    assert rendered.exit_code == 0, rendered.output
    assert rendered.stdout.split("\t")[:2] == [info.id, "v2"]
    assert (tmp_path / "v2.mp4").stat().st_size > 0
    assert TakeStore(settings.resolved_takes_dir).get(info.id).versions() == ["v1", "v2"]

    out = tmp_path / "raw.mov"
    args = ["takes", "export", info.id, "--version", "raw", "--format", "prores", "--out", str(out)]
    exported = runner.invoke(app, args, env=env)
    assert exported.exit_code == 0, exported.output
    assert out.stat().st_size > 0

    saved = runner.invoke(app, ["presets", "save", "day", "--blend", "0.7"], env=env)
    assert saved.exit_code == 0, saved.output
    listed = runner.invoke(app, ["presets", "list", "--json"], env=env)
    assert json.loads(listed.stdout)[0]["blend"] == 0.7
    assert runner.invoke(app, ["presets", "delete", "day"], env=env).exit_code == 0
    assert runner.invoke(app, ["presets", "delete", "day"], env=env).exit_code == 2

    again = runner.invoke(
        app, ["record", "--scene", "cli", "--take", "1", "--seconds", "1"], env=env
    )
    assert again.exit_code == 2 and "never overwritten — use take 2" in flat(again.output)
    bad = runner.invoke(app, ["record", "--scene", "a/b", "--take", "1", "--seconds", "1"], env=env)
    assert bad.exit_code == 2 and "scene 'a/b' is not allowed" in flat(bad.output)
