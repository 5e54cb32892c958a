"""Convex-hull face masks from landmarks, in crop space.

``hull_mask`` turns landmarks (e.g. the 106 points of ``2d106det`` mapped into the crop) into a
binary S×S mask: 1 where a pixel centre lies inside (or on) the convex hull of the points, else
0. Pixel centres are at integer coordinates, as everywhere in agecast. Feather it with
:func:`agecast.compose.mask.feather` before pasting.

Orientation: hulls run counter-clockwise in (x, y) coordinates, i.e. their shoelace area is
positive; on screen, where y points down, that is clockwise.
"""

from __future__ import annotations

import torch

# a pixel centre this close (in pixels) outside an edge counts as on it: the row intervals go
# through float32, so centres exactly on an edge stay inside
_EDGE_TOLERANCE = 1e-3


def _chain(ordered: list[tuple[float, float]]) -> list[tuple[float, float]]:
    """One monotone chain over sorted points: keeps only counter-clockwise (left) turns."""
    chain: list[tuple[float, float]] = []
    for px, py in ordered:
        while len(chain) >= 2:
            (ox, oy), (ax, ay) = chain[-2], chain[-1]
            # z of (a - o) × (p - o): positive when o → a → p turns counter-clockwise
            if (ax - ox) * (py - oy) - (ay - oy) * (px - ox) > 0:
                break
            chain.pop()
        chain.append((px, py))
    return chain


def convex_hull(points: torch.Tensor) -> torch.Tensor:
    """Vertices (M×2) of the convex hull of N×2 ``points``, counter-clockwise, starting at the
    smallest (x, y); collinear points on an edge are dropped.

    Andrew's monotone chain, O(N log N) on the CPU. Fewer than three distinct points (or all on
    one line) give the distinct extreme points (M ≤ 2). The result has ``points``' device and
    dtype (float32 for integer input).
    """
    if points.ndim != 2 or int(points.shape[1]) != 2:
        raise ValueError(f"points must be N×2, got shape {tuple(points.shape)}")
    dtype = points.dtype if points.is_floating_point() else torch.float32
    values = points.detach().to("cpu", torch.float64)
    if not bool(torch.isfinite(values).all()):
        raise ValueError("points must be finite (a landmark is NaN or infinite)")
    ordered: list[tuple[float, float]] = sorted({(float(x), float(y)) for x, y in values.tolist()})
    # lower chain then upper chain, each without its last point (the other's first)
    hull = ordered if len(ordered) <= 2 else _chain(ordered)[:-1] + _chain(ordered[::-1])[:-1]
    out = torch.tensor(hull, dtype=torch.float64).reshape(-1, 2)
    return out.to(device=points.device, dtype=dtype)


def polygon_centroid(vertices: torch.Tensor) -> torch.Tensor:
    """Area centroid (2,) of a simple polygon (M×2, M ≥ 3, either orientation), float64 CPU.

    Falls back to the mean of the vertices for a polygon of (near) zero area.
    """
    v = vertices.detach().to("cpu", torch.float64)
    nxt = torch.roll(v, -1, dims=0)
    cross = v[:, 0] * nxt[:, 1] - nxt[:, 0] * v[:, 1]
    area2 = cross.sum()
    if abs(float(area2)) < 1e-12:
        return v.mean(0)
    return ((v + nxt) * cross[:, None]).sum(0) / (3.0 * area2)


def hull_mask(points_crop: torch.Tensor, size: int, *, grow: float = 0.0) -> torch.Tensor:
    """1×1×S×S float32 mask, 1 where the pixel centre lies in the convex hull of ``points_crop``
    (N×2, crop pixels), 0 elsewhere; on ``points_crop``'s device.

    ``grow`` scales the hull about its area centroid by ``1 + grow`` (0.05: 5 % larger across,
    ≈ 10 % more area; negative shrinks), e.g. so a landmark hull reaches above the brows. Fewer
    than three non-collinear points give an all-zero mask.

    Every hull edge is a half-plane test ``cross(b - a, p - a) ≥ 0``; for a convex polygon the
    tests of one row of pixel centres reduce to one interval ``lo ≤ x ≤ hi``, so the cost is
    O(M·S) for the bounds plus one S×S comparison (no Python loop over pixels).
    """
    if size <= 0:
        raise ValueError(f"mask size must be positive, got {size}")
    if not grow > -1.0:
        raise ValueError(f"grow must be > -1 (a scale of 1 + grow), got {grow}")
    device = points_crop.device
    hull = convex_hull(points_crop.detach().to("cpu", torch.float64))
    if hull.shape[0] < 3:
        return torch.zeros((1, 1, size, size), dtype=torch.float32, device=device)
    if grow != 0.0:
        centre = polygon_centroid(hull)
        hull = centre + (hull - centre) * (1.0 + grow)
    ax, ay = hull[:, 0:1], hull[:, 1:2]
    d = torch.roll(hull, -1, dims=0) - hull  # edge a → a + d, interior on its left
    dx, dy = d[:, 0:1], d[:, 1:2] + 0.0  # + 0.0 turns -0.0 into +0.0
    rows = torch.arange(size, dtype=torch.float64)[None, :]
    # cross(d, p - a) ≥ -tol·|d|  ⇔  d_y · x ≤ r(y), one row of r per edge (M×S)
    r = dx * (rows - ay) + dy * ax + _EDGE_TOLERANCE * d.norm(dim=1, keepdim=True)
    # x ≤ r / d_y for edges going up (d_y > 0), x ≥ r / d_y going down; a horizontal edge
    # (d_y = +0) bounds x by +inf (row on its inner side) or -inf (outside: an empty row)
    bound = r / dy
    up = dy >= 0
    hi = torch.where(up, bound, float("inf")).amin(0)
    lo = torch.where(up, float("-inf"), bound).amax(0)
    # lo ≤ x ≤ hi as |x - mid| ≤ half, all in float (bool tensors cost ~4× more on the CPU); a
    # row above or below the hull has half < 0
    span = torch.stack([(lo + hi) / 2, (hi - lo) / 2]).nan_to_num_(nan=-1.0, neginf=-1.0)
    span = span.float().to(device)
    cols = torch.arange(size, dtype=torch.float32, device=device)
    mask = torch.sub(cols[None, :], span[0][:, None]).abs_().sub_(span[1][:, None]).le_(0)
    return mask[None, None]
