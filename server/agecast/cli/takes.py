"""``agecast record`` (a take recorded headless) and ``agecast takes`` (list, show,
re-render, export recorded takes)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any, Literal

import typer
from rich.console import Console
from rich.table import Table

from agecast.cli.options import ConfigOpt, load_settings, settings_flags
from agecast.cli.output import console, fail
from agecast.errors import AgecastError
from agecast.settings import Settings
from agecast.takes.store import Take, TakeInfo, TakeStore

# agecast.takes.rerender's ExportFormat (importing it here would load the pipeline for every
# command); mypy checks that export_take takes these.
TakeFormat = Literal["mp4", "prores"]

takes_app = typer.Typer(help="Recorded takes: list, show, re-render, export.", no_args_is_help=True)
TakesDirOpt = Annotated[
    Path | None, typer.Option("--takes-dir", help="takes folder (default: <state_dir>/takes)")
]
TakeOpt = Annotated[str, typer.Argument(metavar="TAKE", help="take id (see takes list)")]


def register(app: typer.Typer) -> None:
    app.command("record")(settings_flags(record))
    takes_app.command("list")(takes_list)
    takes_app.command("show")(takes_show)
    takes_app.command("export")(takes_export)
    takes_app.command("render")(settings_flags(takes_render))
    app.add_typer(takes_app, name="takes")


def _store(config: Path | None, takes_dir: Path | None) -> TakeStore:
    return TakeStore(takes_dir or load_settings(config).resolved_takes_dir)


def _get(store: TakeStore, take_id: str) -> Take:
    try:
        return store.get(take_id)
    except AgecastError as exc:
        raise fail(exc) from exc


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
        raise fail(exc) from exc
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


def takes_show(
    take_id: TakeOpt,
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


def takes_render(
    settings: Settings,
    take_id: TakeOpt,
    set_: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="key=value to change (identity, age, blend, color_transfer, mask_feather, "
            "ai_mark); repeat",
        ),
    ] = None,
    from_version: Annotated[str, typer.Option("--from", help="version to start from")] = "v1",
    out: Annotated[Path | None, typer.Option(help="also export the new version here (MP4)")] = None,
) -> None:
    """Re-render a take from its raw picture with changed settings into a new version."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from agecast.takes.rerender import export_take, parse_sets, rerender

    store = TakeStore(settings.resolved_takes_dir)
    take = _get(store, take_id)
    try:
        overrides = parse_sets(set_ or [])
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.completed}/{task.total} frames · {task.fields[fps]} fps"),
            TimeRemainingColumn(), console=console, transient=True,
        ) as bar:  # fmt: skip
            task = bar.add_task(f"re-render {take.id}", total=take.info.frames, fps=0.0)
            version = rerender(
                take, overrides, settings, from_version=from_version,
                progress=lambda n, total, fps: bar.update(
                    task, completed=n, total=total, fps=f"{fps:.1f}"
                ),
            )  # fmt: skip
        if out is not None:
            export_take(take, version, "mp4", out)
    except AgecastError as exc:
        raise fail(exc) from exc
    done = json.loads(take.render_path(version).read_text())
    sys.stdout.write(f"{take.id}\t{version}\t{take.aged_path(version)}\n")
    console.print(
        f"take {take.id} {version}: {done.get('frames')} frames from {from_version} with "
        f"{overrides or 'the same settings'} at {done.get('fps')} fps"
        + (f"; exported to {out}" if out else "")
    )


def takes_export(
    take_id: TakeOpt,
    out: Annotated[Path, typer.Option(help="file to write (.mp4 or .mov)")],
    version: Annotated[str, typer.Option(help="raw, v1 (as recorded), v2 …")] = "v1",
    fmt: Annotated[
        TakeFormat, typer.Option("--format", help="mp4 (stream copy) | prores (422 HQ)")
    ] = "mp4",
    takes_dir: TakesDirOpt = None,
    config: ConfigOpt = None,
) -> None:
    """Export a version of a take to a file, its start timecode kept."""
    from agecast.takes.rerender import export_take

    take = _get(_store(config, takes_dir), take_id)
    try:
        export_take(take, version, fmt, out)
    except AgecastError as exc:
        raise fail(exc) from exc
    console.print(f"exported take {take.id} {version} as {fmt} to {out}")
