"""``agecast faceset``: aligned face crops from footage, the training data of an identity."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agecast.cli.options import command_group
from agecast.cli.output import console, fail
from agecast.errors import AgecastError

if TYPE_CHECKING:
    from agecast.training.faceset import ExtractReport

group = faceset_app = command_group(
    "Facesets: aligned face crops from footage, the training data of an identity."
)


@faceset_app.command("extract")
def faceset_extract(
    source: Annotated[
        str,
        typer.Option(
            help="video file, folder of .jpg/.png pictures, or source URI "
            "(demo, testpattern:WxH, file:///…, rtsp://…)"
        ),
    ],
    out: Annotated[Path, typer.Option(help="faceset folder (an existing one is continued)")],
    size: Annotated[int, typer.Option(help="crop size in pixels")] = 256,
    template: Annotated[
        str, typer.Option(help="alignment template: ffhq | arcface_112 | arcface_128 | dfl_…")
    ] = "ffhq",
    every: Annotated[int, typer.Option(help="look at every Nth frame")] = 1,
    max_faces: Annotated[int, typer.Option(help="keep the N largest faces of a frame")] = 1,
    min_sharpness: Annotated[
        float, typer.Option(help="drop blurrier crops (variance of Laplacian; 0 = off)")
    ] = 10.0,
    max_yaw: Annotated[float, typer.Option(help="drop faces turned further (degrees)")] = 45.0,
    max_pitch: Annotated[float, typer.Option(help="drop faces tilted further (degrees)")] = 40.0,
    dedupe: Annotated[
        float, typer.Option(help="drop faces this close to one just kept (0 = keep all)")
    ] = 0.03,
    limit: Annotated[
        int | None, typer.Option(help="stop at source frame N (needed for testpattern)")
    ] = None,
    backend: Annotated[str, typer.Option(help="auto | onnxruntime | onnxruntime-cuda")] = "auto",
    insightface_dir: Annotated[
        Path | None, typer.Option(help="local insightface pack: SCRFD instead of YuNet")
    ] = None,
    detector_threshold: Annotated[float, typer.Option(help="face detector score threshold")] = 0.6,
) -> None:
    """Detect, align and crop faces from footage into a faceset for `agecast train`.

    Every frame goes through the live path's detector and alignment; faces that are blurred,
    turned too far, or near-duplicates of the last ones kept are dropped (and counted). Writes
    OUT/f<frame>_<face>.png and OUT/faceset.json. Interrupted? Run the same command again: it
    continues after the last frame done. Example:
    `agecast faceset extract --source take.mp4 --out facesets/actor`.
    """
    report = _extract(
        source, out, size=size, template=template, every=every, max_faces=max_faces,
        min_sharpness=min_sharpness, max_yaw=max_yaw, max_pitch=max_pitch, dedupe=dedupe,
        limit=limit, backend=backend, insightface_dir=insightface_dir,
        detector_threshold=detector_threshold,
    )  # fmt: skip
    if report.nothing_to_do:
        state = "complete" if report.complete else f"done up to frame {report.frames_done}"
        console.print(f"faceset {out} is already {state}: nothing to do")
    dropped = ", ".join(f"{reason} {count}" for reason, count in report.dropped.items())
    console.print(
        f"[green]faceset[/] {out}: kept {report.kept} faces from {report.frames_done} frames"
        f"{'' if report.complete else ' (not finished: run again to continue)'}; "
        f"dropped {dropped}"
    )


def _extract(source: str, out: Path, **options: Any) -> ExtractReport:
    """The extraction with a progress bar; an interrupted one says how to continue."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from agecast.training.faceset import extract

    done = [0]
    with Progress(
        TextColumn("[bold]faceset"),
        BarColumn(),
        TextColumn("{task.completed} frames"),
        TextColumn("{task.fields[kept]} faces kept"),
        TimeRemainingColumn(),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("extract", total=None, kept=0)

        def shown(frames: int, total: int | None, kept: int) -> None:
            done[0] = frames
            bar.update(task, completed=frames, total=total, kept=kept)

        try:
            return extract(source, out, **options, progress=shown)
        except AgecastError as exc:
            raise fail(exc) from exc
        except KeyboardInterrupt:
            console.print(
                f"interrupted after frame {done[0]}; faceset {out} is saved: run the same "
                "command to continue"
            )
            raise typer.Exit(code=130) from None


@faceset_app.command("age-synth")
def faceset_age_synth(
    footage: Annotated[Path, typer.Option(help="footage faceset (from `faceset extract`)")],
    out: Annotated[Path, typer.Option(help="new faceset: every face at every age")],
    base_age: Annotated[int, typer.Option(help="the footage's own (nominal) age, years")],
    ages: Annotated[str, typer.Option(help="comma-separated target ages, e.g. 38,50,62,75")],
    seed: Annotated[int, typer.Option(help="places the age spots (same on every face)")] = 7,
) -> None:
    """A synthetic age target: each footage face procedurally aged (grey hair, lines, skin).

    For demos and tests, where no footage of the actor at the target age can be used; the
    faces record their age and the footage face they came from, so `agecast train` learns
    from the pairs. It is stylised ageing, not a prediction of anyone's face.
    """
    from agecast.training.synthetic_age import synthesize_faceset

    try:
        wanted = [int(a) for a in ages.split(",") if a.strip()]
        made = synthesize_faceset(footage, out, wanted, base_age, seed=seed)
    except ValueError as exc:
        raise fail(ValueError(f"--ages {ages!r}: give whole years separated by commas")) from exc
    except AgecastError as exc:
        raise fail(exc) from exc
    console.print(f"[green]wrote[/] {out}: {len(made)} faces at ages {wanted}")
