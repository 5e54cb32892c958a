"""Named presets: an identity, an age and a look, saved under a name and switched live.

Stored as one JSON file, ``<state_dir>/presets.json`` (written atomically). Applying a preset
is an ordinary operator control change; its name is remembered by the live service, written
into the next take's take.json and, while a take records, logged in its sidecar.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from agecast.age_offsets import parse_offsets
from agecast.errors import SettingsError, explain_fields
from agecast.pipeline.controls import MemberControl
from agecast.settings import ColorTransfer, Settings
from agecast.takes.store import NAME_RE, NAME_RULE, now_iso, write_json_atomic

log = logging.getLogger(__name__)

PRESETS_FILE = "presets.json"
VALUE_KEYS = (
    "identity", "age", "age_offsets", "blend", "color_transfer", "mask_feather", "members"
)  # fmt: skip


class Preset(BaseModel):
    """Actor × identity × age × look. Unset fields leave the live value as it is."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=NAME_RE.pattern)
    actor: str | None = None
    identity: str | None = Field(None, min_length=1)
    age: float | None = Field(None, ge=0, le=130)
    age_offsets: tuple[float, float, float, float] | None = None  # years: forehead, eyes, …
    blend: float | None = Field(None, ge=0, le=1)
    color_transfer: ColorTransfer | None = None
    mask_feather: float | None = Field(None, ge=0, le=0.5)
    members: dict[str, MemberControl] | None = None  # the cast's controls, by member name
    created: str = Field(default_factory=now_iso)

    @field_validator("age_offsets", mode="before")
    @classmethod
    def _offsets(cls, value: object) -> object:
        return None if value is None else parse_offsets(value)

    def values(self) -> dict[str, Any]:
        """The settings this preset sets (as a control change)."""
        data = self.model_dump()
        values = {k: data[k] for k in VALUE_KEYS if data[k] is not None}
        if "members" in values:
            values["members"] = {
                name: {k: v for k, v in member.items() if v is not None}
                for name, member in values["members"].items()
            }
        return values

    def applied_to(self, settings: Settings) -> Settings:
        """``settings`` with this preset's values (the cast's controls apply once it runs)."""
        values = {k: v for k, v in self.values().items() if k != "members"}
        return Settings.model_validate({**settings.model_dump(), **values})


def make_preset(name: str, **values: Any) -> Preset:
    """A checked preset; :class:`SettingsError` naming the bad field."""
    if not NAME_RE.match(name or "") or ".." in name:
        raise SettingsError(f"preset name {name!r} is not allowed; use {NAME_RULE}")
    try:
        preset = Preset(name=name, **values)
    except ValidationError as exc:
        raise SettingsError(f"preset {name!r}: {explain_fields(exc)}") from exc
    if not preset.values():
        raise SettingsError(
            f"preset {name!r} sets nothing: give at least one of {', '.join(VALUE_KEYS)}"
        )
    return preset


class PresetStore:
    """All presets in ``<state_dir>/presets.json``."""

    _lock = threading.Lock()  # one writer at a time in this process

    def __init__(self, state_dir: Path) -> None:
        self.path = Path(state_dir) / PRESETS_FILE

    def _load(self) -> dict[str, Preset]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise SettingsError(f"{self.path} is not valid JSON ({exc}); fix or remove it") from exc
        try:
            return {name: Preset.model_validate(p) for name, p in data["presets"].items()}
        except (KeyError, TypeError, AttributeError, ValidationError) as exc:
            problem = explain_fields(exc) if isinstance(exc, ValidationError) else repr(exc)
            raise SettingsError(
                f"{self.path} is not a presets file ({problem}); fix or remove it"
            ) from exc

    def _save(self, presets: dict[str, Preset]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = {"presets": {n: p.model_dump(mode="json") for n, p in sorted(presets.items())}}
        write_json_atomic(self.path, data)

    def list(self) -> list[Preset]:
        return sorted(self._load().values(), key=lambda p: p.name)

    def get(self, name: str) -> Preset:
        presets = self._load()
        if name not in presets:
            known = ", ".join(sorted(presets)) or "none saved"
            raise SettingsError(
                f"no preset {name!r} (presets: {known}); save one with `agecast presets save`"
            )
        return presets[name]

    def save(self, preset: Preset) -> Preset:
        """Save (or replace) ``preset``."""
        with self._lock:
            presets = self._load()
            presets[preset.name] = preset
            self._save(presets)
        return preset

    def delete(self, name: str) -> Preset:
        with self._lock:
            presets = self._load()
            if name not in presets:
                known = ", ".join(sorted(presets)) or "none saved"
                raise SettingsError(f"no preset {name!r} to delete (presets: {known})")
            gone = presets.pop(name)
            self._save(presets)
        return gone
