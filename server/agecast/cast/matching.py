"""Who is this face: scores against the cast, and a per-track decision with hysteresis.

Pure logic on embeddings, no model: :class:`~agecast.cast.router.CastRouter` feeds it.

A face's score for a member is the best cosine similarity between its embedding and that
member's reference embeddings (one per enrolment photo: a profile matches the profile photo).
A track is *recognised* as the best member when that score clears ``threshold`` and beats the
runner-up by ``margin``; above the threshold but too close to a second member it is
*ambiguous*; below it, *unknown*. Both of those are left as the plate.

Hysteresis: once recognised, a track keeps its member while their score stays above ``keep``
(lower than ``threshold``: a turned head or a blink scores lower but is the same person), and it
loses them only after ``release_after`` checks in a row below that. Another member takes the
track over only after winning clearly (by ``margin`` above ``threshold``) ``switch_after``
checks in a row; until then the track keeps its member.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import torch

from agecast.faces.recognise import SAME_PERSON_COSINE


class Recognition(StrEnum):
    PENDING = "pending"  # not checked yet (its first check is running)
    RECOGNISED = "recognised"
    UNKNOWN = "unknown"  # matches no one: left as the plate
    AMBIGUOUS = "ambiguous"  # matches two people about equally: left as the plate


@dataclass(frozen=True, slots=True)
class MatchPolicy:
    threshold: float = 0.42  # OpenCV's SFace same-person cosine is 0.363; a little stricter
    margin: float = 0.06
    keep: float = SAME_PERSON_COSINE - 0.08
    release_after: int = 3
    switch_after: int = 2

    def __post_init__(self) -> None:
        if not -1.0 <= self.keep <= self.threshold <= 1.0:
            raise ValueError(
                f"cast matching needs -1 <= keep ({self.keep}) <= threshold ({self.threshold}) <= 1"
            )
        if self.margin < 0 or self.release_after < 1 or self.switch_after < 1:
            raise ValueError("cast matching: margin >= 0, release_after >= 1, switch_after >= 1")


class Gallery:
    """Every member's reference embeddings, stacked for one matrix product per face."""

    def __init__(self, members: dict[str, torch.Tensor]) -> None:
        self.names = list(members)
        rows, owners = [], []
        for index, name in enumerate(self.names):
            refs = members[name].float().reshape(-1, members[name].shape[-1])
            rows.append(refs / refs.norm(dim=1, keepdim=True).clamp_min(1e-12))
            owners += [index] * refs.shape[0]
        self._refs = torch.cat(rows) if rows else torch.zeros(0, 0)
        self._owner = torch.tensor(owners, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.names)

    def scores(self, embedding: torch.Tensor) -> dict[str, float]:
        """Member name → best cosine of ``embedding`` (D,) against their references."""
        if not self.names:
            return {}
        e = embedding.float().reshape(-1)
        e = e / e.norm().clamp_min(1e-12)
        sims = self._refs @ e
        best = torch.full((len(self.names),), -1.0).scatter_reduce(
            0, self._owner, sims, reduce="amax"
        )
        return dict(zip(self.names, best.tolist(), strict=True))


@dataclass(slots=True)
class TrackMatch:
    """One face track's standing with the cast."""

    member: str | None = None
    state: Recognition = Recognition.PENDING
    score: float = 0.0  # the last check's score for ``member`` (or the best one)
    checks: int = 0
    _low: int = 0  # checks in a row with the member below ``keep``
    _challenger: str | None = None
    _wins: int = 0  # checks in a row the challenger won clearly

    def update(self, scores: dict[str, float], policy: MatchPolicy) -> None:
        """Take one check's scores (member → cosine) into account."""
        self.checks += 1
        ranked = sorted(scores.items(), key=lambda kv: kv[1], reverse=True)
        if not ranked:
            self._unassign(Recognition.UNKNOWN, 0.0)
            return
        best, best_score = ranked[0]
        second = ranked[1][1] if len(ranked) > 1 else -1.0
        if self.member is None:
            self._first(best, best_score, second, policy)
            return
        own = scores.get(self.member, -1.0)
        self.score = own
        clear_win = (
            best != self.member
            and best_score >= policy.threshold
            and best_score - own >= policy.margin
        )
        if clear_win:
            self._wins = self._wins + 1 if self._challenger == best else 1
            self._challenger = best
            if self._wins >= policy.switch_after:
                self.member, self.score = best, best_score
                self._challenger, self._wins, self._low = None, 0, 0
            return
        self._challenger, self._wins = None, 0
        if own >= policy.keep:
            self._low = 0
            return
        self._low += 1
        if self._low >= policy.release_after:
            self._unassign(Recognition.UNKNOWN, best_score)

    def _first(self, best: str, best_score: float, second: float, policy: MatchPolicy) -> None:
        self.score = best_score
        if best_score < policy.threshold:
            self.state = Recognition.UNKNOWN
        elif best_score - second < policy.margin:
            self.state = Recognition.AMBIGUOUS
        else:
            self.member, self.state, self._low = best, Recognition.RECOGNISED, 0

    def _unassign(self, state: Recognition, score: float) -> None:
        self.member, self.state, self.score = None, state, score
        self._low, self._challenger, self._wins = 0, None, 0
