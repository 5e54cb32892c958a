"""Convex hulls and hull masks: areas, inside/outside, containment, growing."""

from __future__ import annotations

import math

import pytest
import torch

from agecast.compose.hull import convex_hull, hull_mask, polygon_centroid

SIZE = 256


def shoelace(vertices: torch.Tensor) -> float:
    v = vertices.double()
    nxt = torch.roll(v, -1, dims=0)
    return float((v[:, 0] * nxt[:, 1] - nxt[:, 0] * v[:, 1]).sum()) / 2


def face_like(seed: int = 0) -> torch.Tensor:
    """106 points shaped like a face in a 256 crop: a 33-point jaw arc and points inside."""
    t = torch.linspace(math.pi * 0.05, math.pi * 0.95, 33)
    jaw = torch.stack([128 - 80 * torch.cos(t), 110 + 100 * torch.sin(t)], 1)
    g = torch.Generator().manual_seed(seed)
    inner = torch.rand(73, 2, generator=g) * torch.tensor([120.0, 100.0]) + torch.tensor([68, 60])
    return torch.cat([jaw, inner])


def test_hull_of_a_square_with_inner_points() -> None:
    points = torch.tensor(
        [[20.0, 20.0], [220.0, 20.0], [220.0, 220.0], [20.0, 220.0], [100.0, 50.0], [120.0, 20.0]]
    )
    hull = convex_hull(points)
    # counter-clockwise in (x, y) from the smallest point; the inner and edge points dropped
    assert hull.tolist() == [[20.0, 20.0], [220.0, 20.0], [220.0, 220.0], [20.0, 220.0]]
    assert shoelace(hull) == pytest.approx(200.0 * 200.0)


def test_degenerate_hulls() -> None:
    assert convex_hull(torch.tensor([[3.0, 4.0], [3.0, 4.0]])).tolist() == [[3.0, 4.0]]
    line = torch.tensor([[0.0, 0.0], [2.0, 2.0], [1.0, 1.0], [3.0, 3.0]])
    assert convex_hull(line).tolist() == [[0.0, 0.0], [3.0, 3.0]]
    assert float(hull_mask(line * 30, SIZE).sum()) == 0.0
    with pytest.raises(ValueError, match="N×2"):
        convex_hull(torch.zeros(5, 3))
    with pytest.raises(ValueError, match="finite"):
        convex_hull(torch.tensor([[0.0, float("nan")], [1.0, 1.0], [0.0, 1.0]]))


def test_square_mask_area_and_inside_outside() -> None:
    square = torch.tensor([[40.0, 60.0], [200.0, 60.0], [200.0, 220.0], [40.0, 220.0]])
    mask = hull_mask(square, SIZE)
    assert mask.shape == (1, 1, SIZE, SIZE) and mask.dtype == torch.float32
    assert set(mask.unique().tolist()) <= {0.0, 1.0}
    area = float(mask.sum())
    assert area == pytest.approx(160.0 * 160.0, rel=0.03)  # 161² pixel centres incl. the edges
    m = mask[0, 0]  # indexed [y, x]
    assert m[60, 40] == 1 and m[220, 200] == 1 and m[140, 120] == 1  # corners, centre
    assert m[59, 100] == 0 and m[221, 100] == 0 and m[140, 39] == 0 and m[140, 201] == 0
    assert m[0, 0] == 0 and m[255, 255] == 0
    # half-pixel corners: exactly the 200 × 200 centres inside
    offset = hull_mask(
        torch.tensor([[20.5, 20.5], [220.5, 20.5], [220.5, 220.5], [20.5, 220.5]]), SIZE
    )
    assert float(offset.sum()) == 200.0 * 200.0


def test_triangle_mask_area_matches_geometry() -> None:
    triangle = torch.tensor([[10.0, 10.0], [200.0, 30.0], [60.0, 220.0]])
    expected = abs(shoelace(triangle))
    assert float(hull_mask(triangle, SIZE).sum()) == pytest.approx(expected, rel=0.02)
    # a hull partly outside the crop is clipped to it
    big = torch.tensor([[-100.0, -100.0], [400.0, -100.0], [400.0, 400.0], [-100.0, 400.0]])
    assert float(hull_mask(big, SIZE).sum()) == SIZE * SIZE


def test_hull_of_random_points_contains_them_all() -> None:
    g = torch.Generator().manual_seed(7)
    points = torch.randint(20, 236, (200, 2), generator=g).float()
    hull = convex_hull(points)
    assert shoelace(hull) > 0  # counter-clockwise
    a, d = hull, torch.roll(hull, -1, dims=0) - hull
    rel = points[:, None, :] - a[None]  # N×M×2
    cross = d[None, :, 0] * rel[..., 1] - d[None, :, 1] * rel[..., 0]
    assert bool((cross >= -1e-6).all())
    # every vertex is one of the points
    assert all(bool((points == v).all(1).any()) for v in hull)
    mask = hull_mask(points, SIZE)[0, 0]
    xs, ys = points[:, 0].long(), points[:, 1].long()
    assert bool((mask[ys, xs] == 1).all())  # integer points: their pixels are inside
    assert float(mask.sum()) == pytest.approx(shoelace(hull), rel=0.03)


def test_grow_scales_about_the_centroid() -> None:
    points = face_like()
    base = hull_mask(points, SIZE)
    grown = hull_mask(points, SIZE, grow=0.05)
    assert bool((grown >= base).all())  # grows outward everywhere (centroid inside the hull)
    ratio = float(grown.sum()) / float(base.sum())
    assert ratio == pytest.approx(1.05**2, rel=0.02)
    shrunk = hull_mask(points, SIZE, grow=-0.2)
    assert float(shrunk.sum()) / float(base.sum()) == pytest.approx(0.8**2, rel=0.03)
    assert bool((shrunk <= base).all())
    # the grown hull reaches higher (forehead side: smaller y)
    top = int(base[0, 0].amax(1).nonzero().min())
    assert int(grown[0, 0].amax(1).nonzero().min()) < top
    with pytest.raises(ValueError, match="grow"):
        hull_mask(points, SIZE, grow=-1.0)


def test_centroid_of_a_square() -> None:
    square = torch.tensor([[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0]])
    assert polygon_centroid(square).tolist() == [2.0, 1.0]
    assert polygon_centroid(square.flip(0)).tolist() == [2.0, 1.0]


def test_mask_follows_the_points_device_and_dtype() -> None:
    points = face_like().double()
    mask = hull_mask(points, 64)
    assert mask.dtype == torch.float32 and mask.device == points.device
    assert convex_hull(points).dtype == torch.float64
    assert convex_hull(torch.tensor([[0, 0], [5, 0], [0, 5]])).dtype == torch.float32
