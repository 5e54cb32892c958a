"""``agecast presets``: named presets (identity × age × look), switchable live."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.table import Table

from agecast.cli.options import ConfigOpt, command_group, load_settings
from agecast.cli.output import console, fail
from agecast.errors import AgecastError

if TYPE_CHECKING:
    from agecast.takes.presets import PresetStore

group = presets_app = command_group("Named presets (identity × age × look), switchable live.")


def _presets(config: Path | None) -> PresetStore:
    from agecast.takes.presets import PresetStore

    return PresetStore(load_settings(config).state_dir)


@presets_app.command("list")
def presets_list(
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    config: ConfigOpt = None,
) -> None:
    """Saved presets."""
    presets = _presets(config).list()
    if json_out:
        sys.stdout.write(json.dumps([p.model_dump(mode="json") for p in presets], indent=2) + "\n")
        return
    table = Table(title="presets")
    for col in ("name", "actor", "identity", "age", "blend", "colour", "feather"):
        table.add_column(col)
    for p in presets:
        cells = (p.actor, p.identity, p.age, p.blend, p.color_transfer, p.mask_feather)
        table.add_row(p.name, *("" if c is None else str(c) for c in cells))
    Console().print(table)


@presets_app.command("save")
def presets_save(
    name: Annotated[str, typer.Argument(help="preset name (letters, digits, . _ -)")],
    identity: Annotated[str | None, typer.Option(help="identity id")] = None,
    actor: Annotated[str | None, typer.Option(help="the actor (for the crew)")] = None,
    age: Annotated[float | None, typer.Option(help="target age in years")] = None,
    blend: Annotated[float | None, typer.Option(help="0 … 1")] = None,
    color_transfer: Annotated[str | None, typer.Option(help="rct | rct-lab | none")] = None,
    mask_feather: Annotated[float | None, typer.Option(help="0 … 0.5")] = None,
    config: ConfigOpt = None,
) -> None:
    """Save (or replace) a preset: the settings given; the others stay as they are live."""
    from agecast.takes.presets import make_preset

    try:
        preset = make_preset(
            name, identity=identity, actor=actor, age=age, blend=blend,
            color_transfer=color_transfer, mask_feather=mask_feather,
        )  # fmt: skip
        _presets(config).save(preset)
    except AgecastError as exc:
        raise fail(exc) from exc
    console.print(f"saved preset {name}: {preset.values()}")


@presets_app.command("delete")
def presets_delete(
    name: Annotated[str, typer.Argument(help="preset name")], config: ConfigOpt = None
) -> None:
    """Delete a preset."""
    try:
        _presets(config).delete(name)
    except AgecastError as exc:
        raise fail(exc) from exc
    console.print(f"deleted preset {name}")
