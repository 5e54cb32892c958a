"""``agecast bench``: speed, drops, latency and memory of the pipeline, as a table and JSON."""

from __future__ import annotations

import json
import re
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

SecondsOpt = Annotated[float, typer.Option(help="measured seconds (after warm-up)")]
LiveOpt = Annotated[
    bool, typer.Option("--live/--max", help="paced source with drops, or every frame flat out")
]
WarmupOpt = Annotated[float, typer.Option(help="seconds before measuring")]
JsonOpt = Annotated[Path | None, typer.Option("--json", help="write the results here")]
CamerasOpt = Annotated[
    int,
    typer.Option(
        min=1,
        help="pipelines at once on one backend: the config's `cameras` sources, "
        "else --source for each",
    ),
]
ResolutionOpt = Annotated[
    str | None,
    typer.Option(
        help="WxH: feed every camera a generated test pattern of this size "
        "(instead of --source / the config's cameras)",
    ),
]
FpsOpt = Annotated[
    float | None, typer.Option(min=1, max=240, help="frame rate of that test pattern")
]
EncodeOpt = Annotated[
    bool,
    typer.Option(
        "--encode/--no-encode",
        help="H.264-encode every output as the monitor does (--no-encode: the pipeline "
        "alone, e.g. to compare the model path with another tool)",
    ),
]

EncoderOpt = Annotated[
    str,
    typer.Option(
        "--encoder",
        help="H.264 encoder: auto (NVENC where CUDA is) | nvenc (libx264 if it will not open, "
        "the reason in the JSON) | libx264",
    ),
]
ENCODERS = ("auto", "nvenc", "libx264")
BatchOpt = Annotated[
    bool,
    typer.Option(
        "--batch-faces/--no-batch-faces",
        help="with --cameras N: one identity model for all cameras, their faces run as one "
        "batch (waiting up to 2 ms for the others)",
    ),
]


def register(app: typer.Typer) -> None:
    app.command()(settings_flags(bench))


def bench(
    settings: Settings,
    seconds: SecondsOpt = 10.0,
    live: LiveOpt = True,
    warmup: WarmupOpt = 2.0,
    json_out: JsonOpt = None,
    cameras: CamerasOpt = 1,
    resolution: ResolutionOpt = None,
    fps: FpsOpt = None,
    encode: EncodeOpt = True,
    encoder: EncoderOpt = "auto",
    batch_faces: BatchOpt = False,
) -> None:
    """Measure fps, drops, per-stage, frame→output and frame→encoded-packet latency, copies per
    frame, jitter and memory. --max reads every frame flat out (a file source loops to fill
    --seconds); a run whose source ended early says so (ended_early in the JSON)."""
    if json_out is not None:
        try:
            check_writable(json_out, "--json")  # before the measuring, not after
        except AgecastError as exc:
            raise fail(exc) from exc
    if resolution is not None or fps is not None:
        source = _test_pattern(resolution or "1280x720", fps or 30.0)
        settings = settings.model_copy(update={"source": source, "cameras": []})
    if encoder not in ENCODERS:
        raise typer.BadParameter(
            f"{encoder!r}: choose one of {', '.join(ENCODERS)}", param_hint="--encoder"
        )
    run = {"seconds": seconds, "live": live, "warmup": warmup, "encode": encode, "codec": encoder}
    if batch_faces and cameras == 1:
        raise typer.BadParameter("batches the faces of several cameras: add --cameras N")
    if cameras > 1:
        _bench_cameras(settings, cameras, json_out, batch_faces=batch_faces, **run)
    else:
        _bench_one(settings, json_out, **run)


def _test_pattern(resolution: str, fps: float) -> str:
    match = re.fullmatch(r"(\d{2,5})x(\d{2,5})", resolution)
    if match is None:
        raise typer.BadParameter(
            f"{resolution!r}: give WxH, e.g. 1920x1080", param_hint="--resolution"
        )
    return f"testpattern:{match[1]}x{match[2]}@{fps:g}"


def _bench_one(settings: Settings, json_out: Path | None, **run: Any) -> None:
    from agecast.pipeline.bench import bench as run_bench

    try:
        result = run_bench(settings, **run, command=argv())
    except AgecastError as exc:
        raise fail(exc) from exc
    if json_out:
        write_text_atomic(json_out, json.dumps(result, indent=2) + "\n")
    table = Table(title=f"agecast bench ({result['mode']}, {result['seconds']} s)")
    for col in ("stage", "p50 ms", "p95 ms", "p99 ms"):
        table.add_column(col)
    stages = {**result["stages_ms"], "frame→output": result["frame_to_output_ms"]}
    if run["encode"]:
        stages[f"frame→packet ({result['encoder']['name']})"] = result["frame_to_packet_ms"]
    for name, p in stages.items():
        table.add_row(name, str(p["p50"]), str(p["p95"]), str(p["p99"]))
    Console().print(table)
    Console().print(
        f"fps in {result['fps_in']} out {result['fps_out']}, dropped {result['dropped']}, "
        f"jitter {result['landmark_jitter_px']}, peak RSS {result['peak_rss_mb']} MB, "
        f"copies per frame {result['copies']['h2d_per_frame']} up "
        f"{result['copies']['d2h_per_frame']} down"
    )
    _say_if_short(result)


def _bench_cameras(settings: Settings, n: int, json_out: Path | None, **run: Any) -> None:
    from agecast.pipeline.cameras import bench_cameras

    if settings.cameras and len(settings.cameras) < n:
        raise fail(
            ValueError(f"--cameras {n}, but the config lists {len(settings.cameras)} cameras")
        )
    sources = settings.cameras[:n] if settings.cameras else [settings.source] * n
    try:
        result = bench_cameras(settings, sources, **run)
    except AgecastError as exc:
        raise fail(exc) from exc
    result["argv"] = argv()
    if json_out:
        write_text_atomic(json_out, json.dumps(result, indent=2) + "\n")
    table = Table(title=f"agecast bench: {n} cameras on {result['backend']} ({result['mode']})")
    columns = ("camera", "source", "fps out", "dropped", "frame→output p50/p95/p99 ms")
    for col in (*columns, "frame→packet p50/p95/p99 ms"):
        table.add_column(col)
    for cam in result["per_camera"]:
        p, k = cam["frame_to_output_ms"], cam.get("frame_to_packet_ms")
        table.add_row(
            cam["camera"], cam["source"]["uri"], str(cam["fps_out"]),
            str(sum(cam["dropped"].values())), f"{p['p50']} / {p['p95']} / {p['p99']}",
            f"{k['p50']} / {k['p95']} / {k['p99']}" if k else "not encoded",
        )  # fmt: skip
    Console().print(table)
    for cam in result["per_camera"]:
        _say_if_short(cam)


def _say_if_short(result: dict[str, Any]) -> None:
    """A run its source cut short is not the run asked for: say so where it cannot be missed."""
    if not result.get("ended_early"):
        return
    where = "during the warm-up" if result.get("ended_in_warmup") else "before the end"
    console.print(
        f"[bold yellow]warning:[/] the source ended {where}: these figures cover "
        f"{result['seconds']} s ({result['frames_out']} frames), not the {result['requested_s']} s "
        "asked (ended_early in the JSON)",
        soft_wrap=True,
    )
