"""``GET /api/identities``: the identity packages this server could switch to, for the page's
identity picker. Read-only; switching is ``POST /api/control`` (or ``/ws/control``) with
``{"identity": ID}``, as before.

Each entry says whether it can run now (its consent in force) and, if not, why, so the picker
can show a blocked likeness without offering it.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from agecast.api.deps import Camera
from agecast.api.guard import public
from agecast.identities.package import consent_problem, discover
from agecast.identities.vouch import Vouches

router = APIRouter()


@router.get("/api/identities")
def identities(live: Camera) -> dict[str, Any]:
    """Installed identities (``?camera=NAME``: whose ``active`` identity to report)."""
    found = []
    vouches = Vouches(live.settings.state_dir)
    for package in discover(live.settings.identities_dir):
        m = package.manifest
        problem = consent_problem(package, vouches=vouches)
        found.append(
            {
                "id": m.id,
                "display_name": m.display_name,
                "actor": m.actor,
                "age_label": m.age_label,
                "purpose": m.purpose,
                "family": m.family,
                "runnable": problem is None,
                "problem": public(problem) if problem else None,  # no server paths
            }
        )
    return {"identities": found, "active": live.built.fx.identity.manifest.id}
