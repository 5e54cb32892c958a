"""The takes commands: ``agecast record``, ``agecast takes …`` and ``agecast presets …``.

Registered on the main app by :func:`register`, called at the end of :mod:`agecast.cli` with
its shared settings-flags decorator (this module does not import the CLI: ``python -m
agecast.cli`` would import it twice).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agecast.errors import AgecastError
from agecast.settings import Settings
from agecast.takes.store import Take, TakeInfo, TakeStore

takes_app = typer.Typer(help="Recorded takes: list, show, re-render, export.", no_args_is_help=True)
presets_app = typer.Typer(
    help="Named presets (identity × age × look), switchable live.", no_args_is_help=True
)

console = Console(stderr=True)
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file", exists=True)]
TakesDirOpt = Annotated[
    Path | None, typer.Option("--takes-dir", help="takes folder (default: <state_dir>/takes)")
]
Command = Callable[..., None]


def register(app: typer.Typer, settings_flags: Callable[[Command], Command]) -> None:
    """Add ``record``, ``takes`` and ``presets`` to ``app``; ``settings_flags`` gives a command
    the shared settings flags (see :func:`agecast.cli.settings_flags`)."""
    app.command("record")(settings_flags(record))
    app.add_typer(takes_app, name="takes")
    app.add_typer(presets_app, name="presets")


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=2)


def _settings(config: Path | None) -> Settings:
    try:
        return Settings.load(config)
    except AgecastError as exc:
        raise _fail(exc) from exc


def _store(config: Path | None, takes_dir: Path | None) -> TakeStore:
    return TakeStore(takes_dir or _settings(config).resolved_takes_dir)


def _get(store: TakeStore, take_id: str) -> Take:
    try:
        return store.get(take_id)
    except AgecastError as exc:
        raise _fail(exc) from exc


def record(
    settings: Settings,
    seconds: Annotated[float, typer.Option(help="how long to record")],
    scene: Annotated[str, typer.Option(help="scene name (letters, digits, . _ -)")],
    take: Annotated[str, typer.Option(help="take name or number")],
    camera: Annotated[str | None, typer.Option(help="camera (A, B, …)")] = None,
    preset: Annotated[str | None, typer.Option(help="apply this saved preset first")] = None,
) -> None:
    """Record a take headless: the source through the pipeline for N seconds, raw + aged."""
    from rich.progress import Progress

    from agecast.takes.presets import PresetStore
    from agecast.takes.recorder import record as run_record

    try:
        if preset is not None:
            settings = PresetStore(settings.state_dir).get(preset).applied_to(settings)
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"recording {scene}/{take}", total=None)
            info = run_record(
                settings, scene, take, camera, seconds=seconds, preset=preset,
                progress=lambda n, total: bar.update(task, completed=n, total=total),
            )  # fmt: skip
    except AgecastError as exc:
        raise _fail(exc) from exc
    path = TakeStore(settings.resolved_takes_dir).get(info.id).path
    sys.stdout.write(f"{info.id}\t{path}\n")
    console.print(f"take {info.id}: {info.frames} frames ({info.seconds:.1f} s), {info.status}")
    if info.status != "complete":
        raise typer.Exit(code=1)


def _info_row(info: TakeInfo, take: Take) -> dict[str, Any]:
    return {
        **info.model_dump(mode="json"),
        "seconds": round(info.seconds, 2),
        "path": str(take.path),
        "versions": take.versions(),
    }


@takes_app.command("list")
def takes_list(
    json_out: Annotated[bool, typer.Option("--json", help="print JSON")] = False,
    takes_dir: TakesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Every take, newest first."""
    store = _store(config, takes_dir)
    rows = [_info_row(info, store.get(info.id)) for info in store.list()]
    if json_out:
        sys.stdout.write(json.dumps(rows, indent=2) + "\n")
        return
    table = Table(title=f"takes in {store.root}")
    for col in ("id", "created", "frames", "seconds", "timecode", "identity", "versions", "status"):
        table.add_column(col)
    for row in rows:
        identity = (row["identity"] or {}).get("id", "")
        table.add_row(
            row["id"], row["created"], str(row["frames"]), str(row["seconds"]),
            row["timecode_start"], identity, " ".join(row["versions"]), row["status"],
        )  # fmt: skip
    Console().print(table)


@takes_app.command("show")
def takes_show(
    take_id: Annotated[str, typer.Argument(metavar="TAKE", help="take id (see takes list)")],
    takes_dir: TakesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """A take's take.json, its versions and their settings."""
    store = _store(config, takes_dir)
    take = _get(store, take_id)
    versions = {}
    for version in take.versions():
        render = take.render_info(version)
        versions[version] = {
            "aged": str(take.aged_path(version)),
            "sidecar": str(take.sidecar_path(version)),
            "render": render.model_dump(mode="json", by_alias=True) if render else None,
        }
    data = {**_info_row(take.info, take), "raw": str(take.raw_path), "versions": versions}
    sys.stdout.write(json.dumps(data, indent=2) + "\n")
