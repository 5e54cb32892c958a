"""What every command says: the one ``error:`` line, the exit codes, the stderr console.

Results a script reads (a URL, a take id, JSON) go to stdout; everything for the person at
the terminal goes to stderr through :data:`console`.
"""

from __future__ import annotations

import logging
import shlex
import sys

import typer
from rich.console import Console
from rich.markup import escape

console = Console(stderr=True)
log = logging.getLogger("agecast")


_debug = False  # --log-level debug: errors come with their traceback


def set_debug(on: bool) -> None:
    global _debug
    _debug = on


def debugging() -> bool:
    return _debug


def error(text: str) -> None:
    """One ``error: …`` line on stderr (the message's own brackets are not markup)."""
    console.print("[bold red]error:[/]", escape(text), soft_wrap=True)


def fail(exc: Exception) -> typer.Exit:
    """The ``typer.Exit`` (code 2) to raise for a failure the user can fix, said once."""
    if _debug:
        log.debug("traceback of the error below", exc_info=exc)
    error(str(exc))
    return typer.Exit(code=2)


def command_line() -> str:
    """This invocation as a shell line (for provenance records)."""
    return shlex.join(["agecast", *sys.argv[1:]])


def argv() -> list[str]:
    """This invocation as a list (for the JSON reports)."""
    return ["agecast", *sys.argv[1:]]
