"""``agecast identity``: list, inspect, validate, build and export identity packages (the
imports of other tools' models are in :mod:`agecast.cli.imports`)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.markup import escape

from agecast.cli import imports
from agecast.cli.options import BackendOpt, ConfigOpt, load_settings, vouch_made
from agecast.cli.output import console, fail
from agecast.errors import AgecastError, IdentityError

if TYPE_CHECKING:
    from agecast.identities.package import IdentityPackage

identity_app = typer.Typer(
    help="List, inspect and validate identity packages.", no_args_is_help=True
)


def register(app: typer.Typer) -> None:
    imports.register(identity_app)
    identity_app.command("export-dfm")(identity_export_dfm)  # listed after the imports
    app.add_typer(identity_app, name="identity")


@identity_app.command("list")
def identity_list(
    long: Annotated[
        bool, typer.Option("--long", "-l", help="every field: actor, crop, folder")
    ] = False,
    config: ConfigOpt = None,
) -> None:
    """Installed identity packages: one line each (id, age, purpose, name) to fit a terminal.

    Reads manifests only: no model is loaded (`identity validate` checks one)."""
    from agecast.identities.package import discover

    folders = load_settings(config).identities_dir
    missing = [str(f) for f in folders if not f.is_dir()]
    if missing:
        console.print(f"[yellow]not a folder:[/] {escape(', '.join(missing))}", soft_wrap=True)
    packages = discover(folders)
    sys.stdout.write(f"identities in {', '.join(map(str, folders))}: {len(packages)}\n")
    if long:
        _write_long(packages)
    else:
        _write_short(packages)


def _write_long(packages: list[IdentityPackage]) -> None:
    for p in packages:
        m = p.manifest
        sys.stdout.write(f"\n{m.id}\n")
        for key, value in (
            ("name", m.display_name), ("actor", m.actor), ("age", m.age_label),
            ("purpose", m.purpose), ("crop", f"{m.crop.size} px"), ("folder", p.path),
        ):  # fmt: skip
            sys.stdout.write(f"  {key:8} {value}\n")


def _write_short(packages: list[IdentityPackage]) -> None:
    rows = [("ID", "AGE", "PURPOSE", "NAME")]
    rows += [(p.manifest.id, p.manifest.age_label, p.manifest.purpose, p.manifest.display_name)
             for p in packages]  # fmt: skip
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    width = shutil.get_terminal_size((80, 24)).columns
    for row in rows:
        line = "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=False))
        line = f"{line}  {row[3]}"
        sys.stdout.write((line if len(line) <= width else line[: width - 1] + "…") + "\n")


@identity_app.command("inspect")
def identity_inspect(name: str, config: ConfigOpt = None) -> None:
    """Print a package's manifest."""
    from agecast.identities.package import resolve

    try:
        package = resolve(name, load_settings(config).identities_dir)
    except AgecastError as exc:
        raise fail(exc) from exc
    Console().print_json(package.manifest.model_dump_json(by_alias=True))


@identity_app.command("validate")
def identity_validate(path: Path, backend: BackendOpt = None, config: ConfigOpt = None) -> None:
    """Check a package: manifest fields, model hash, model tensors against the manifest."""
    from agecast.identities.package import load_model, read_package
    from agecast.identities.vouch import Vouches
    from agecast.inference.registry import get_backend

    vouches = Vouches(load_settings(config).state_dir)
    try:
        package = read_package(path)
        load_model(package, get_backend(backend or "auto"), vouches=vouches).close()
    except AgecastError as exc:
        raise fail(exc) from exc
    console.print(f"[green]ok[/] {package.manifest.id}: {path} is a valid identity package")


@identity_app.command("vouch")
def identity_vouch(
    name: Annotated[
        str | None,
        typer.Argument(help="package folder or installed id (none: list the vouches)"),
    ] = None,
    withdraw: Annotated[bool, typer.Option(help="take a vouch back (NAME is the id)")] = False,
    config: ConfigOpt = None,
) -> None:
    """Stand behind a demo or tooling package's purpose on this server, so that it runs
    without a consent record.

    A package's purpose is what its author wrote; only the server's owner (who holds the
    state folder) can vouch. The vouch names the package's exact contents: a changed package
    needs a new one. A likeness is never vouched for: record its actor's consent instead."""
    from agecast.identities.package import resolve
    from agecast.identities.vouch import Vouches

    settings = load_settings(config)
    vouches = Vouches(settings.state_dir)
    try:
        if name is None:
            for v in vouches.all():
                sys.stdout.write(f"{v.id:24} {v.purpose:8} {v.folder}  ({v.by})\n")
            return
        if withdraw:
            if not vouches.remove(name):
                raise IdentityError(
                    f"no vouch for {name!r}: list them with 'agecast identity vouch'"
                )
            console.print(f"withdrew the vouch for {name}")
            return
        package = resolve(name, settings.identities_dir)
        vouches.add(package, by="agecast identity vouch")
    except AgecastError as exc:
        raise fail(exc) from exc
    console.print(
        f"[green]vouched[/] for {package.manifest.id} ({package.manifest.purpose}): it runs "
        "without a consent record on this server"
    )


@identity_app.command("build-testpattern")
def identity_build_testpattern(
    out: Annotated[Path, typer.Argument(help="package folder to write")] = Path(
        "models/testpattern"
    ),
) -> None:
    """(Re)build the built-in testpattern identity (placement tooling) into OUT."""
    from agecast.identities.testpattern import build_package

    build_package(out)
    console.print(f"wrote testpattern identity to {out}")
    vouch_made(out, "agecast identity build-testpattern")


def identity_export_dfm(
    package: Annotated[Path, typer.Argument(help="identity package folder")],
    out: Annotated[Path, typer.Option(help=".dfm file to write")],
) -> None:
    """Write an identity package as a DeepFaceLive .dfm (morph_value = age for aged models)."""
    from agecast.identities.dfm import write_dfm

    try:
        write_dfm(package, out)
    except AgecastError as exc:
        raise fail(exc) from exc
    console.print(f"[green]wrote[/] {out}")
