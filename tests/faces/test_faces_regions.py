"""Face regions in crop space: local-age regions sit where their names say, the mouth interior
sits between the mouth corners, offsets parse from what a person types."""

from __future__ import annotations

import pytest
import torch

from agecast.age_offsets import parse_offsets
from agecast.faces.align import template_points
from agecast.faces.regions import (
    REGIONS,
    mouth_interior,
    region_maps,
    target_age_map,
)

SIZE = 256


def _at(maps: torch.Tensor, point: torch.Tensor) -> torch.Tensor:
    x, y = (round(float(v)) for v in point)
    return maps[..., y, x]


def test_regions_sit_on_their_features() -> None:
    lm = template_points("ffhq", SIZE)
    maps = region_maps(lm, SIZE)
    assert maps.shape == (len(REGIONS), SIZE, SIZE)
    assert float(maps.min()) >= 0 and float(maps.max()) <= 1
    eyes, mouth = (lm[0] + lm[1]) / 2, (lm[3] + lm[4]) / 2
    d = float(lm[1, 0] - lm[0, 0])
    named = dict(zip(REGIONS, range(len(REGIONS)), strict=True))
    assert float(_at(maps[named["eyes"]], lm[0])) == 1.0
    assert float(_at(maps[named["forehead"]], eyes - torch.tensor([0.0, 0.8 * d]))) > 0.9
    assert float(_at(maps[named["mouth"]], mouth + torch.tensor([0.0, 0.3 * d]))) == 1.0
    assert float(_at(maps[named["hair"]], eyes - torch.tensor([0.0, 1.6 * d]))) > 0.5
    # the hair region leaves the eyes and the mouth alone
    hair = maps[named["hair"]]
    assert float(_at(hair, lm[0])) == 0 and float(_at(hair, mouth)) == 0
    # the eyes region does not reach the mouth
    assert float(_at(maps[named["eyes"]], mouth)) == 0


def test_regions_follow_the_face() -> None:
    lm = template_points("ffhq", SIZE)
    # (the maps are drawn at a quarter size: a move by whole quarter-pixels is exact)
    moved = region_maps(lm + torch.tensor([8.0, 4.0]), SIZE)
    still = region_maps(lm, SIZE)
    assert torch.allclose(moved[:, 104:200, 108:200], still[:, 100:196, 100:192], atol=1e-5)
    odd = region_maps(lm + torch.tensor([10.0, 6.0]), SIZE)
    assert torch.allclose(odd[:, 106:200, 110:200], still[:, 100:194, 100:190], atol=0.1)


def test_mouth_interior_is_between_the_corners_only() -> None:
    lm = template_points("ffhq", SIZE)
    mouth = mouth_interior(lm, SIZE)[0]
    centre = (lm[3] + lm[4]) / 2
    assert float(_at(mouth, centre)) == 1.0
    assert float(_at(mouth, lm[3] - torch.tensor([4.0, 0.0]))) == 0  # beyond the corner
    assert float(_at(mouth, lm[2])) == 0  # the nose
    assert float(_at(mouth, lm[0])) == 0


def test_target_age_map_adds_offsets_where_their_region_is() -> None:
    regions = torch.zeros(1, len(REGIONS), 4, 4)
    regions[0, 1, 0, 0] = 1.0  # eyes at pixel (0,0)
    regions[0, 1, 1, 1] = 0.5
    regions[0, 3, 1, 1] = 1.0  # hair too: overlap is averaged
    offsets = torch.tensor([[0.0, -10.0, 0.0, 6.0]])
    out = target_age_map(torch.tensor([50.0]), offsets, regions)[0, 0]
    assert float(out[0, 0]) == 40 and float(out[3, 3]) == 50
    assert float(out[1, 1]) == pytest.approx(50 + (-5 + 6) / 1.5)


def test_offsets_parse_from_text_mappings_and_lists() -> None:
    assert parse_offsets("eyes:-10, hair:5") == (0.0, -10.0, 0.0, 5.0)
    assert parse_offsets('{"forehead": 3}') == (3.0, 0.0, 0.0, 0.0)
    assert parse_offsets([1, 2, 3, 4]) == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(ValueError, match="unknown region.*nose.*forehead, eyes, mouth, hair"):
        parse_offsets("nose:4")
    with pytest.raises(ValueError, match="region:years"):
        parse_offsets("eyes")
