"""``agecast serve`` (the live monitor) and ``agecast certs`` (TLS for serving on a LAN)."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from agecast.cli.options import settings_flags
from agecast.cli.output import console, fail, log
from agecast.errors import AgecastError
from agecast.settings import Settings

if TYPE_CHECKING:
    from agecast.live.service import LiveService

certs_app = typer.Typer(help="TLS certificates for serving on a LAN.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.command()(settings_flags(serve))
    app.add_typer(certs_app, name="certs")


def serve(
    settings: Settings,
    host: Annotated[
        str, typer.Option(help="address to listen on (127.0.0.1 = this machine only)")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    tls_cert: Annotated[
        Path | None, typer.Option(help="TLS certificate (PEM): serve https", exists=True)
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="TLS private key (PEM)", exists=True)] = None,
) -> None:
    """Start the live monitor; open the printed sign-in URL in Chromium, Chrome or Edge.

    The URL carries a one-time operator token; give others links from `agecast links create`.
    Off this machine, WebCodecs needs https: pass --tls-cert/--tls-key
    (`agecast certs selfsigned` makes a pair for a LAN).
    """
    # First: SIGTERM while the models load ends the start-up too. In a container the server is
    # PID 1, and the kernel drops a signal PID 1 has no handler for: `docker stop` would wait
    # its grace period out and kill it.
    signal.signal(signal.SIGTERM, _sigterm)
    from agecast.api.app import create_app
    from agecast.api.auth import Auth
    from agecast.fleet.peers import Fleet
    from agecast.serving import record_address

    if (tls_cert is None) != (tls_key is None):
        raise fail(ValueError("give both --tls-cert and --tls-key, or neither"))
    try:
        fleet = Fleet.from_settings(settings)  # its key checked before the models load
    except AgecastError as exc:
        raise fail(exc) from exc
    services, listener = _open(settings, host, port)
    auth = Auth.at(settings.state_dir, secure_cookies=tls_cert is not None)
    _, token = auth.links.create("operator", label="serve", expires_s=12 * 3600, one_time=True)
    app = create_app(lambda: services, auth=auth, fleet=fleet)
    scheme = "https" if tls_cert else "http"
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    record_address(settings.state_dir, f"{scheme}://{shown}:{port}", host, port)
    # plain stdout, one line: a URL wrapped by a pretty printer cannot be clicked or copied
    sys.stdout.write(f"agecast monitor: {scheme}://{shown}:{port}/?token={token}\n")
    sys.stdout.flush()
    console.print(
        "one-time operator sign-in; `agecast links create --role viewer` makes links for others"
    )
    if len(services) > 1:
        named = ", ".join(f"{s.name} ({s.built.pipeline.source.uri})" for s in services)
        console.print(f"cameras: {named}; the monitor has a picker, URLs take ?camera=NAME")
    if fleet is not None:
        console.print(f"fleet: this node is {fleet.me}; peers {', '.join(sorted(fleet.names))}")
    _run_server(app, listener, host, port, (tls_cert, tls_key))


def _open(settings: Settings, host: str, port: int) -> tuple[list[LiveService], socket.socket]:
    """Check everything before a sign-in URL is printed: the identity and models (one service
    per camera, one shared backend), every source opened, the port bound."""
    from agecast.api.luts import textures
    from agecast.live.service import live_services
    from agecast.serving import listen

    services: list[LiveService] = []
    try:
        textures(settings.display_luts)  # a bad display LUT fails here, naming file and line
        services = live_services(settings)
        for service in services:
            service.open_source()
        return services, listen(host, port)
    except AgecastError as exc:
        for service in services:
            service.stop()
        raise fail(exc) from exc
    except KeyboardInterrupt:  # SIGTERM or Ctrl-C before serving: nothing was served yet
        for service in services:
            service.stop()
        log.info("stopped during start-up")
        raise typer.Exit(code=0) from None


def _sigterm(signum: int, frame: object) -> None:
    # uvicorn re-raises the signal it stopped on, killing the process (exit -15) after a clean
    # shutdown; ending as on Ctrl-C gives exit 0.
    raise KeyboardInterrupt


def _run_server(
    app: Any,
    listener: socket.socket,
    host: str,
    port: int,
    tls: tuple[Path | None, Path | None],
) -> None:
    """Serve until Ctrl-C or SIGTERM (exit 0); ``tls`` = (certificate, key) or (None, None)."""
    import uvicorn

    from agecast.api.serve import uvicorn_options

    server = uvicorn.Server(
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", ssl_certfile=tls[0],
            ssl_keyfile=tls[1], **uvicorn_options(),
        )
    )  # fmt: skip
    try:
        server.run(sockets=[listener])  # the socket bound above: no second bind to fail
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM: uvicorn has shut down cleanly
        pass
    except AgecastError as exc:
        raise fail(exc) from exc
    if not server.started:  # the app failed to start (its error is logged above)
        raise typer.Exit(code=3)


@certs_app.command("selfsigned")
def certs_selfsigned(
    out: Annotated[Path, typer.Option(help="folder for cert.pem and key.pem")] = Path("certs"),
    host: Annotated[
        list[str], typer.Option(help="DNS name or IP the monitor is reached at (repeat)")
    ] = ["localhost", "127.0.0.1"],  # noqa: B006
    days: Annotated[int, typer.Option(help="validity in days")] = 90,
) -> None:
    """A self-signed certificate for --tls-cert/--tls-key (browsers ask to trust it once)."""
    from agecast.api.certs import write_selfsigned

    cert, key = write_selfsigned(out, host, days)
    console.print(f"wrote {cert} and {key}; serve with --tls-cert {cert} --tls-key {key}")
