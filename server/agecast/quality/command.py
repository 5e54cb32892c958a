"""``agecast quality``: picture quality of an identity on a clip, measured (see
:mod:`agecast.quality.measure` for what each figure means).

Registered on the main app by :func:`register`, called at the end of :mod:`agecast.cli` with
its shared settings-flags decorator (this module does not import the CLI).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agecast.errors import AgecastError
from agecast.settings import Settings

console = Console(stderr=True)
Command = Callable[..., None]


def register(app: typer.Typer, settings_flags: Callable[[Command], Command]) -> None:
    """Add ``quality`` to ``app``; ``settings_flags`` gives it the shared settings flags."""
    app.command("quality")(settings_flags(quality))


def _fail(exc: Exception) -> typer.Exit:
    console.print(f"[bold red]error:[/] {exc}")
    return typer.Exit(code=2)


def provenance() -> dict[str, Any]:
    """Command line, date, machine and versions, for the JSON."""
    import av
    import onnx

    from agecast import __version__
    from agecast.pipeline.bench import machine

    return {
        "command": "quality",
        "argv": ["agecast", *sys.argv[1:]],
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": {"agecast": __version__, "av": av.__version__, "onnx": onnx.__version__},
    }


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON so a reader never sees half a file (temporary file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(json.dumps(data, indent=2) + "\n")
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)


def quality(
    settings: Settings,
    json_out: Annotated[Path | None, typer.Option("--json", help="write the figures here")] = None,
    frames: Annotated[
        int | None, typer.Option(min=1, help="measure the first N frames (default: all)")
    ] = None,
) -> None:
    """Measure the aged picture against the raw one, per face: detail kept, identity kept,
    flicker, paste-back seam and, on `--source occluder:demo` / `occluder:unseen`, the change
    inside an occluder crossing the face. `--source unseen` is a generated clip the demo
    identity was not trained on."""
    from rich.progress import Progress

    from agecast.quality.measure import measure

    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"measuring {settings.source}", total=frames)
            result = measure(
                settings, frames=frames, progress=lambda n: bar.update(task, completed=n)
            )
    except AgecastError as exc:
        raise _fail(exc) from exc
    report = {**provenance(), **result}
    if json_out is not None:
        write_json_atomic(json_out, report)
    _print(report)


def _fmt(summary: dict[str, Any] | None) -> str:
    if summary is None:
        return "–"
    return f"{summary['median']:.3f}  ({summary['p10']:.3f} … {summary['p90']:.3f})"


def _print(report: dict[str, Any]) -> None:
    identity = report["identity"]
    age = "" if identity["age"] is None else f", age {identity['age']:g}"
    table = Table(
        title=f"quality: {identity['id']} ({identity['family']}, {identity['crop_size']} px{age}) "
        f"on {report['generated_clip'] or report['source']}"
    )
    for column in ("figure", "median (p10 … p90)", "goal"):
        table.add_column(column)
    goals = report["goals"]
    overall = report["overall"]
    for name in ("detail", "identity", "flicker", "seam", "occlusion_p99", "occlusion_max"):
        goal = goals.get(name)
        mark = "" if goal is None else f"{goal['goal']} {'✓' if goal['met'] else '✗'}"
        if goal is not None and goal["met"] is None:
            mark = goal["goal"]
        table.add_row(name, _fmt(overall[name]), mark)
    Console().print(table)
    frames, speed = report["frames"], report["speed"]
    Console().print(
        f"{frames['faces_measured']} faces in {frames['with_face']} of {frames['rendered']} "
        f"frames ({frames['tracks']} track(s)); render {speed['fps_pipeline']} fps "
        f"(with measuring {speed['fps_with_measuring']} fps)"
    )
