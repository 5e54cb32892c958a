"""Alignment: templates, the frame → crop affine, and warping a crop out of a frame.

Pixel convention, everywhere in agecast: pixel ``i`` has its centre at coordinate ``i`` and
covers ``[i - 0.5, i + 0.5)`` (OpenCV's ``warpAffine`` convention). Landmarks and templates are
in that convention; ``warp_crop`` samples with ``align_corners=False`` arithmetic so crop pixel
``(u, v)`` shows exactly the frame point ``invert_affine(affine) · (u, v, 1)``.

An affine is a 2×3 float32 matrix mapping frame pixels to crop pixels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F

from agecast.manifest import TEMPLATE_NAMES

# The standard 5-point ArcFace template for a 112×112 crop (insightface ``arcface_dst``), in
# crop pixels: left eye, right eye, nose, left mouth corner, right mouth corner.
_ARCFACE_112_PX = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


def _normalised(points_px: tuple[tuple[float, float], ...], size: float) -> torch.Tensor:
    return torch.tensor(points_px, dtype=torch.float64) / size


def _about_centre(points: torch.Tensor, scale: float, shift: tuple[float, float]) -> torch.Tensor:
    """Scale normalised points about the crop centre, then shift them (fractions of the crop)."""
    return (points - 0.5) * scale + 0.5 + torch.tensor(shift, dtype=torch.float64)


_ARCFACE = _normalised(_ARCFACE_112_PX, 112.0)

# DeepFaceLab's mean face (its 68-point layout in a unit square, brows at the top edge, mouth
# corners at 0.78) reduced to our five points: eye centres (mean of each eye's six points), nose
# tip, mouth corners.
_DFL_MEAN_FACE5 = torch.tensor(
    [
        (0.225492, 0.215990),
        (0.754761, 0.215990),
        (0.490127, 0.515625),
        (0.254149, 0.780233),
        (0.726104, 0.780233),
    ],
    dtype=torch.float64,
)


def _dfl_face_type(padding: float, lift: float) -> torch.Tensor:
    """Five points of a DeepFaceLab face type: its crop is a square of side ``1 + 2√2·padding``
    mean-face units around the mean face's centre, raised by ``lift`` units (more forehead).

    DeepFaceLab fits 33 of its 68 landmarks to the mean face; fitting our five to these points
    gives the same crop for a typical face, near enough for its models (yaw-dependent shifts
    of its head type are left out).
    """
    side = 1.0 + 2.0 * math.sqrt(2.0) * padding
    corner = torch.tensor((0.5, 0.5 - lift), dtype=torch.float64) - side / 2
    return (_DFL_MEAN_FACE5 - corner) / side


# Declarative table: name → 5×2 landmark positions as fractions (0–1) of the crop.
TEMPLATES: dict[str, torch.Tensor] = {
    name: points.float()
    for name, points in {
        # tight: brows to chin, the recognition (ArcFace) crop
        "arcface_112": _ARCFACE,
        # insightface's 128-pixel variant (inswapper_128): the 112 template moved 8 px right
        "arcface_128": _normalised(tuple((x + 8.0, y) for x, y in _ARCFACE_112_PX), 128.0),
        # loose: the whole face with forehead, chin and some hair, for face-swap models. The
        # ArcFace layout at 0.75 scale puts the eyes ≈ 0.24 of the crop apart, as in FFHQ
        # alignment; moved up 1 % so the chin has room.
        "ffhq": _about_centre(_ARCFACE, 0.75, (0.0, -0.01)),
        # DeepFaceLab / DeepFaceLive face types (DFM models): full_face (padding 0.2109375),
        # whole_face (0.40, raised 7 % for the forehead; DeepFaceLab's default), head (0.70,
        # raised 50 %)
        "dfl_full_face": _dfl_face_type(0.2109375, 0.0),
        "dfl_whole_face": _dfl_face_type(0.40, 0.07),
        "dfl_head": _dfl_face_type(0.70, 0.5),
    }.items()
}

if tuple(TEMPLATES) != TEMPLATE_NAMES:  # the torch-free list manifests are checked against
    raise ImportError(
        f"manifest.TEMPLATE_NAMES lists {TEMPLATE_NAMES}, align has {tuple(TEMPLATES)}"
    )


def template_points(
    template: str | torch.Tensor | Sequence[Sequence[float]], crop_size: int
) -> torch.Tensor:
    """A template's 5×2 landmark positions in pixels of a ``crop_size`` crop.

    ``template`` is a name from :data:`TEMPLATES` or five points as fractions of the crop.
    """
    if isinstance(template, str):
        if template not in TEMPLATES:
            raise KeyError(f"unknown alignment template {template!r}; one of {sorted(TEMPLATES)}")
        points = TEMPLATES[template]
    else:
        points = torch.as_tensor(template, dtype=torch.float32)
        if tuple(points.shape) != (5, 2):
            raise ValueError(f"a template is 5×2 points, got shape {tuple(points.shape)}")
    return points.float().cpu() * float(crop_size)


def estimate_affine(landmarks5: torch.Tensor, template_px: torch.Tensor) -> torch.Tensor:
    """Least-squares similarity (rotation, uniform scale, translation; no reflection) that maps
    ``landmarks5`` (frame pixels) onto ``template_px`` (crop pixels), as a 2×3 float32 matrix.

    Umeyama's method, solved in float64 on the CPU (five points: cheaper than a device trip).
    """
    src = landmarks5.detach().to("cpu", torch.float64).reshape(-1, 2)
    dst = template_px.detach().to("cpu", torch.float64).reshape(-1, 2)
    if src.shape != dst.shape or src.shape[0] < 2:
        raise ValueError(f"need matching point sets (≥2), got {src.shape} and {dst.shape}")
    mean_src, mean_dst = src.mean(0), dst.mean(0)
    src_c, dst_c = src - mean_src, dst - mean_dst
    var_src = (src_c**2).sum(1).mean()
    if float(var_src) < 1e-12:
        raise ValueError("landmarks are all at one point; cannot fit an alignment")
    cov = dst_c.T @ src_c / src.shape[0]
    u, s, vt = torch.linalg.svd(cov)
    sign = torch.ones(2, dtype=torch.float64)
    if float(torch.linalg.det(u) * torch.linalg.det(vt)) < 0:
        sign[1] = -1.0  # the best rotation would be a reflection: take the nearest rotation
    rotation = u @ torch.diag(sign) @ vt
    scale = (s * sign).sum() / var_src
    translation = mean_dst - scale * rotation @ mean_src
    return torch.cat([scale * rotation, translation[:, None]], dim=1).float()


def invert_affine(m: torch.Tensor) -> torch.Tensor:
    """The inverse 2×3 affine (crop → frame for a frame → crop matrix)."""
    m64 = m.detach().to(torch.float64)
    linear_inv = torch.linalg.inv(m64[:, :2])
    return torch.cat([linear_inv, -(linear_inv @ m64[:, 2:])], dim=1).to(m.dtype)


def transform_points(m: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Apply 2×3 affine ``m`` to points of shape (..., 2)."""
    m = m.to(device=points.device, dtype=points.dtype)
    return points @ m[:, :2].T + m[:, 2]


def crop_region_in_frame(
    affine: torch.Tensor, crop_size: int, frame_hw: tuple[int, int], *, margin: int = 1
) -> tuple[int, int, int, int]:
    """Integer frame box ``(x0, y0, x1, y1)`` (end exclusive, clipped) that the crop covers.

    It holds every frame pixel a ``crop_size`` crop through ``affine`` reads (bilinear: one
    pixel of ``margin``), so paste-back and sampling can touch just that box. An empty box
    (x1 <= x0 or y1 <= y0) means the crop lies outside the frame.
    """
    height, width = frame_hw
    edge = crop_size - 0.5
    corners = torch.tensor(
        [[-0.5, -0.5], [edge, -0.5], [-0.5, edge], [edge, edge]], dtype=torch.float64
    )
    frame_corners = transform_points(invert_affine(affine.to(torch.float64).cpu()), corners)
    low = frame_corners.min(0).values
    high = frame_corners.max(0).values
    x0 = max(0, math.floor(float(low[0])) - margin)
    y0 = max(0, math.floor(float(low[1])) - margin)
    x1 = min(width, math.ceil(float(high[0])) + margin + 1)
    y1 = min(height, math.ceil(float(high[1])) + margin + 1)
    return x0, y0, x1, y1


def _theta(
    crop_to_frame: torch.Tensor,
    crop_size: int,
    origin: tuple[float, float],
    step: int,
    region_hw: tuple[int, int],
) -> torch.Tensor:
    """``affine_grid`` matrix: normalised crop coords → normalised region coords.

    Chain (all ``align_corners=False``): crop normalised → crop pixels → frame pixels →
    region pixels (origin at ``origin``, pooled by ``step``) → region normalised.
    """
    s = float(crop_size)
    from_norm = torch.tensor(
        [[s / 2, 0, (s - 1) / 2], [0, s / 2, (s - 1) / 2], [0, 0, 1]], dtype=torch.float64
    )
    to_frame = torch.eye(3, dtype=torch.float64)
    to_frame[:2] = crop_to_frame
    # pooled pixel j averages region pixels j*step … j*step+step-1: its centre is at
    # j*step + (step-1)/2
    half = (step - 1) / 2
    to_region = torch.tensor(
        [
            [1 / step, 0, -(origin[0] + half) / step],
            [0, 1 / step, -(origin[1] + half) / step],
            [0, 0, 1],
        ],
        dtype=torch.float64,
    )
    height, width = region_hw
    to_norm = torch.tensor(
        [[2 / width, 0, 1 / width - 1], [0, 2 / height, 1 / height - 1], [0, 0, 1]],
        dtype=torch.float64,
    )
    return (to_norm @ to_region @ to_frame @ from_norm)[:2]


def warp_crop(
    image: torch.Tensor, affine: torch.Tensor, crop_size: int, *, antialias: bool = True
) -> torch.Tensor:
    """Aligned crop (3×S×S float32, 0–1) of HWC uint8 ``image`` through frame → crop ``affine``.

    Runs on the image's device. Only the frame box the crop covers is converted to float, so
    the cost is about O(S²) plus that box. Bilinear sampling; outside the frame reads as zero.
    With ``antialias``, a crop that shrinks the frame 2× or more first averages the box down
    by that integer factor, so fine detail does not alias.
    """
    height, width = int(image.shape[0]), int(image.shape[1])
    crop_to_frame = invert_affine(affine.detach().to("cpu", torch.float64))
    step = 1
    if antialias:
        frame_px_per_crop_px = math.sqrt(abs(float(torch.linalg.det(crop_to_frame[:, :2]))))
        step = max(1, math.floor(frame_px_per_crop_px))
    # one pooled pixel of margin keeps every bilinear neighbour inside the box
    x0, y0, x1, y1 = crop_region_in_frame(affine, crop_size, (height, width), margin=step + 1)
    if x1 <= x0 or y1 <= y0:
        return torch.zeros((3, crop_size, crop_size), dtype=torch.float32, device=image.device)
    region = image[y0:y1, x0:x1].permute(2, 0, 1).unsqueeze(0).float()
    if step > 1:
        region = F.avg_pool2d(region, kernel_size=step, stride=step, ceil_mode=True)
    region_hw = (int(region.shape[2]), int(region.shape[3]))
    theta = _theta(crop_to_frame, crop_size, (float(x0), float(y0)), step, region_hw)
    grid = F.affine_grid(
        theta.float().unsqueeze(0).to(image.device),
        [1, 3, crop_size, crop_size],
        align_corners=False,
    )
    crop = F.grid_sample(region, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return crop[0] / 255.0
