"""The ``agecast`` command line.

Every command takes the same settings as flags, ``AGECAST_*`` environment variables or a TOML
file (``--config``); ``agecast COMMAND --help`` lists them. Each command group is a module of
this package with a ``register(app)`` function, named once in :data:`GROUPS`.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Annotated

import typer

from agecast.cli.options import LogLevel
from agecast.cli.output import debugging, error, set_debug
from agecast.errors import AgecastError

app = typer.Typer(
    help=(
        "agecast — live on-set de-aging monitor.\n\n"
        "Start with `agecast serve`: the live monitor on the bundled demo clip (or --source), "
        "raw | aged side by side; open the sign-in URL it prints. `agecast render --out "
        "take.mp4` renders every frame of a file; `agecast bench` measures speed; "
        "`agecast identity list` shows installed identities; `agecast backends` shows what can "
        "run inference on this machine. Settings: flags, AGECAST_* variables or --config "
        "TOML; `--log-level debug` shows tracebacks."
    ),
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def main(
    log_level: Annotated[
        LogLevel,
        typer.Option(
            envvar="AGECAST_LOG_LEVEL",
            case_sensitive=False,
            help="debug (with tracebacks) | info | warning | error",
        ),
    ] = "info",
) -> None:
    level = log_level.lower()
    set_debug(level == "debug")
    # plain lines (no wrapping at the terminal's width): they are copied into bug reports
    logging.basicConfig(
        level=level.upper(),
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
    )


def run() -> None:
    """The ``agecast`` program: a failure agecast expects (a missing file, a bad setting, a
    port in use) is one ``error:`` line and exit 2; anything else one line and exit 1. The
    traceback only with ``--log-level debug``."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
    except AgecastError as exc:
        if debugging():
            raise
        error(str(exc))
        sys.exit(2)
    except Exception as exc:
        if debugging():
            raise
        error(f"{type(exc).__name__}: {exc} (run with --log-level debug for the traceback)")
        sys.exit(1)


# The command groups, in the order `agecast --help` lists them: a new group is a module here
# with a `group = command_group(help)` (or `register(app: typer.Typer) -> None`), and its name
# in this tuple.
GROUPS = (
    "render",
    "bench",
    "serve",
    "engines",
    "triton",
    "train",
    "takes",
    "quality",
    "identity",
    "links",
    "faceset",
    "presets",
    "cast",
    "sources",
    "fleet",
)
for _group in GROUPS:
    _module = importlib.import_module(f"{__name__}.{_group}")
    if hasattr(_module, "register"):  # commands of its own, or a group added its own way
        _module.register(app)
    else:  # a command group, `agecast <module name> …`
        app.add_typer(_module.group, name=_group)
