"""Typed errors. Each message names the thing that failed and what to do about it."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, get_args

if TYPE_CHECKING:  # only the type: agecast.errors imports nothing at run time
    from pydantic import ValidationError


class AgecastError(Exception):
    """Base of every error agecast raises on purpose."""


class SettingsError(AgecastError):
    """A setting (flag, env var or TOML key) is unknown or invalid."""


class SourceError(AgecastError):
    """A source URI cannot be opened or read."""


class SourceLost(SourceError):
    """A live source stopped delivering frames (it may come back)."""


class BackendUnavailable(AgecastError):
    """An inference backend cannot run on this machine (library or device missing)."""


class BackendError(AgecastError):
    """A model could not be loaded or run by a backend."""


class IdentityError(AgecastError):
    """An identity package is missing, malformed or does not match its model."""


class DetectorError(AgecastError):
    """The face detector's model file is missing or not the expected one."""


class RecogniserError(AgecastError):
    """The face recogniser's model file is missing or not the expected one."""


class CastError(AgecastError):
    """A cast file or member is missing or invalid, or a reference photo shows no usable face."""


class QualityError(AgecastError):
    """A picture-quality measurement cannot be made (e.g. no face in the clip)."""


class FacesetError(AgecastError):
    """A faceset folder is missing, malformed or empty, or an extraction cannot go on."""


class TakeError(AgecastError):
    """A take name is invalid, a take is unknown or exists, or a recording cannot go on."""


class TrainError(AgecastError):
    """A training run cannot start, continue or be exported: bad facesets, a run in the way."""


class UnknownCamera(AgecastError):
    """A request names a camera this server does not run."""


class OutputError(AgecastError):
    """An output file or folder cannot be written (checked before the work that fills it)."""


class ServeError(AgecastError):
    """The monitor cannot start serving: its port is taken or its address is not this host's."""


class FleetError(AgecastError):
    """Another node of the fleet cannot be reached or trusted, or a fleet ticket or request is
    refused (expired, replayed, tampered with, from a node this one does not know)."""


def check_literal(name: str, value: object, kind: object) -> None:
    """ValueError unless ``value`` is one of the ``Literal`` type ``kind``'s values: an
    argument's choice, checked at run time (a typo in a caller mypy did not see)."""
    choices = get_args(kind)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")


# --- pydantic's validation errors in agecast's words -------------------------------------------

# pydantic's error types as what the value must be; ctx fills the {…}
_MUST = {
    "less_than_equal": "must be at most {le}",
    "less_than": "must be less than {lt}",
    "greater_than_equal": "must be at least {ge}",
    "greater_than": "must be more than {gt}",
    "float_parsing": "must be a number",
    "float_type": "must be a number",
    "int_parsing": "must be a whole number",
    "int_type": "must be a whole number",
    "int_from_float": "must be a whole number",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "literal_error": "must be one of {expected}",
    "list_type": "must be a list (a:b, a,b or a JSON list)",
    "string_type": "must be text",
    "dict_type": "must be an object of names and values",
}


def explain_fields(exc: ValidationError, noun: str = "field", valid: Iterable[str] = ()) -> str:
    """Each problem of ``exc`` as one clause, joined by ``; ``: which ``noun`` (``field``,
    ``setting``…) by its dotted name, what was wrong with it and what it must be, with the value
    given; an unknown name lists the ``valid`` ones. Our own validators' messages stand as they
    were written (they already say what to do)."""
    known = ", ".join(valid)
    parts = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        name, kind, ctx = f"{noun} {where}", err["type"], err.get("ctx", {})
        if kind == "extra_forbidden":
            parts.append(f"unknown {noun} {where!r}" + (f"; valid: {known}" if known else ""))
        elif kind == "missing":
            parts.append(f"{name} is missing")
        elif kind in ("value_error", "assertion_error"):
            parts.append(f"{name}: {ctx.get('error', err['msg'])}")
        else:
            parts.append(f"{name} {_must(kind, ctx, err['msg'])} (got {_shown(err.get('input'))})")
    return "; ".join(parts)


def _must(kind: str, ctx: dict[str, object], msg: str) -> str:
    try:
        return _MUST[kind].format(**ctx)
    except (KeyError, IndexError):  # a type without our words, or words its ctx cannot fill
        return f"is not valid: {msg}"


def _shown(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
