"""``agecast cast add | list | show | remove``: enrol real photos, list, refuse what is wrong."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from agecast.cast.roster import load_roster
from agecast.cast.scene import reference_photos

runner = CliRunner()


def agecast(*args: str) -> tuple[int, str]:
    from agecast.cli import app

    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_enrol_list_show_remove(tmp_path: Path) -> None:
    photos = reference_photos(tmp_path / "photos", ("lead-a", "lead-b"))
    state = ["--state-dir", str(tmp_path / "state")]
    code, out = agecast(
        "cast", "add", "Lead A", "--photos", str(photos["lead-a"]), "--identity", "demo-aged",
        "--age", "30", *state,
    )  # fmt: skip
    assert code == 0, out
    assert "enrolled Lead A from 4 reference(s)" in out
    code, out = agecast("cast", "add", "Lead B", "--photos", str(photos["lead-b"]), *state)
    assert code == 0, out
    code, out = agecast("cast", "list", "--json", *state)
    listed = json.loads(out)
    assert [(m["name"], m["identity"], m["age"], m["references"]) for m in listed] == [
        ("Lead A", "demo-aged", 30.0, 4),
        ("Lead B", None, None, 4),
    ]
    assert "embeddings" not in out  # faces of real people are not printed
    code, out = agecast("cast", "show", "lead a", *state)
    assert code == 0 and json.loads(out)["photos"][0].startswith("lead-a")
    code, out = agecast("cast", "remove", "Lead B", *state)
    assert code == 0, out
    assert [m.name for m in load_roster(tmp_path / "state" / "cast.json").members] == ["Lead A"]


def test_enrolment_refuses_what_is_wrong(tmp_path: Path) -> None:
    state = ["--state-dir", str(tmp_path / "state")]
    blank = tmp_path / "blank.png"
    Image.new("RGB", (320, 240), (90, 90, 90)).save(blank)
    code, out = agecast("cast", "add", "Nobody", "--photos", str(blank), *state)
    assert code == 2 and "blank.png shows no face" in out
    not_image = tmp_path / "notes.jpg"
    not_image.write_text("not a picture")
    code, out = agecast("cast", "add", "X", "--photos", str(not_image), *state)
    assert code == 2 and "notes.jpg cannot be read as an image" in out
    code, out = agecast("cast", "add", "X", "--photos", str(tmp_path / "missing"), *state)
    assert code == 2 and "does not exist" in out
    photos = reference_photos(tmp_path / "photos", ("lead-a",))
    code, out = agecast(
        "cast", "add", "X", "--photos", str(photos["lead-a"]), "--identity", "no-such-id", *state
    )
    assert code == 2 and "no-such-id" in out
    code, out = agecast("cast", "add", "Lead A", "--photos", str(photos["lead-a"]), *state)
    assert code == 0, out
    code, out = agecast("cast", "add", "lead a", "--photos", str(photos["lead-a"]), *state)
    assert code == 2 and "already has" in out and "--replace" in out
    code, out = agecast("cast", "remove", "Zed", *state)
    assert code == 2 and "no cast member called 'Zed'" in out and "Lead A" in out
