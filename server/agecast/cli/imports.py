"""``agecast identity import-dfm`` / ``import-inswapper``: other tools' models as identity
packages, with the actor's consent recorded (see models/README.md)."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from agecast.cli.options import BackendOpt, Consent, ForceOpt, consent_flags, vouch_made
from agecast.cli.output import console, fail
from agecast.errors import AgecastError
from agecast.manifest import Purpose

if TYPE_CHECKING:
    from agecast.manifest import ConsentRecord

OutOpt = Annotated[Path | None, typer.Option(help="package folder (default models/ID)")]
PurposeOpt = Annotated[
    Purpose,
    typer.Option(
        help="likeness (a real person's face: loads only with their consent recorded) | demo | "
        "tooling (a test model that is no one's likeness: no consent needed)"
    ),
]


def register(identity_app: typer.Typer) -> None:
    identity_app.command("import-dfm")(consent_flags(identity_import_dfm))
    identity_app.command("import-inswapper")(consent_flags(identity_import_inswapper))


def identity_import_dfm(
    file: Annotated[Path, typer.Argument(help="DeepFaceLab/DeepFaceLive .dfm model", exists=True)],
    out: OutOpt = None,
    id: Annotated[str | None, typer.Option("--id", help="identity id (default from FILE)")] = None,
    actor: Annotated[str | None, typer.Option(help="whose likeness (default from FILE)")] = None,
    display_name: Annotated[
        str | None, typer.Option(help="name shown to the crew (default: --actor, else FILE's)")
    ] = None,
    purpose: PurposeOpt = "likeness",
    template: Annotated[
        str | None, typer.Option(help="crop template: dfl_whole_face (default) | dfl_full_face …")
    ] = None,
    morph: Annotated[
        float | None, typer.Option(help="morph_value 0–1 (default 0.75, DeepFaceLive's)")
    ] = None,
    consent: Consent = Consent(),  # noqa: B008 (the --consent-* options: see consent_flags)
    backend: BackendOpt = None,
    force: ForceOpt = False,
) -> None:
    """Wrap a DeepFaceLive .dfm model as an identity package (tensor names checked)."""
    from agecast.identities.dfm import dfm_names, import_dfm
    from agecast.inference.registry import get_backend

    try:
        default_id, default_name, default_actor = dfm_names(file)
        identity = id or default_id
        actor = actor or default_actor
        record = consent.record(actor)
        target = out or Path("models") / identity
        command = ["agecast", "identity", "import-dfm", str(file), "--out", str(target)]
        command += [f"--morph={morph}"] if morph is not None else []
        command += [f"--template={template}"] if template else []
        import_dfm(
            file, target, id=identity, actor=actor,
            display_name=display_name or (actor if actor != default_actor else default_name),
            template=template, morph=morph, consent=record, purpose=purpose,
            backend=get_backend(backend or "auto"), overwrite=force, command=shlex.join(command),
        )  # fmt: skip
    except AgecastError as exc:
        raise fail(exc) from exc
    _imported(target, record)


def identity_import_inswapper(
    model: Annotated[Path, typer.Argument(help="inswapper_128.onnx", exists=True)],
    arcface: Annotated[
        Path, typer.Option(help="ArcFace recognition model (w600k_r50.onnx)", exists=True)
    ],
    face: Annotated[Path, typer.Option(help="photo of the face to swap in", exists=True)],
    out: OutOpt = None,
    id: Annotated[
        str | None, typer.Option("--id", help="identity id (default from --face)")
    ] = None,
    actor: Annotated[str | None, typer.Option(help="whose likeness (default from --face)")] = None,
    display_name: Annotated[
        str | None, typer.Option(help="name shown to the crew (default: --actor, else --face's)")
    ] = None,
    purpose: PurposeOpt = "likeness",
    consent: Consent = Consent(),  # noqa: B008 (the --consent-* options: see consent_flags)
    backend: BackendOpt = None,
    insightface_dir: Annotated[
        Path | None, typer.Option(help="local insightface pack: detect with its SCRFD")
    ] = None,
    force: ForceOpt = False,
) -> None:
    """Wrap inswapper_128 as an identity package; the face's embedding is computed once here."""
    from agecast.identities.inswapper import import_inswapper
    from agecast.identities.making import slug
    from agecast.inference.registry import get_backend

    name = display_name or actor or face.stem.replace("_", " ").strip()
    identity = id or slug(f"inswapper-{face.stem}")
    actor = actor or name
    target = out or Path("models") / identity
    try:
        record = consent.record(actor)
        command = ["agecast", "identity", "import-inswapper", str(model)]
        command += ["--arcface", str(arcface), "--face", str(face), "--out", str(target)]
        import_inswapper(
            model, arcface, face, target, id=identity, actor=actor, display_name=name,
            consent=record, purpose=purpose, backend=get_backend(backend or "auto"),
            insightface_dir=insightface_dir, overwrite=force, command=shlex.join(command),
        )  # fmt: skip
    except AgecastError as exc:
        raise fail(exc) from exc
    _imported(target, record)


def _imported(out: Path, consent: ConsentRecord | None) -> None:
    from agecast.identities.package import read_package

    m = read_package(out).manifest
    console.print(f"[green]wrote[/] identity {m.id} ({m.display_name}, {m.purpose}) to {out}")
    vouch_made(out, "agecast identity import")
    if consent is None and m.purpose == "likeness":
        console.print(
            f"[yellow]no consent recorded:[/] {m.id} is the likeness of {m.actor} and will not "
            "load (serve, render, identity validate) until their consent is in its manifest — "
            "re-run with --consent-granted-by/--consent-production/--consent-purpose/"
            "--consent-from/--consent-until or --consent-file (see models/README.md)"
        )
