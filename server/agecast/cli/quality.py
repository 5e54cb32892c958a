"""``agecast quality``: picture quality of an identity on a clip, measured (see
:mod:`agecast.quality.measure` for what each figure means)."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from agecast.cli.options import settings_flags
from agecast.cli.output import argv, console, fail
from agecast.errors import AgecastError
from agecast.outfiles import check_writable, write_text_atomic
from agecast.settings import Settings


def register(app: typer.Typer) -> None:
    app.command("quality")(settings_flags(quality))


def provenance() -> dict[str, Any]:
    """Command line, date, machine and versions, for the JSON."""
    import av
    import onnx

    from agecast import __version__
    from agecast.pipeline.bench import machine

    return {
        "command": "quality",
        "argv": argv(),
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "machine": machine(),
        "versions": {"agecast": __version__, "av": av.__version__, "onnx": onnx.__version__},
    }


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
        if json_out is not None:
            check_writable(json_out, "--json")  # before the measuring, not after
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"measuring {settings.source}", total=frames)
            result = measure(
                settings, frames=frames, progress=lambda n: bar.update(task, completed=n)
            )
    except AgecastError as exc:
        raise fail(exc) from exc
    report = {**provenance(), **result}
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(report, indent=2) + "\n")
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
