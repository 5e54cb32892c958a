"""A cast router from settings and a roster: the recogniser loaded, the members' embeddings."""

from __future__ import annotations

import torch

from agecast.cast.matching import MatchPolicy
from agecast.cast.roster import Roster
from agecast.cast.router import CastRouter
from agecast.errors import CastError
from agecast.faces.recognise import make_recogniser
from agecast.inference.base import Backend
from agecast.settings import Settings


def make_router(
    settings: Settings, roster: Roster, backend: Backend, *, background: bool
) -> CastRouter:
    """Route faces to ``roster``'s members with SFace (or the ArcFace of the user's insightface
    pack) on ``backend``: the recogniser the members were enrolled with."""
    recogniser = make_recogniser(backend, settings.insightface_dir)
    other = sorted(m.name for m in roster.members if m.recogniser != recogniser.name)
    if other:
        recogniser.close()
        raise CastError(
            f"cast members {', '.join(other)} in {settings.resolved_cast_file} were enrolled "
            f"with another recogniser than this server's ({recogniser.name}, "
            f"insightface_dir={settings.insightface_dir}): enrol them again with "
            "'agecast cast add NAME --replace' and the same settings as the server"
        )
    default = MatchPolicy()
    policy = MatchPolicy(
        threshold=settings.cast_threshold, keep=min(default.keep, settings.cast_threshold)
    )
    members = {m.name: torch.tensor(m.embeddings, dtype=torch.float32) for m in roster.members}
    return CastRouter(
        recogniser,
        members,
        policy=policy,
        recheck_frames=settings.recognise_every,
        background=background,
    )
