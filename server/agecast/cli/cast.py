"""``agecast cast``: who the monitor recognises, and the identity and age each of them gets."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agecast.cli.options import command_group, settings_flags
from agecast.cli.output import console, fail
from agecast.errors import AgecastError
from agecast.settings import Settings

group = cast_app = command_group(
    "The cast: enrol actors from reference photos so each gets their own identity and age; "
    "faces of anyone else are left as the plate."
)


def cast_add(
    settings: Settings,
    name: Annotated[str, typer.Argument(help="the member's name (letters, digits, space . _ ' -)")],
    photos: Annotated[
        list[Path] | None,
        typer.Option("--photos", help="reference photos or folders of them (several angles)"),
    ] = None,
    faceset: Annotated[
        Path | None,
        typer.Option(help="enrol from a faceset folder instead (agecast faceset extract)"),
    ] = None,
    identity: Annotated[
        str | None,
        typer.Option(help="installed identity id for this member (default: the monitor's)"),
    ] = None,
    age: Annotated[
        float | None, typer.Option(min=0, max=130, help="target age (default: the live age)")
    ] = None,
    replace: Annotated[
        bool, typer.Option("--replace", help="enrol an existing member again")
    ] = False,
) -> None:
    """Enrol a cast member from reference photos (front, three-quarter, profile) or a faceset."""
    from agecast.cast.commands import add_member

    try:
        member = add_member(
            settings, name, photos=photos, faceset=faceset, identity=identity, age=age,
            replace=replace,
        )  # fmt: skip
    except AgecastError as exc:
        raise fail(exc) from exc
    shown_age = "(live)" if member.age is None else f"{member.age:g}"
    console.print(
        f"enrolled {member.name} from {len(member.embeddings)} reference(s) → identity "
        f"{member.identity or '(the monitor’s)'}, age {shown_age}; cast file "
        f"{settings.resolved_cast_file}"
    )


def cast_list(
    settings: Settings,
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
) -> None:
    """The cast: each member's identity, age and number of reference faces."""
    from agecast.cast.commands import describe
    from agecast.cast.roster import load_roster

    try:
        members = [describe(m) for m in load_roster(settings.resolved_cast_file).members]
    except AgecastError as exc:
        raise fail(exc) from exc
    if json_out:
        sys.stdout.write(json.dumps(members, indent=2) + "\n")
        return
    if not members:
        console.print(
            f"no cast in {settings.resolved_cast_file}: one identity for the main face "
            "(enrol with 'agecast cast add NAME --photos DIR')"
        )
        return
    table = Table(title=f"cast ({settings.resolved_cast_file})")
    for col in ("name", "identity", "age", "references", "added"):
        table.add_column(col)
    for m in members:
        table.add_row(
            m["name"], m["identity"] or "(the monitor's)",
            "(live)" if m["age"] is None else f"{m['age']:g}", str(m["references"]), m["added"],
        )  # fmt: skip
    Console().print(table)


def cast_show(
    settings: Settings, name: Annotated[str, typer.Argument(help="the member's name")]
) -> None:
    """One member, with the photos they were enrolled from (never their embeddings)."""
    from agecast.cast.commands import describe
    from agecast.cast.roster import load_roster

    try:
        member = load_roster(settings.resolved_cast_file, missing_ok=False).get(name)
    except AgecastError as exc:
        raise fail(exc) from exc
    sys.stdout.write(json.dumps(describe(member), indent=2) + "\n")


def cast_remove(
    settings: Settings, name: Annotated[str, typer.Argument(help="the member's name")]
) -> None:
    """Remove a member (their face is left as the plate from the next start of the monitor)."""
    from agecast.cast.commands import remove_member

    try:
        member = remove_member(settings, name)
    except AgecastError as exc:
        raise fail(exc) from exc
    console.print(f"removed {member.name} from the cast ({settings.resolved_cast_file})")


cast_app.command("add")(settings_flags(cast_add))
cast_app.command("list")(settings_flags(cast_list))
cast_app.command("show")(settings_flags(cast_show))
cast_app.command("remove")(settings_flags(cast_remove))
