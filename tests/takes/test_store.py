"""The take store: names, ids, versions and never overwriting."""

from __future__ import annotations

from pathlib import Path

import pytest

from agecast.errors import TakeError
from agecast.takes.store import TakeStore


@pytest.mark.parametrize(
    ("scene", "take", "camera", "field"),
    [
        ("../x", "1", None, "scene"),
        ("", "1", None, "scene"),
        ("a/b", "1", None, "scene"),
        ("s1", "..", None, "take"),
        ("s1", "a\\b", None, "take"),
        ("s1", "1", "../../etc", "camera"),
        ("s1", "", None, "take"),
        ("s1", "x" * 65, None, "take"),
    ],
)
def test_bad_names_are_refused_naming_the_field(
    tmp_path: Path, scene: str, take: str, camera: str | None, field: str
) -> None:
    store = TakeStore(tmp_path / "takes")
    with pytest.raises(TakeError, match=field) as info:
        store.create(scene, take, camera)
    assert "letters, digits" in str(info.value)
    assert not (tmp_path / "x").exists()
    assert not any((tmp_path / "takes").glob("*/take.json"))


def test_create_list_get_and_versions(tmp_path: Path) -> None:
    store = TakeStore(tmp_path)
    first = store.create("s1", "1")
    second = store.create("s1", "2", "A")
    assert first.id == "s1_1" and second.id == "s1_2_A"
    assert [i.id for i in store.list()] == ["s1_2_A", "s1_1"]
    assert store.get("s1_1").info.status == "recording"
    assert first.versions() == []
    assert first.new_version() == "v1"
    assert first.new_version() == "v2"
    assert first.versions() == ["v1", "v2"]
    assert first.aged_path("v2") == tmp_path / "s1_1" / "versions" / "v2" / "aged.mp4"
    assert first.sidecar_path("v1").name == "sidecar.jsonl"
    first.update_info(frames=12, status="complete")
    assert store.get("s1_1").info.frames == 12


def test_takes_are_never_overwritten(tmp_path: Path) -> None:
    store = TakeStore(tmp_path)
    take = store.create("s1", "7")
    take.raw_path.write_bytes(b"picture")
    with pytest.raises(TakeError, match="never overwritten — use take 8"):
        store.create("s1", "7")
    assert take.raw_path.read_bytes() == b"picture"


def test_unknown_take_names_close_ones(tmp_path: Path) -> None:
    store = TakeStore(tmp_path)
    store.create("scene1", "1")
    with pytest.raises(TakeError, match="scene1_1") as info:
        store.get("scene1_2")
    assert "scene1_2" in str(info.value)
    with pytest.raises(TakeError, match="not valid"):
        store.get("../scene1_1")
