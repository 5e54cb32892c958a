"""What ``agecast cast add | list | show | remove`` do (the CLI only parses and prints)."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from agecast.cast.enrol import embed_faceset, embed_photos, photo_files
from agecast.cast.matching import Gallery
from agecast.cast.roster import Member, Roster, check_name, load_roster, save_roster
from agecast.errors import CastError
from agecast.faces.detector import make_detector
from agecast.faces.recognise import make_recogniser
from agecast.identities.package import resolve
from agecast.inference.registry import get_backend
from agecast.settings import Settings

log = logging.getLogger(__name__)


def add_member(
    settings: Settings,
    name: str,
    *,
    photos: list[Path] | None = None,
    faceset: Path | None = None,
    identity: str | None = None,
    age: float | None = None,
    replace: bool = False,
) -> Member:
    """Enrol ``name`` from reference photos or a faceset and save the cast."""
    check_name(name)
    if bool(photos) == (faceset is not None):
        raise CastError("enrol from reference photos (--photos) or a faceset (--faceset), one")
    if identity is not None:
        resolve(identity, settings.identities_dir, installed_only=True)  # fails naming it
    path = settings.resolved_cast_file
    roster = load_roster(path)
    if not replace:
        roster.check_free(name)
    backend = get_backend("onnxruntime", threads=settings.threads)
    recogniser = make_recogniser(backend, settings.insightface_dir)
    try:
        if faceset is not None:
            embeddings, refs = embed_faceset(faceset, recogniser)
        else:
            detector = make_detector(
                backend,
                insightface_dir=settings.insightface_dir,
                score_threshold=settings.detector_threshold,
            )
            try:
                embeddings, refs = embed_photos(photo_files(photos or []), detector, recogniser)
            finally:
                detector.close()
    finally:
        recogniser.close()
    member = Member(
        name=name,
        identity=identity,
        age=age,
        embeddings=[[round(v, 6) for v in row] for row in embeddings.tolist()],
        references=refs,
        recogniser=recogniser.name,
    )
    _warn_lookalikes(roster, member)
    roster.add(member, replace=replace)
    save_roster(roster, path)
    return member


def _warn_lookalikes(roster: Roster, member: Member) -> None:
    """Say so when the new member's photos match someone already in the cast."""
    import torch

    others = {m.name: torch.tensor(m.embeddings) for m in roster.members if m.name != member.name}
    if not others:
        return
    gallery = Gallery(others)
    for row in member.embeddings:
        for other, score in gallery.scores(torch.tensor(row)).items():
            if score >= 0.42:
                log.warning(
                    "%s's photos look like %s (cosine %.2f): check they are different people",
                    member.name,
                    other,
                    score,
                )
                return


def remove_member(settings: Settings, name: str) -> Member:
    path = settings.resolved_cast_file
    roster = load_roster(path, missing_ok=False)
    member = roster.remove(name)
    save_roster(roster, path)
    return member


def describe(member: Member) -> dict[str, Any]:
    """What ``cast list``/``show`` print of a member (never the embeddings themselves)."""
    return {
        "name": member.name,
        "identity": member.identity,
        "age": member.age,
        "references": len(member.embeddings),
        "photos": member.references,
        "recogniser": member.recogniser,
        "added": member.added,
    }
