from pathlib import Path

import pytest

from agecast.errors import SettingsError
from agecast.settings import Settings


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    for key in list(os.environ):
        if key.startswith("AGECAST_"):
            monkeypatch.delenv(key)


def test_defaults_run_the_embedded_demo() -> None:
    s = Settings.load()
    assert s.source == "demo"
    assert s.identity == "auto"
    assert s.layout == "side-by-side"


def test_precedence_flags_over_env_over_toml(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "set.toml"
    cfg.write_text('source = "testpattern"\nblend = 0.5\nlayout = "aged"\n')
    monkeypatch.setenv("AGECAST_BLEND", "0.7")
    s = Settings.load(cfg)
    assert (s.source, s.blend, s.layout) == ("testpattern", 0.7, "aged")
    s = Settings.load(cfg, blend=0.2, layout=None)
    assert (s.blend, s.layout) == (0.2, "aged")


def test_toml_agecast_table_is_accepted(tmp_path: Path) -> None:
    cfg = tmp_path / "set.toml"
    cfg.write_text('[agecast]\nsource = "clip.mp4"\n')
    assert Settings.load(cfg).source == "clip.mp4"


@pytest.mark.parametrize(
    ("text", "needle"),
    [('sorce = "x"\n', "unknown key(s) sorce"), ("blend = [\n", "not valid TOML")],
)
def test_bad_toml_names_file_and_key(tmp_path: Path, text: str, needle: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    with pytest.raises(SettingsError) as err:
        Settings.load(cfg)
    assert needle in str(err.value)
    assert str(cfg) in str(err.value)


def test_unknown_flag_and_env_are_rejected(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError, match="unknown setting 'bogus'"):
        Settings.load(bogus=1)
    monkeypatch.setenv("AGECAST_BLNED", "1")
    with pytest.raises(SettingsError, match="AGECAST_BLNED"):
        Settings.load()


def test_out_of_range_value_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGECAST_BLEND", "7")
    with pytest.raises(SettingsError, match="blend"):
        Settings.load()


def test_local_age_offsets_from_toml_env_and_flags(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = tmp_path / "set.toml"
    cfg.write_text("[agecast]\nage_offsets = { eyes = -10, hair = 5 }\n")
    assert Settings.load(cfg).age_offsets == (0.0, -10.0, 0.0, 5.0)
    monkeypatch.setenv("AGECAST_AGE_OFFSETS", '{"forehead": 4}')
    assert Settings.load().age_offsets == (4.0, 0.0, 0.0, 0.0)
    assert Settings.load(age_offsets="mouth:-3").age_offsets == (0.0, 0.0, -3.0, 0.0)
    with pytest.raises(SettingsError, match="nose"):
        Settings.load(age_offsets="nose:2")
    with pytest.raises(SettingsError, match="60 years"):
        Settings.load(age_offsets="eyes:-90")


@pytest.mark.parametrize(
    "text",
    ["/a:/b", "/a,/b", '["/a", "/b"]', " /a : /b "],
    ids=["colon", "comma", "json", "spaces"],
)
def test_folders_are_given_as_plain_paths_or_json(
    monkeypatch: pytest.MonkeyPatch, text: str
) -> None:
    monkeypatch.setenv("AGECAST_IDENTITIES_DIR", text)
    assert Settings.load().identities_dir == [Path("/a"), Path("/b")]
    assert Settings.load(identities_dir="/only").identities_dir == [Path("/only")]


def test_cameras_split_at_commas_not_at_the_colons_of_their_uris(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AGECAST_CAMERAS", "A=rtsp://10.0.0.21:554/s?x=1,B=udp://239.0.0.1:5000")
    assert Settings.load().cameras == ["A=rtsp://10.0.0.21:554/s?x=1", "B=udp://239.0.0.1:5000"]


def test_a_bad_value_is_explained_in_the_settings_words(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SettingsError) as err:
        Settings.load(age=500, layout="up")
    text = str(err.value)
    assert "age must be at most 130" in text and "(got 500)" in text
    assert "layout must be one of 'side-by-side', 'aged' or 'raw' (got 'up')" in text
    assert "pydantic" not in text and "https://" not in text
    monkeypatch.setenv("AGECAST_CAMERAS", "[broken")
    with pytest.raises(SettingsError, match="not one"):
        Settings.load()


def test_a_rerender_setting_is_explained_the_same_way() -> None:
    from agecast.takes.rerender import parse_sets

    with pytest.raises(SettingsError) as err:
        parse_sets(["age=500"])
    assert str(err.value) == "cannot re-render: setting age must be at most 130.0 (got '500')"
