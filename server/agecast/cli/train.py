"""``agecast train`` (fit an identity model on two facesets) and ``agecast export`` (a trained
run as an identity package)."""

from __future__ import annotations

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from agecast.cli.options import Consent, consent_flags, vouch_made
from agecast.cli.output import command_line, console, fail
from agecast.errors import AgecastError
from agecast.manifest import ColorMatch, Purpose
from agecast.settings import DeviceName

if TYPE_CHECKING:
    from agecast.training.reage_train import ReageOptions
    from agecast.training.train import RunRecord, TrainOptions


class Family(StrEnum):
    """Model families ``agecast train`` fits."""

    DF = "agecast-df"
    REAGE = "agecast-reage"


class OccluderStyle(StrEnum):
    """Synthetic occluders ``agecast train --family agecast-reage`` pastes over faces."""

    SHAPES = "shapes"  # flat, gradient or striped props of modest size
    TEXTURED = "textured"  # face-sized, lit, creased, most often skin-toned: hands


def register(app: typer.Typer) -> None:
    app.command()(train)
    app.command("export")(consent_flags(export_cmd))


_REAGE = "agecast-reage: "
ResolutionOpt = Annotated[
    int, typer.Option(help="crop size: df a multiple of 16 in 128–320, reage of 32 in 128–1024")
]
LrOpt = Annotated[float | None, typer.Option(help="learning rate (default 2e-4 df, 1e-3 reage)")]
AgeOpt = Annotated[
    bool | None, typer.Option("--age/--no-age", help="age-conditioned (default: if src has ages)")
]
MinutesOpt = Annotated[
    float | None, typer.Option(help="stop after this many minutes of training (checkpointed)")
]
FamilyOpt = Annotated[
    Family,
    typer.Option(
        help="agecast-df: redraw the face as the identity (another face); agecast-reage: "
        "add an age delta to the plate (the same actor; --src holds the footage faces at "
        "several ages, e.g. from `faceset age-synth`)"
    ),
]
OccludersOpt = Annotated[
    float | None,
    typer.Option(
        min=0.0,
        max=1.0,
        help="share of samples with a synthetic occluder (default 0.5 agecast-reage, 0 agecast-df)",
    ),
]
OccluderWeightOpt = Annotated[
    float, typer.Option(min=0.0, help=f"{_REAGE}extra loss weight on occluder pixels")
]
OccluderStyleOpt = Annotated[
    OccluderStyle,
    typer.Option(
        help=f"{_REAGE}shapes (flat, gradient or striped props) or textured (face-sized, lit, "
        "creased, most often skin-toned: hands)"
    ),
]


def train(
    src: Annotated[Path, typer.Option(help="faceset of the identity (the target face/age)")],
    dst: Annotated[Path, typer.Option(help="faceset of the footage to swap")],
    out: Annotated[Path, typer.Option(help="run folder: checkpoints, previews, run.json")],
    resolution: ResolutionOpt = 128,
    steps: Annotated[int, typer.Option(help="train until this many steps in total")] = 2000,
    batch: Annotated[int, typer.Option(help="faces per branch per step")] = 8,
    lr: LrOpt = None,
    encoder_dims: Annotated[int, typer.Option(help="encoder width (first stage)")] = 24,
    decoder_dims: Annotated[int, typer.Option(help="decoder width (last stage)")] = 16,
    age: AgeOpt = None,
    preview_every: Annotated[int, typer.Option(help="write a preview grid every K steps")] = 250,
    save_every: Annotated[int, typer.Option(help="checkpoint every K steps")] = 250,
    seed: int = 0,
    device: Annotated[DeviceName, typer.Option(help="auto | cpu | cuda")] = "auto",
    threads: Annotated[int, typer.Option(help="CPU threads for torch (0 = default)")] = 0,
    minutes: MinutesOpt = None,
    resume: Annotated[bool, typer.Option(help="continue the run in --out")] = False,
    family: FamilyOpt = Family.DF,
    dims: Annotated[int, typer.Option(help=f"{_REAGE}channels of the first level")] = 16,
    crop: Annotated[int, typer.Option(help=f"{_REAGE}training window in pixels")] = 128,
    init_from: Annotated[
        Path | None, typer.Option(help=f"{_REAGE}start from this run's weights")
    ] = None,
    occluders: OccludersOpt = None,
    occluder_weight: OccluderWeightOpt = 0.0,
    occluder_style: OccluderStyleOpt = OccluderStyle.SHAPES,
) -> None:
    """Train an identity model: src = the identity's faces, dst = the footage's faces."""
    from agecast.training.reage_train import ReageOptions, train_reage
    from agecast.training.train import TrainOptions
    from agecast.training.train import train as run_df

    common: dict[str, Any] = {
        "steps": steps, "batch": batch, "resolution": resolution, "save_every": save_every,
        "preview_every": preview_every, "seed": seed, "device": device, "threads": threads,
        "minutes": minutes,
    }  # fmt: skip
    options: TrainOptions | ReageOptions
    run_training: Callable[..., RunRecord]
    if family is Family.REAGE:
        options = ReageOptions(
            **common, lr=lr or 1e-3, dims=dims, crop=crop,
            init_from=str(init_from) if init_from else None,
            occluders=0.5 if occluders is None else occluders,
            occluder_weight=occluder_weight, occluder_style=occluder_style.value,
        )  # fmt: skip
        run_training = train_reage
    else:
        options = TrainOptions(
            **common, lr=lr or 2e-4, encoder_dims=encoder_dims, decoder_dims=decoder_dims, age=age,
            occluders=occluders or 0.0,
        )  # fmt: skip
        run_training = run_df
    record = _with_progress(run_training, src, dst, out, options, resume=resume)
    last = record.history[-1]["loss"] if record.history else float("nan")
    console.print(
        f"[green]trained[/] {out}: step {record.step}, loss {last:.3f}, "
        f"{record.seconds / 60:.1f} min on {record.device}; previews in {out / 'previews'}"
    )


def _with_progress(
    run_training: Callable[..., RunRecord],
    src: Path,
    dst: Path,
    out: Path,
    options: TrainOptions | ReageOptions,
    *,
    resume: bool,
) -> RunRecord:
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from agecast.training.train import Progress as Step

    with Progress(
        TextColumn("[bold]train"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        TextColumn("{task.fields[info]}"),
        TimeRemainingColumn(),
        console=console,
    ) as bar:
        task = bar.add_task("train", total=options.steps, info="")

        def shown(p: Step) -> None:
            info = f"loss {p.losses['total']:.3f}  {p.steps_per_s:.2f} it/s"
            bar.update(task, completed=p.step, info=info)

        try:
            return run_training(
                src, dst, out, options, resume=resume, on_progress=shown, command=command_line()
            )
        except (AgecastError, ValueError) as exc:
            raise fail(exc) from exc


def export_cmd(
    run: Annotated[Path, typer.Argument(help="training run folder")],
    out: Annotated[Path, typer.Option(help="identity package folder to write, e.g. models/NAME")],
    id: Annotated[str | None, typer.Option(help="identity id (default: OUT's name)")] = None,
    actor: Annotated[str, typer.Option(help="whose face this is")] = "unknown",
    display_name: Annotated[str | None, typer.Option(help="name shown to the crew")] = None,
    purpose: Annotated[Purpose, typer.Option(help="likeness | demo | tooling")] = "likeness",
    target_age: Annotated[int | None, typer.Option(help="default age on set (years)")] = None,
    consent: Consent = Consent(),  # noqa: B008 (the --consent-* options: see consent_flags)
    source_footage: Annotated[str, typer.Option(help="what the model was trained on")] = "",
    notes: Annotated[str, typer.Option(help="what the crew should know")] = "",
    format: Annotated[
        Literal["onnx", "dfm"], typer.Option(help="onnx | dfm (also a DeepFaceLive .dfm)")
    ] = "onnx",
    color_transfer: Annotated[
        ColorMatch | None,
        typer.Option(help="colour match this identity needs on auto: rct | rct-lab | none"),
    ] = None,
) -> None:
    """Export a trained run as an identity package, checking onnxruntime against torch."""
    from agecast.training.export import ExportMeta, export_run

    try:
        record = consent.record(actor)  # the same consent options, and checks, as the imports
        meta = ExportMeta(
            identity_id=id or out.name, display_name=display_name, actor=actor, purpose=purpose,
            target_age=target_age, consent=record, source_footage=source_footage, notes=notes,
            color_transfer=color_transfer, command=command_line(),
        )  # fmt: skip
        report = export_run(run, out, meta, fmt=format)
    except (AgecastError, ValueError, OSError) as exc:
        raise fail(exc) from exc
    console.print(
        f"[green]exported[/] {report.package} ({report.model_bytes / 1e6:.1f} MB model); "
        f"onnxruntime vs torch max |diff| {report.parity_max_abs_diff:.2e} over "
        f"{report.parity_crops} held-out crops"
        + (f"; DeepFaceLive model {report.dfm}" if report.dfm else "")
    )
    vouch_made(report.package, "agecast export")
    if purpose == "likeness" and record is None:
        console.print(
            "[yellow]note:[/] no consent recorded: this likeness will not load until "
            "a consent record is added (see models/README.md)"
        )
