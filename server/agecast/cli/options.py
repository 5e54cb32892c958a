"""Options more than one command takes, each defined once.

Two groups of options are added to a command by a decorator rather than spelled out on it:
:func:`settings_flags` (every setting as a flag, plus ``--config``; the command receives
``settings``) and :func:`consent_flags` (the consent record of an imported or exported
likeness; the command receives ``consent``).
"""

from __future__ import annotations

import functools
import inspect
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from agecast.cli.output import console, fail
from agecast.errors import AgecastError
from agecast.settings import Settings

if TYPE_CHECKING:
    from agecast.manifest import ConsentRecord

Command = Callable[..., None]
LogLevel = Literal["debug", "info", "warning", "error"]

ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML settings file", exists=True)]
BackendOpt = Annotated[str | None, typer.Option(help="auto | onnxruntime | onnxruntime-cuda | …")]
ForceOpt = Annotated[bool, typer.Option("--force", help="replace a package already in --out")]


def command_group(help: str) -> typer.Typer:
    """A command group (``agecast NAME …``): a module of ``cli/`` that holds one as ``group``
    is added under its module's name (``cli/__init__.py``)."""
    return typer.Typer(help=help, no_args_is_help=True)


def load_settings(config: Path | None, **flags: Any) -> Settings:
    """The settings (flags over ``AGECAST_*`` over ``config`` over defaults), or exit 2 saying
    which setting is wrong."""
    try:
        return Settings.load(config, **flags)
    except AgecastError as exc:
        raise fail(exc) from exc


def _expand(
    command: Command,
    name: str,
    options: list[inspect.Parameter],
    make: Callable[[dict[str, Any]], Any],
    *,
    last: bool = False,
) -> Command:
    """``command`` with its parameter ``name`` replaced by ``options`` (in its place, or after
    the command's own with ``last``); ``make`` turns the options' values into that argument.

    typer reads the new signature, so one table of options serves every command that takes it.
    """
    hints = typing.get_type_hints(command, include_extras=True)
    own = [
        p.replace(kind=inspect.Parameter.KEYWORD_ONLY, annotation=hints[p.name])
        for p in inspect.signature(command).parameters.values()
    ]
    at = next(i for i, p in enumerate(own) if p.name == name)
    before, after = own[:at], own[at + 1 :]
    parameters = [*before, *after, *options] if last else [*before, *options, *after]
    taken = [p.name for p in options]

    @functools.wraps(command)
    def wrapper(**kwargs: Any) -> None:
        values = {key: kwargs.pop(key) for key in taken}
        command(**kwargs, **{name: make(values)})

    wrapper.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    del wrapper.__wrapped__  # typer must read the new signature, not the original's
    return wrapper


def _option(name: str, annotation: Any) -> inspect.Parameter:
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=annotation
    )


# Settings as flags -------------------------------------------------------------------------------
# Help for flags where the setting's own description is not enough (the rest come from it).
_FLAG_HELP = {
    "source": "demo | FILE | testpattern[:WxH@FPS] | v4l2:///dev/videoN | rtsp:// | udp://",
    "identity": "identity id or package folder (auto = best installed)",
    "identities_dir": "folders searched for identity packages: a:b, a,b or a JSON list",
    "cameras": "cameras for serve: NAME=URI,NAME=URI (or a JSON list)",
    "threads": "CPU threads per model (0 = default)",
    "insightface_dir": "local insightface pack (det_10g.onnx, 2d106det.onnx)",
    "takes_dir": "where takes are recorded (default <state_dir>/takes)",
    "age_offsets": "years per region for re-ageing identities, e.g. eyes:-10,hair:5",
}


def _flag_for(name: str, field: Any) -> tuple[type, typer.models.OptionInfo]:
    """(type, typer option) for setting ``name``: ``--name-with-dashes``, help from its
    description, its env variable named; booleans as ``--x/--no-x``."""
    kind = field.annotation
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(a for a in typing.get_args(kind) if a is not type(None))  # X | None → X
    if typing.get_origin(kind) is typing.Literal:
        choices = " | ".join(str(c) for c in typing.get_args(kind))
        help_text, kind = f"{field.description or name}: {choices}", str
    else:
        help_text = _FLAG_HELP.get(name) or field.description or name.replace("_", " ")
    if typing.get_origin(kind) is list:  # lists as text: split by the setting itself
        kind = str
    flag = "--" + name.replace("_", "-")
    decls = [f"{flag}/--no-{name.replace('_', '-')}"] if kind is bool else [flag]
    if kind not in (bool, int, float, Path):
        kind = str
    env = f"AGECAST_{name.upper()}"
    return kind, typer.Option(*decls, help=f"{help_text} (env {env})", show_default=False)


# Every setting as a flag of every pipeline command (None = not given: env, TOML or default).
_SETTINGS_FLAGS: dict[str, tuple[type, typer.models.OptionInfo]] = {
    name: _flag_for(name, field) for name, field in Settings.model_fields.items()
}


def settings_flags(command: Command) -> Command:
    """Give ``command`` the shared settings flags (and --config); it receives ``settings``.

    One table of flags instead of the same dozen parameters on every command. A command's own
    parameter of a setting's name (bench --cameras N) wins over the setting.
    """
    taken = set(inspect.signature(command).parameters)
    shared = {k: v for k, v in _SETTINGS_FLAGS.items() if k not in taken}
    options = [_option("config", ConfigOpt)]
    options += [_option(k, Annotated[kind | None, opt]) for k, (kind, opt) in shared.items()]

    def make(values: dict[str, Any]) -> Settings:
        return load_settings(values.pop("config"), **values)

    return _expand(command, "settings", options, make, last=True)


# Consent for a likeness (see models/README.md) ---------------------------------------------------
_REQUIRED = "required for a likeness with the other --consent-* options (or --consent-file)"


def _consent_text(flag: str, help_text: str) -> Any:
    return Annotated[str | None, typer.Option(flag, help=help_text)]


_CONSENT_OPTIONS = {
    "consent_by": _consent_text(
        "--consent-granted-by", f"who granted the actor's consent; {_REQUIRED}"
    ),
    "consent_production": _consent_text(
        "--consent-production", f"production the consent covers; {_REQUIRED}"
    ),
    "consent_purpose": Annotated[
        list[str] | None,
        typer.Option(
            "--consent-purpose",
            help=f"a consented use, e.g. 'on-set monitoring' (repeat); at least one {_REQUIRED}",
        ),
    ],
    "consent_from": _consent_text("--consent-from", f"first valid day, YYYY-MM-DD; {_REQUIRED}"),
    "consent_until": _consent_text("--consent-until", f"last valid day, YYYY-MM-DD; {_REQUIRED}"),
    "consent_reference": _consent_text("--consent-reference", "contract or release reference"),
    "consent_file": Annotated[
        Path | None,
        typer.Option("--consent-file", help="consent record as JSON instead", exists=True),
    ],
}


@dataclass(frozen=True)
class Consent:
    """The ``--consent-*`` options as given (all None: no consent recorded)."""

    consent_by: str | None = None
    consent_production: str | None = None
    consent_purpose: list[str] | None = None
    consent_from: str | None = None
    consent_until: str | None = None
    consent_reference: str | None = None
    consent_file: Path | None = None

    def record(self, actor: str) -> ConsentRecord | None:
        """``actor``'s consent record (None when no option was given); the same checks on
        every command (AgecastError: a field missing, a record about someone else)."""
        from agecast.identities.making import consent_record

        return consent_record(
            actor,
            granted_by=self.consent_by,
            production=self.consent_production,
            purposes=self.consent_purpose or (),
            valid_from=self.consent_from,
            valid_until=self.consent_until,
            reference=self.consent_reference,
            consent_file=self.consent_file,
        )


def consent_flags(command: Command) -> Command:
    """Give ``command`` the ``--consent-*`` options where its ``consent`` parameter stands; it
    receives them as one :class:`Consent`."""
    options = [_option(name, kind) for name, kind in _CONSENT_OPTIONS.items()]
    return _expand(command, "consent", options, lambda values: Consent(**values))


def vouch_made(package_dir: Path, command: str) -> None:
    """Vouch for a package this machine just made with ``--purpose demo|tooling``: whoever runs
    the command holds the state folder (``AGECAST_STATE_DIR``), the owner's trust (vouch.py).
    A likeness is left alone: it runs with its actor's consent."""
    from agecast.identities.package import read_package
    from agecast.identities.vouch import Vouches

    try:
        package = read_package(package_dir)
        if package.manifest.purpose == "likeness":
            return
        state_dir = load_settings(None).state_dir
        Vouches(state_dir).add(package, by=command)
    except (AgecastError, OSError) as exc:
        raise fail(exc) from exc
    console.print(
        f"vouched for {package.manifest.id} ({package.manifest.purpose}) on this machine "
        f"(state folder {state_dir}): it runs without a consent record here"
    )
