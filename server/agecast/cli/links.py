"""``agecast links``: sign-in links for viewers and operators."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from agecast.cli.options import ConfigOpt, command_group, load_settings
from agecast.cli.output import console, fail

if TYPE_CHECKING:
    from agecast.api.auth import Auth

# agecast.api.auth's Role (importing it here would load the web app for every command); mypy
# checks that these are roles it takes.
LinkRole = Literal["viewer", "operator"]

group = links_app = command_group("Sign-in links for viewers and operators.")


def _auth(config: Path | None) -> Auth:
    from agecast.api.auth import Auth

    return Auth.at(load_settings(config).state_dir)


@links_app.command("create")
def links_create(
    role: Annotated[
        LinkRole, typer.Option(help="viewer (watch) or operator (watch and change)")
    ] = "viewer",
    expires: Annotated[str, typer.Option(help="lifetime: 30m, 12h, 7d")] = "12h",
    label: Annotated[str, typer.Option(help="who it is for (shown in the audit log)")] = "",
    burn_label: Annotated[
        bool, typer.Option(help="burn the label into every picture this link's viewers receive")
    ] = False,
    url: Annotated[
        str | None,
        typer.Option(
            help="the monitor's address (default: the one `agecast serve` last served on with "
            "this state_dir, else http://127.0.0.1:8000)"
        ),
    ] = None,
    config: ConfigOpt = None,
) -> None:
    """Make a sign-in link (printed once: the token is stored only as a hash)."""
    from agecast.api.auth import parse_duration
    from agecast.serving import served_address

    url = url or served_address(load_settings(config).state_dir)
    try:
        seconds = parse_duration(expires)
        link, token = _auth(config).links.create(
            role, label=label, expires_s=seconds, burn_label=burn_label
        )
    except ValueError as exc:
        raise fail(exc) from exc
    sys.stdout.write(f"{url.rstrip('/')}/?token={token}\n")
    console.print(f"link {link.id} ({link.role}, {label or 'no label'}) expires in {expires}")


@links_app.command("list")
def links_list(config: ConfigOpt = None) -> None:
    """Every link: id, role, label, expiry, state."""
    table = Table(title="agecast links")
    for col in ("id", "role", "label", "expires", "state"):
        table.add_column(col)
    now = time.time()
    for link in _auth(config).links.all():
        state = (
            "revoked" if link.revoked else "used" if link.one_time and link.used
            else "expired" if not link.usable(now) else "active"
        )  # fmt: skip
        expires = (
            time.strftime("%Y-%m-%d %H:%M", time.localtime(link.expires))
            if link.expires
            else "never"
        )
        table.add_row(link.id, link.role, link.label, expires, state)
    Console().print(table)


@links_app.command("revoke")
def links_revoke(
    which: Annotated[str, typer.Argument(help="link id or label")], config: ConfigOpt = None
) -> None:
    """Revoke a link (by id, or every link with a label); its sessions end at once."""
    revoked = _auth(config).links.revoke(which)
    if not revoked:
        raise fail(
            ValueError(f"no active link with id or label {which!r} (see `agecast links list`)")
        )
    console.print(f"revoked {', '.join(link.id for link in revoked)}")
