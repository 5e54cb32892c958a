"""Regions of a face in crop space, from its five landmarks: where local age offsets apply and
what paste-back must leave as the plate (the mouth interior).

Every region is a soft 0–1 map placed in the face's own frame (origin between the eyes, ``across``
from the left to the right eye, ``down`` towards the mouth, eye distance ``d`` as the unit), so it
follows the face's position, scale and roll in the crop. The maps are smooth by construction: an
operator's "keep the eyes younger" fades in over a few pixels rather than drawing a ring.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

# Local age controls, in this order everywhere (Look, control API, presets, sidecar, model input).
from agecast.age_offsets import REGIONS

__all__ = ["REGIONS", "mouth_interior", "region_maps", "target_age_map"]


def _face_frame(
    landmarks5: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(origin, across, down, d, mouth centre) of landmarks (5,2) in pixels."""
    lm = landmarks5.float()
    left, right = lm[0], lm[1]
    across = right - left
    d = torch.linalg.vector_norm(across).clamp(min=1.0)
    across = across / d
    down = torch.stack([-across[1], across[0]])
    origin = (left + right) / 2
    mouth = (lm[3] + lm[4]) / 2
    if float(torch.dot(mouth - origin, down)) < 0:
        down = -down
    return origin, across, down, d, mouth


def _grid(size: int, device: torch.device) -> torch.Tensor:
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32, device=device),
        torch.arange(size, dtype=torch.float32, device=device),
        indexing="ij",
    )
    return torch.stack([xs, ys], -1)  # pixel centres at integers, as faces.align


def _ellipse(
    xy: torch.Tensor,
    centre: torch.Tensor,
    axes: tuple[torch.Tensor, torch.Tensor],
    across: torch.Tensor,
    down: torch.Tensor,
    soft: float,
) -> torch.Tensor:
    rel = xy - centre
    u = (rel * across).sum(-1) / axes[0]
    v = (rel * down).sum(-1) / axes[1]
    r = torch.sqrt(u * u + v * v)
    return ((1 - r) / soft).clamp(0, 1)


_WORK = 64  # the maps are smooth: drawn at this size, then scaled up


def region_maps(landmarks5: torch.Tensor, size: int) -> torch.Tensor:
    """(len(REGIONS), size, size) soft maps for a face whose landmarks (5,2) are in crop pixels.

    Drawn at 64 px and scaled up bilinearly (the maps are soft over several pixels, so this
    costs a fraction of a millisecond instead of several on every face of every frame)."""
    if size > _WORK:
        k = _WORK / size
        small = region_maps((landmarks5.float() + 0.5) * k - 0.5, _WORK)
        return F.interpolate(small[None], size=(size, size), mode="bilinear")[0]
    device = landmarks5.device
    origin, across, down, d, mouth = _face_frame(landmarks5.to(device))
    xy = _grid(size, device)
    forehead = _ellipse(xy, origin - 0.78 * d * down, (0.9 * d, 0.4 * d), across, down, 0.5)
    eyes = torch.maximum(
        _ellipse(xy, origin - 0.5 * d * across, (0.42 * d, 0.3 * d), across, down, 0.5),
        _ellipse(xy, origin + 0.5 * d * across, (0.42 * d, 0.3 * d), across, down, 0.5),
    )
    jaw = _ellipse(xy, mouth + 0.3 * d * down, (0.95 * d, 0.65 * d), across, down, 0.5)
    head = _ellipse(xy, origin - 0.2 * d * down, (1.9 * d, 1.95 * d), across, down, 0.15)
    skin = _ellipse(xy, origin + 0.42 * d * down, (1.0 * d, 1.3 * d), across, down, 0.15)
    hair = head * (1 - skin)
    return torch.stack([forehead, eyes, jaw, hair])


def mouth_interior(landmarks5: torch.Tensor, size: int) -> torch.Tensor:
    """(1, size, size): the opening between the lips, from the mouth corners, soft-edged.

    Five landmarks do not say how far the mouth is open, so this is the lips' inner region of a
    mouth at rest or talking (teeth and tongue live there); paste-back keeps it as the plate.
    """
    device = landmarks5.device
    lm = landmarks5.float().to(device)
    _, _, down, _, mouth = _face_frame(lm)
    corners = lm[4] - lm[3]
    width = torch.linalg.vector_norm(corners).clamp(min=1.0)
    along = corners / width
    xy = _grid(size, device)
    centre = mouth + 0.06 * width * down
    return _ellipse(xy, centre, (0.42 * width, 0.2 * width), along, down, 0.35)[None]


def target_age_map(
    target: torch.Tensor, offsets: torch.Tensor, regions: torch.Tensor
) -> torch.Tensor:
    """Per-pixel target age (N,1,S,S) in years: ``target`` (N,) plus each region's offset (N,R)
    weighted by its map (N,R,S,S); where regions overlap their offsets are averaged."""
    weights = regions
    total = weights.sum(1, keepdim=True)
    local = (weights * offsets[:, :, None, None]).sum(1, keepdim=True) / total.clamp(min=1.0)
    return target[:, None, None, None] + local
