"""Matching faces to members: scores, the first decision, and hysteresis over later checks."""

from __future__ import annotations

import pytest
import torch

from agecast.cast.matching import Gallery, MatchPolicy, Recognition, TrackMatch


def unit(*values: float) -> torch.Tensor:
    v = torch.tensor(values, dtype=torch.float32)
    return v / v.norm()


def test_gallery_scores_each_member_by_their_best_reference() -> None:
    gallery = Gallery(
        {"ann": torch.stack([unit(1, 0, 0), unit(0, 1, 0)]), "bob": unit(0, 0, 1)[None]}
    )
    scores = gallery.scores(unit(0, 1, 0.1))
    assert scores["ann"] == pytest.approx(float(unit(0, 1, 0.1)[1]), abs=1e-5)  # the 2nd photo
    assert scores["bob"] == pytest.approx(float(unit(0, 1, 0.1)[2]), abs=1e-5)


POLICY = MatchPolicy(threshold=0.42, margin=0.06, keep=0.28, release_after=3, switch_after=2)


def test_first_check_recognises_only_a_clear_winner() -> None:
    clear = TrackMatch()
    clear.update({"ann": 0.7, "bob": 0.1}, POLICY)
    assert (clear.state, clear.member) == (Recognition.RECOGNISED, "ann")

    stranger = TrackMatch()
    stranger.update({"ann": 0.3, "bob": 0.2}, POLICY)
    assert (stranger.state, stranger.member) == (Recognition.UNKNOWN, None)

    twins = TrackMatch()
    twins.update({"ann": 0.61, "bob": 0.58}, POLICY)
    assert (twins.state, twins.member) == (Recognition.AMBIGUOUS, None)


def test_a_head_turn_does_not_lose_or_flip_the_member() -> None:
    match = TrackMatch()
    match.update({"ann": 0.75, "bob": 0.05}, POLICY)
    # profile: the score drops under the threshold but stays over ``keep``; then one bad check
    for scores in ({"ann": 0.33, "bob": 0.1}, {"ann": 0.2, "bob": 0.25}, {"ann": 0.7, "bob": 0.1}):
        match.update(scores, POLICY)
        assert (match.state, match.member) == (Recognition.RECOGNISED, "ann")


def test_a_member_is_released_after_several_low_checks() -> None:
    match = TrackMatch()
    match.update({"ann": 0.75}, POLICY)
    for _ in range(POLICY.release_after - 1):
        match.update({"ann": 0.1}, POLICY)
        assert match.member == "ann"
    match.update({"ann": 0.1}, POLICY)
    assert (match.state, match.member) == (Recognition.UNKNOWN, None)


def test_another_member_takes_over_only_after_winning_twice_in_a_row() -> None:
    match = TrackMatch()
    match.update({"ann": 0.6, "bob": 0.1}, POLICY)
    match.update({"ann": 0.3, "bob": 0.7}, POLICY)  # one clear win for bob: not yet
    assert match.member == "ann"
    match.update({"ann": 0.6, "bob": 0.2}, POLICY)  # ann again: bob's run is broken
    match.update({"ann": 0.3, "bob": 0.7}, POLICY)
    assert match.member == "ann"
    match.update({"ann": 0.3, "bob": 0.7}, POLICY)
    assert (match.state, match.member) == (Recognition.RECOGNISED, "bob")


def test_policy_refuses_inconsistent_thresholds() -> None:
    with pytest.raises(ValueError, match="keep"):
        MatchPolicy(threshold=0.3, keep=0.5)
