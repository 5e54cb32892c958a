"""A cast router from settings and a roster: the recogniser loaded, the members' embeddings."""

from __future__ import annotations

import torch

from agecast.cast.matching import MatchPolicy
from agecast.cast.roster import Roster
from agecast.cast.router import CastRouter
from agecast.errors import CastError
from agecast.faces.recognise import Recogniser
from agecast.inference.base import Backend
from agecast.settings import Settings


def make_router(
    settings: Settings, roster: Roster, backend: Backend, *, background: bool
) -> CastRouter:
    """Route faces to ``roster``'s members with SFace on ``backend``."""
    other = sorted({m.recogniser for m in roster.members} - {"sface"})
    if other:
        raise CastError(
            f"the cast file {settings.resolved_cast_file} has embeddings from {', '.join(other)}; "
            "this agecast recognises with sface: enrol those members again"
        )
    default = MatchPolicy()
    policy = MatchPolicy(
        threshold=settings.cast_threshold, keep=min(default.keep, settings.cast_threshold)
    )
    members = {m.name: torch.tensor(m.embeddings, dtype=torch.float32) for m in roster.members}
    return CastRouter(
        Recogniser(backend),
        members,
        policy=policy,
        recheck_frames=settings.recognise_every,
        background=background,
    )
