"""The cast on disk: who can be recognised, and what each of them gets.

A cast is a JSON file (``<state_dir>/cast.json`` unless the ``cast_file`` setting names
another): one entry per member with a name, reference face embeddings (computed once, at
enrolment, from photos of several angles), an identity and an age. It holds embeddings of
real people, so it is written owner-only (0600) like the rest of the state folder.

Read and written whole and atomically (a temporary file renamed over the old one), so a
crash while saving never leaves half a cast.
"""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agecast.errors import CastError, explain_fields
from agecast.outfiles import write_private

log = logging.getLogger(__name__)

CAST_FILE_NAME = "cast.json"
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9 ._'-]{0,47}$"
_NAME_RE = re.compile(NAME_PATTERN)
FORMAT = "agecast-cast/1"


def check_name(name: str) -> str:
    """``name`` if it is a valid member name (letters, digits, space . _ ' -; up to 48)."""
    if not _NAME_RE.fullmatch(name):
        raise CastError(
            f"cast member name {name!r} is not valid: use 1-48 letters, digits, spaces or . _ ' -,"
            " starting with a letter or digit"
        )
    return name


class Member(BaseModel):
    """One person the cast recognises."""

    model_config = ConfigDict(extra="forbid")

    name: str
    # the identity their face gets (None: the monitor's current identity)
    identity: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    age: float | None = Field(None, ge=0, le=130)  # target age (None: the live age)
    recogniser: str = "sface"  # which recogniser made the embeddings
    embeddings: list[list[float]] = Field(min_length=1)  # L2-normalised, one per reference
    references: list[str] = Field(default_factory=list)  # the photos' file names
    added: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME_RE.fullmatch(value):
            raise ValueError(f"{value!r} is not a valid member name")
        return value

    @field_validator("embeddings")
    @classmethod
    def _same_length(cls, value: list[list[float]]) -> list[list[float]]:
        if len({len(row) for row in value}) != 1 or not value[0]:
            raise ValueError("every embedding must have the same, non-zero length")
        return value


class Roster(BaseModel):
    """Every member, in the order they were added."""

    model_config = ConfigDict(extra="forbid")

    format: str = FORMAT
    members: list[Member] = Field(default_factory=list)

    def get(self, name: str) -> Member:
        for member in self.members:
            if member.name.casefold() == name.casefold():
                return member
        known = ", ".join(m.name for m in self.members) or "none yet"
        raise CastError(f"no cast member called {name!r} (the cast: {known})")

    def has(self, name: str) -> bool:
        return any(m.name.casefold() == name.casefold() for m in self.members)

    def check_free(self, name: str) -> None:
        if self.has(name):
            raise CastError(
                f"the cast already has {name!r}: remove them first, or add with --replace to "
                "enrol them again"
            )

    def add(self, member: Member, *, replace: bool = False) -> None:
        if not replace:
            self.check_free(member.name)
        elif self.has(member.name):
            self.remove(member.name)
        self.members.append(member)

    def remove(self, name: str) -> Member:
        member = self.get(name)
        self.members = [m for m in self.members if m is not member]
        return member


def cast_path(state_dir: Path, cast_file: Path | None = None) -> Path:
    """The cast file: ``cast_file`` if given, else ``<state_dir>/cast.json``."""
    return cast_file if cast_file is not None else state_dir / CAST_FILE_NAME


def load_roster(path: Path, *, missing_ok: bool = True) -> Roster:
    """The cast in ``path`` (an empty one if the file does not exist and ``missing_ok``)."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if missing_ok:
            return Roster()
        raise CastError(
            f"cast file {path} does not exist: enrol someone with 'agecast cast add NAME --photos'"
        ) from None
    except OSError as exc:
        raise CastError(f"cast file {path} cannot be read ({exc})") from exc
    try:
        roster = Roster.model_validate(json.loads(text))
    except ValueError as exc:  # not JSON, or (a ValidationError) not a cast
        problem = explain_fields(exc) if isinstance(exc, ValidationError) else str(exc)
        raise CastError(
            f"cast file {path} is not a valid agecast cast ({problem}); fix it or move it away "
            "and enrol the cast again"
        ) from exc
    if roster.format != FORMAT:
        raise CastError(
            f"cast file {path} has format {roster.format!r}; this agecast reads {FORMAT}"
        )
    return roster


def save_roster(roster: Roster, path: Path) -> None:
    """Write the cast atomically, owner-only."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_private(path, roster.model_dump_json(indent=1).encode())
    except OSError as exc:
        raise CastError(f"cannot write the cast file {path} ({exc})") from exc
    log.info("cast saved to %s (%d member(s))", path, len(roster.members))
