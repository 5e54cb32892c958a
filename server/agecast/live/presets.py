"""Presets on the live service: take one of what runs now, or switch the service to one."""

from __future__ import annotations

import logging
from typing import Any

from agecast.live.service import LiveService
from agecast.pipeline.controls import look_values
from agecast.takes.presets import VALUE_KEYS, Preset, make_preset

log = logging.getLogger(__name__)


def current_preset(service: LiveService, name: str, actor: str | None = None) -> Preset:
    """A preset of what the live service runs now: its identity, age and look."""
    manifest = service.built.fx.identity.manifest
    values = {k: v for k, v in look_values(service.built.fx.look).items() if k in VALUE_KEYS}
    values["members"] = values["members"] or None
    return make_preset(name, actor=actor or manifest.actor, identity=manifest.id, **values)


def apply_preset(service: LiveService, preset: Preset) -> dict[str, Any]:
    """Switch the live service to ``preset``; a recording take logs it. Returns the status."""
    values = preset.values()
    if "members" in values:  # members not in today's cast are skipped, not an error
        cast = {m.name for m in service.built.fx.look.members}
        kept = {n: v for n, v in values["members"].items() if n in cast}
        skipped = sorted(set(values["members"]) - cast)
        if skipped:
            log.info("preset %s: %s not in the cast, skipped", preset.name, ", ".join(skipped))
        values["members"] = kept
        if not kept:
            del values["members"]
    status = service.control(values)
    service.preset = preset.name
    recorder = service.recorder
    if recorder is not None and recorder.active:
        recorder.note({"preset": preset.name})
    return {**status, "preset": preset.name}
