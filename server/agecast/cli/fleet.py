"""``agecast fleet``: the shared key, certificate pins and the fleet as this node sees it."""

from __future__ import annotations

import ssl
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from agecast.cli.options import ConfigOpt, command_group, load_settings
from agecast.cli.output import console, fail

group = command_group("Several agecast nodes, one view: key, pins, status (docs/fleet.md).")


@group.command("init")
def fleet_init(config: ConfigOpt = None) -> None:
    """Make the fleet key (once, on one node); copy the file it names to every other node."""
    from agecast.fleet.signing import init_key

    path = load_settings(config).resolved_fleet_secret
    made = init_key(path)
    console.print(
        f"{'made' if made else 'kept the existing'} fleet key {path}: copy it (0600) to the "
        "same place on every node of the fleet, or set fleet_secret to where it lies there"
    )


@group.command("pin")
def fleet_pin(
    cert: Annotated[
        Path, typer.Argument(help="a node's TLS certificate (PEM), as it serves with --tls-cert")
    ],
) -> None:
    """The sha256 pin of a node's certificate, for its fleet entry (NAME=URL#sha256=PIN)."""
    from agecast.fleet.client import certificate_pin

    try:
        der = ssl.PEM_cert_to_DER_cert(cert.read_text())
    except (OSError, ValueError) as exc:
        raise fail(ValueError(f"{cert} is not a PEM certificate: {exc}")) from exc
    sys.stdout.write(f"sha256={certificate_pin(der)}\n")


@group.command("status")
def fleet_status(config: ConfigOpt = None) -> None:
    """Ask every node in the fleet setting now, as this node's server does, and show what they
    answer (their cameras, or why not)."""
    import asyncio

    from agecast.errors import AgecastError
    from agecast.fleet.peers import Fleet

    settings = load_settings(config)
    try:
        fleet = Fleet.from_settings(settings)
    except AgecastError as exc:
        raise fail(exc) from exc
    if fleet is None:
        raise fail(
            ValueError('no fleet setting: list the other nodes, e.g. fleet = ["B=https://…"]')
        )

    async def ask_all() -> None:
        await asyncio.gather(*(fleet.refresh(name) for name in fleet.names))
        await fleet.stop()

    asyncio.run(ask_all())
    table = Table(title=f"agecast fleet, as {fleet.me} sees it")
    for col in ("node", "url", "state", "cameras"):
        table.add_column(col)
    for name, state in sorted(fleet.states.items()):
        cameras = ", ".join(
            f"{c.name} ({c.state}, fx {c.fx}, {c.fps_out:.0f} fps)" for c in state.cameras
        )
        table.add_row(
            name, state.entry.url, "up" if state.reachable else f"down: {state.error}", cameras
        )
    Console().print(table)
    if not all(s.reachable for s in fleet.states.values()):
        raise typer.Exit(code=1)
