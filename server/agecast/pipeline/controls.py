"""What an operator may change live, defined once: the control message (REST, ``/ws/control``,
presets), a cast member's controls, and which of them are the look.

The look itself is :class:`agecast.pipeline.fx.Look` (what a frame used); these are the
requests to change it, checked before anything changes.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agecast.pipeline.fx import Look, MemberLook

# the look's fields, and those a control message sets directly (the cast's go by member)
LOOK_FIELDS = frozenset(f.name for f in dataclasses.fields(Look))
LOOK_KEYS = LOOK_FIELDS - {"members"}
MEMBER_KEYS = frozenset(f.name for f in dataclasses.fields(MemberLook)) - {"name"}


class MemberControl(BaseModel):
    """One cast member's controls (``members`` in :class:`Control`)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    identity: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")
    age: float | None = Field(None, ge=0, le=130)
    blend: float | None = Field(None, ge=0, le=1)
    bypass: bool | None = None


class Control(BaseModel):
    """Operator controls; every field optional, unknown fields rejected."""

    model_config = ConfigDict(extra="forbid", strict=True)  # 0 is not "false"
    bypass: bool | None = None
    blend: float | None = Field(None, ge=0, le=1)
    color_transfer: str | None = Field(None, pattern="^(auto|rct|rct-lab|none)$")
    mask_feather: float | None = Field(None, ge=0, le=0.5)
    layout: str | None = Field(None, pattern="^(side-by-side|aged|raw)$")
    identity: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")  # installed id
    ai_mark: bool | None = None
    age: float | None = Field(None, ge=0, le=130)
    # years per region (forehead, eyes, mouth, hair): {"eyes": -10} or a list of four
    age_offsets: dict[str, float] | list[float] | None = None
    camera: str | None = Field(None, min_length=1, max_length=16)  # default: the first
    # the cast's members by name: {"lead-a": {"age": 40, "identity": "…"}}
    members: dict[str, MemberControl] | None = Field(None, max_length=64)


def look_values(look: Look) -> dict[str, Any]:
    """``look`` as control values: its own keys, and each cast member's controls by name."""
    values: dict[str, Any] = {k: getattr(look, k) for k in LOOK_KEYS}
    values["members"] = {m.name: {k: getattr(m, k) for k in MEMBER_KEYS} for m in look.members}
    return values


# every control a service takes (``camera`` picks the service, it is not one of its controls)
CONTROL_KEYS = frozenset(Control.model_fields) - {"camera"}
assert LOOK_KEYS <= CONTROL_KEYS and frozenset(MemberControl.model_fields) == MEMBER_KEYS
