"""Routing on the pipeline: each lead gets their own identity, the passer-by is left alone."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import pytest
import torch

from agecast.cast.matching import Recognition
from agecast.cast.router import tag_of
from agecast.cast.scene import LEADS, PASSER_BY, CastScene
from agecast.frames import FaceBox
from agecast.pipeline.build import Built, build
from agecast.pipeline.fx import Processed

from .conftest import Cast


def who(face: FaceBox, heads: dict[str, tuple[float, float, float, float]]) -> str | None:
    """The person whose head (from the scene's own geometry) the face box sits on."""
    cx, cy = ((face.box[:2] + face.box[2:]) / 2).tolist()
    for name, (x0, y0, x1, y1) in heads.items():
        if x0 <= cx <= x1 and y0 <= cy <= y1:
            return name
    return None


def frames(built: Built) -> Iterator[tuple[int, torch.Tensor, Processed]]:
    source = built.pipeline.source
    source.open()
    try:
        while (frame := source.read()) is not None:
            yield frame.index, frame.image, built.fx.process(frame)
    finally:
        source.close()


@pytest.fixture(scope="module")
def rendered(cast: Cast) -> list[tuple[int, torch.Tensor, Processed]]:
    built = build(cast.settings(), mode="render")
    try:
        return list(frames(built))
    finally:
        built.close()


def region(image: torch.Tensor, box: tuple[float, float, float, float], shrink: float = 0.25):
    x0, y0, x1, y1 = box
    dx, dy = (x1 - x0) * shrink, (y1 - y0) * shrink
    return image[int(y0 + dy) : int(y1 - dy), int(x0 + dx) : int(x1 - dx)].float()


def test_each_lead_gets_their_own_identity_and_the_passer_by_none(
    rendered: list[tuple[int, torch.Tensor, Processed]],
) -> None:
    scene = CastScene()
    found: Counter[str] = Counter()
    right: Counter[str] = Counter()
    passer_seen = 0
    for index, _, out in rendered:
        heads = scene.heads(index)
        for face in out.faces:
            person, tag = who(face, heads), tag_of(face)
            assert tag is not None
            if person in LEADS:
                found[person] += 1
                right[person] += tag.member == person
                other = LEADS[1 - LEADS.index(person)]
                assert tag.member != other, f"frame {index}: {other}'s identity on {person}"
            elif person == PASSER_BY:
                passer_seen += 1
                assert tag.member is None, (
                    f"frame {index}: the passer-by was taken for {tag.member}"
                )
    assert passer_seen >= 30  # the passer-by was found and checked, not missed
    for lead in LEADS:
        assert found[lead] >= 140, found
        assert right[lead] / found[lead] >= 0.99, (lead, right[lead], found[lead])


def test_pixels_change_by_each_leads_own_model_and_not_on_the_passer_by(
    rendered: list[tuple[int, torch.Tensor, Processed]],
) -> None:
    scene = CastScene()
    index, raw, out = rendered[77]  # the passer-by is between the leads, clear of both
    heads = scene.heads(index)
    assert set(heads) == {*LEADS, PASSER_BY}
    a_raw, a_aged = region(raw, heads["lead-a"]), region(out.aged, heads["lead-a"])
    b_raw, b_aged = region(raw, heads["lead-b"]), region(out.aged, heads["lead-b"])
    # lead-a: the test pattern tints magenta (green down, red and blue kept)
    green_drop_a = (a_raw[..., 1] - a_aged[..., 1]).mean()
    assert green_drop_a > 20
    # lead-b: the astronaut swap redraws the face, but no magenta cast
    assert (b_raw - b_aged).abs().mean() > 5
    green_drop_b = (b_raw[..., 1] - b_aged[..., 1]).mean() - (b_raw[..., 0] - b_aged[..., 0]).mean()
    assert green_drop_b < 10
    # the passer-by: every pixel of their face is the plate's (the box's outer edge may meet
    # the soft border of lead-b's crop, a face-width away)
    p = heads[PASSER_BY]
    assert torch.equal(region(raw, p, 0.1), region(out.aged, p, 0.1))


def test_member_controls_bypass_one_lead_and_age_the_other(cast: Cast) -> None:
    built = build(cast.settings(), mode="render")
    try:
        look = built.fx.look
        members = tuple(replace(m, bypass=True) if m.name == "lead-a" else m for m in look.members)
        built.fx.look = replace(look, members=members)
        raw, out = next((raw, out) for index, raw, out in frames(built) if index == 20)
        heads = CastScene().heads(20)
        a = heads["lead-a"]
        assert torch.equal(region(raw, a, 0.0), region(out.aged, a, 0.0))  # bypassed: the plate
        b = heads["lead-b"]
        assert (region(raw, b) - region(out.aged, b)).abs().mean() > 5
    finally:
        built.close()


def test_live_recognition_runs_beside_the_frames_and_leaves_new_faces_alone(cast: Cast) -> None:
    built = build(cast.settings(), mode="live")  # the recogniser on its own thread
    router = built.fx.cast
    assert router is not None
    source = built.pipeline.source
    source.open()
    try:
        frame = source.read()
        assert frame is not None
        first = built.fx.process(frame)
        tags = [tag_of(f) for f in first.faces]
        assert tags and all(t is not None and t.state == Recognition.PENDING for t in tags)
        assert torch.equal(first.aged, frame.image)  # nobody is known yet: the plate
        router.wait_idle()
        frame = source.read()
        assert frame is not None
        second = built.fx.process(frame)
        members = sorted(str(t.member) for f in second.faces if (t := tag_of(f)) is not None)
        assert members == sorted(LEADS)
        assert not torch.equal(second.aged, frame.image)
        assert "recognise" in second.timings
    finally:
        source.close()
        built.close()
