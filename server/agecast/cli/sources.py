"""``agecast sources``: what this machine can take pictures from (NDI sources on the LAN)."""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from agecast.cli.options import ConfigOpt, command_group, load_settings
from agecast.cli.output import fail
from agecast.errors import AgecastError

group = sources_app = command_group("Sources this machine can see.")


@sources_app.command("ndi")
def sources_ndi(
    seconds: Annotated[float, typer.Option(help="how long to listen for senders")] = 2.0,
    config: ConfigOpt = None,
) -> None:
    """The NDI sources on the LAN, one a line: use one as --source 'ndi://NAME'.

    Senders across subnets, or where mDNS is blocked, are found through the ndi_extra_ips
    setting (their machines' addresses)."""
    from agecast.media import ndi

    settings = load_settings(config)
    try:
        ndi.configure(settings.ndi_extra_ips, settings.state_dir / "ndi")  # before NDI starts
        if (why := ndi.missing()) is not None:
            raise AgecastError(why)
        names = ndi.find(seconds)
    except AgecastError as exc:
        raise fail(exc) from exc
    for name in names:
        sys.stdout.write(f"ndi://{name}\n")
    if not names:
        sys.stderr.write(f"no NDI source seen in {seconds:g} s\n")
