"""Paste back: a replaced crop into the frame through the inverse affine, masked.

Only the crop's footprint in the frame is touched; every pixel outside it keeps its exact value.
Convention (shared with ``faces.align``): pixel centres sit at integer coordinates, and the affine
maps frame pixel centres to crop pixel centres.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F


def footprint(
    affine: torch.Tensor,
    size: int,
    height: int,
    width: int,
    box: tuple[int, int, int, int] | None = None,
) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the frame region the crop covers (or the crop pixels ``box``,
    (x0, y0, x1, y1) end-exclusive, of it), clipped; empty if none."""
    a = torch.cat([affine.double(), torch.tensor([[0.0, 0.0, 1.0]], dtype=torch.float64)])
    inv = torch.linalg.inv(a)[:2]
    bx0, by0, bx1, by1 = box if box is not None else (0, 0, size, size)
    corners = torch.tensor(
        [
            [bx0 - 0.5, by0 - 0.5, 1.0],
            [bx1 - 0.5, by0 - 0.5, 1.0],
            [bx0 - 0.5, by1 - 0.5, 1.0],
            [bx1 - 0.5, by1 - 0.5, 1.0],
        ],
        dtype=torch.float64,
    )
    pts = corners @ inv.T
    x0 = max(0, int(torch.floor(pts[:, 0].min())))
    y0 = max(0, int(torch.floor(pts[:, 1].min())))
    x1 = min(width, int(torch.ceil(pts[:, 0].max())) + 1)
    y1 = min(height, int(torch.ceil(pts[:, 1].max())) + 1)
    return x0, y0, max(x0, x1), max(y0, y1)


def _sample_into(
    frame: torch.Tensor,
    planes: torch.Tensor,
    affine: torch.Tensor,
    box: tuple[int, int, int, int] | None = None,
) -> tuple[tuple[int, int, int, int], torch.Tensor | None]:
    """``planes`` (C,S,S) in crop space resampled onto the frame pixels of the crop's footprint
    (of its pixels ``box`` only, when every plane is zero outside it): (region, (C,h,w)
    samples), or None where the crop misses the frame."""
    size = planes.shape[-1]
    height, width = frame.shape[0], frame.shape[1]
    x0, y0, x1, y1 = footprint(affine, size, height, width, box)
    if x1 <= x0 or y1 <= y0:
        return (x0, y0, x0, y0), None
    device = frame.device
    a = affine.to(device, torch.float32)
    ys = torch.arange(y0, y1, device=device, dtype=torch.float32)
    xs = torch.arange(x0, x1, device=device, dtype=torch.float32)
    # crop coordinates of every frame pixel centre in the region, then grid_sample's [-1, 1]
    u = a[0, 0] * xs[None, :] + a[0, 1] * ys[:, None] + a[0, 2]
    v = a[1, 0] * xs[None, :] + a[1, 1] * ys[:, None] + a[1, 2]
    grid = torch.stack([(2 * u + 1) / size - 1, (2 * v + 1) / size - 1], dim=-1)[None]
    sampled = F.grid_sample(
        planes.to(device, torch.float32)[None],
        grid,
        mode="bilinear",
        padding_mode="zeros",
        align_corners=False,
    )[0]
    return (x0, y0, x1, y1), sampled


Box = tuple[int, int, int, int]  # x0, y0, x1, y1 in frame pixels, end-exclusive
Combine = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (frame region, samples) → new


def paste_back(
    frame: torch.Tensor,
    crop: torch.Tensor,
    mask: torch.Tensor,
    affine: torch.Tensor,
    strength: float = 1.0,
) -> Box:
    """Blend ``crop`` (3,S,S, 0–1) into ``frame`` (H,W,3 uint8, in place) by ``mask`` (1,S,S).

    ``affine`` maps frame → crop. ``strength`` scales the mask (the operator's blend). Returns the
    region written.
    """
    if strength <= 0:
        return _untouched(frame, affine, crop.shape[-1])

    def blend(region: torch.Tensor, sampled: torch.Tensor) -> torch.Tensor:
        alpha = sampled[3:4] * strength
        return (region + (sampled[:3] * 255.0 - region) * alpha).add_(0.5)

    return _paste(frame, torch.cat([crop, mask]), affine, None, blend)


def paste_delta(
    frame: torch.Tensor,
    delta: torch.Tensor,
    mask: torch.Tensor,
    affine: torch.Tensor,
    strength: float = 1.0,
) -> Box:
    """Add ``delta`` (3,S,S, −1–1) × ``mask`` (1,S,S) × ``strength`` to ``frame`` (H,W,3 uint8,
    in place) through the inverse affine: the re-ageing paste-back.

    The frame's own pixels are never resampled, only changed by the (smooth) delta, so every
    detail of the plate survives; where the masked delta is zero the frame is bit-exact.
    """
    planes = delta * mask
    box = _nonzero_box(planes) if strength > 0 else None
    if box is None:  # nothing to add: the frame stays as it is
        return _untouched(frame, affine, delta.shape[-1])
    scale = 255.0 * strength

    def add(region: torch.Tensor, sampled: torch.Tensor) -> torch.Tensor:
        return (region + sampled * scale).add_(0.5).floor_()

    return _paste(frame, planes, affine, box, add)


def _paste(
    frame: torch.Tensor,
    planes: torch.Tensor,
    affine: torch.Tensor,
    box: Box | None,
    combine: Combine,
) -> Box:
    """Write ``combine(region, samples)`` (0–255 floats, C,h,w) over the crop's footprint in
    ``frame``, ``planes`` resampled there (:func:`_sample_into`); the region written."""
    (x0, y0, x1, y1), sampled = _sample_into(frame, planes, affine, box)
    if sampled is not None:
        region = frame[y0:y1, x0:x1].permute(2, 0, 1).float()
        out = combine(region, sampled).clamp_(0, 255).to(torch.uint8)
        frame[y0:y1, x0:x1] = out.permute(1, 2, 0)
    return x0, y0, x1, y1


def _untouched(frame: torch.Tensor, affine: torch.Tensor, size: int) -> Box:
    """The empty region at the crop's footprint: nothing was written."""
    x0, y0, _, _ = footprint(affine, size, frame.shape[0], frame.shape[1])
    return x0, y0, x0, y0


def _nonzero_box(planes: torch.Tensor) -> tuple[int, int, int, int] | None:
    """The crop pixels (x0, y0, x1, y1), end-exclusive, holding every non-zero value of
    ``planes`` (C,S,S), grown by one pixel (bilinear sampling reaches that far); None if all
    zero. Pasting only there writes exactly what pasting the whole crop would: the rest adds 0."""
    live = planes.abs().amax(0) > 0
    rows = torch.nonzero(live.any(1)).flatten()
    if rows.numel() == 0:
        return None
    cols = torch.nonzero(live.any(0)).flatten()
    size = planes.shape[-1]
    y0, y1 = max(0, int(rows[0]) - 1), min(size, int(rows[-1]) + 2)
    x0, x1 = max(0, int(cols[0]) - 1), min(size, int(cols[-1]) + 2)
    return x0, y0, x1, y1
