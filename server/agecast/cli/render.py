"""``agecast render``: every frame of a source through the pipeline into an MP4."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from agecast.cli.options import settings_flags
from agecast.cli.output import console, fail
from agecast.errors import AgecastError
from agecast.settings import Settings


def register(app: typer.Typer) -> None:
    app.command()(settings_flags(render))


def render(
    settings: Settings,
    out: Annotated[Path, typer.Option(help="output MP4 (H.264)")] = Path("out/render.mp4"),
    report: Annotated[
        Path | None, typer.Option(help="write per-stage timings as JSON here")
    ] = None,
    frames: Annotated[int | None, typer.Option(help="stop after N frames")] = None,
) -> None:
    """Run every frame of a source through the pipeline into an MP4 (no frame dropped)."""
    from rich.progress import Progress

    from agecast.pipeline.render import render as run_render

    settings = settings.model_copy(update={"loop": False})  # a render reads a file once
    try:
        with Progress(console=console, transient=True) as bar:
            task = bar.add_task(f"rendering {settings.source}", total=frames)
            result = run_render(
                settings, out, report=report, limit=frames,
                progress=lambda n: bar.update(task, completed=n),
            )  # fmt: skip
    except AgecastError as exc:
        raise fail(exc) from exc
    stages = result["stages_ms"]
    console.print(
        f"wrote [bold]{result['frames_written']}[/] of {result['frames_read']} frames to {out} "
        f"({result['fps_out']} fps; identity {result['identity']} on {result['backend']}; "
        f"infer p95 {stages.get('infer', {}).get('p95', 0)} ms)"
    )
