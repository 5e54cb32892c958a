"""The cast file: saved whole and owner-only, read back, and bad files named."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from agecast.cast.roster import Member, Roster, check_name, load_roster, save_roster
from agecast.errors import CastError


def member(name: str, identity: str | None = None) -> Member:
    return Member(name=name, identity=identity, age=40.0, embeddings=[[0.6, 0.8], [1.0, 0.0]])


def test_save_and_load_keep_every_member(tmp_path: Path) -> None:
    path = tmp_path / "state" / "cast.json"
    roster = Roster()
    roster.add(member("Ann Lee", "demo-aged"))
    roster.add(member("bob"))
    save_roster(roster, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600  # embeddings of real people
    again = load_roster(path)
    assert [m.name for m in again.members] == ["Ann Lee", "bob"]
    assert again.get("ann lee").identity == "demo-aged"  # names match without case
    assert again.members[1].embeddings == [[0.6, 0.8], [1.0, 0.0]]


def test_adding_twice_needs_replace_and_removing_an_unknown_name_says_who_is_there() -> None:
    roster = Roster()
    roster.add(member("ann"))
    with pytest.raises(CastError, match="already has 'ann'.*--replace"):
        roster.add(member("ann"))
    roster.add(member("ann", "demo-swap"), replace=True)
    assert roster.get("ann").identity == "demo-swap" and len(roster.members) == 1
    with pytest.raises(CastError, match="no cast member called 'zed' .*ann"):
        roster.remove("zed")


def test_missing_file_is_an_empty_cast_unless_required(tmp_path: Path) -> None:
    assert load_roster(tmp_path / "none.json").members == []
    with pytest.raises(CastError, match="does not exist.*cast add"):
        load_roster(tmp_path / "none.json", missing_ok=False)


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{not json", "not a valid agecast cast"),
        (json.dumps({"members": [{"name": "x", "embeddings": []}]}), "embeddings"),
        (json.dumps({"members": [{"name": "../etc", "embeddings": [[1.0]]}]}), "name"),
        (json.dumps({"format": "other/9", "members": []}), "format"),
    ],
)
def test_a_bad_cast_file_is_named(tmp_path: Path, text: str, says: str) -> None:
    path = tmp_path / "cast.json"
    path.write_text(text)
    with pytest.raises(CastError, match=f"{path}.*") as err:
        load_roster(path)
    assert says in str(err.value)


def test_member_names_are_checked() -> None:
    assert check_name("Lead A") == "Lead A"
    for bad in ("", " lead", "a/b", "x" * 49):
        with pytest.raises(CastError, match="not valid"):
            check_name(bad)
