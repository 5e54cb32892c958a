"""The per-face measures, on torch tensors (CPU): detail, seam, change inside a mask, flicker.

Pictures are HWC uint8 RGB frames; measures run on luma (BT.601 weights) in code values 0–255.
Regions given in crop space (a mask of an aligned crop) are carried into frame pixels by the
pipeline's own paste-back, so "the face region" and "the mask edge" are the pixels the aged
picture was actually built from.
"""

from __future__ import annotations

from functools import lru_cache

import torch
import torch.nn.functional as F

from agecast.compose.paste import footprint, paste_back

_LUMA = torch.tensor([0.299, 0.587, 0.114])
_LAPLACIAN = torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]])
_SOBEL_X = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]) / 8.0

Box = tuple[int, int, int, int]


def luma(image: torch.Tensor) -> torch.Tensor:
    """HxW float32 luma (0–255) of an HWC uint8 RGB picture."""
    return image.float() @ _LUMA.to(image.device)


def _filter(gray: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    x = F.pad(gray[None, None], (1, 1, 1, 1), mode="replicate")
    return F.conv2d(x, kernel.to(gray.device)[None, None])[0, 0]


def laplacian_variance(gray: torch.Tensor, mask: torch.Tensor) -> float:
    """Variance of the Laplacian of ``gray`` over bool ``mask``: high-frequency energy."""
    values = _filter(gray, _LAPLACIAN)[mask]
    return float(values.var()) if values.numel() > 1 else 0.0


def gradient_energy(gray: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean squared Sobel gradient magnitude of ``gray`` over ``mask``."""
    gx = _filter(gray, _SOBEL_X)
    gy = _filter(gray, _SOBEL_X.T.contiguous())
    values = (gx * gx + gy * gy)[mask]
    return float(values.mean()) if values.numel() else 0.0


def ratio(numerator: float, denominator: float) -> float | None:
    """``numerator / denominator``, or None when the denominator is (about) zero."""
    return numerator / denominator if denominator > 1e-9 else None


def in_frame(
    mask: torch.Tensor, affine: torch.Tensor, frame_hw: tuple[int, int]
) -> tuple[Box, torch.Tensor]:
    """A crop-space mask ((1,S,S) or (S,S), 0–1) carried into frame pixels through the inverse of
    frame → crop ``affine``, sampled exactly as paste-back samples the mask: the frame box it
    covers and the mask's values (float 0–1, hxw) there."""
    crop_mask = mask.reshape(1, mask.shape[-2], mask.shape[-1]).float().cpu()
    size = int(crop_mask.shape[-1])
    height, width = frame_hw
    a = affine.detach().to("cpu", torch.float32)
    x0, y0, x1, y1 = footprint(a, size, height, width)
    if x1 <= x0 or y1 <= y0:
        return (x0, y0, x0, y0), torch.zeros((0, 0))
    # paste into a canvas of just that box: shift the affine by the box's origin
    shifted = a.clone()
    shifted[:, 2] += a[:, :2] @ torch.tensor([float(x0), float(y0)])
    canvas = torch.zeros((y1 - y0, x1 - x0, 3), dtype=torch.uint8)
    paste_back(canvas, torch.ones((3, size, size)), crop_mask, shifted)
    return (x0, y0, x1, y1), canvas[..., 0].float() / 255.0


@lru_cache(maxsize=8)
def face_ellipse(size: int) -> torch.Tensor:
    """(S,S) 0/1: the face (brows to chin, cheek to cheek) in an ArcFace-template crop."""
    yy, xx = torch.meshgrid(
        (torch.arange(size, dtype=torch.float32) + 0.5) / size,
        (torch.arange(size, dtype=torch.float32) + 0.5) / size,
        indexing="ij",
    )
    r = (((xx - 0.5) / 0.40) ** 2 + ((yy - 0.56) / 0.44) ** 2).sqrt()
    return (r <= 1.0).float()


def box_of(image: torch.Tensor, box: Box) -> torch.Tensor:
    x0, y0, x1, y1 = box
    return image[y0:y1, x0:x1]


def abs_change(raw: torch.Tensor, aged: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per masked pixel, the largest absolute change over the three channels (code values)."""
    diff = (aged.short() - raw.short()).abs().amax(dim=-1)
    return diff[mask].float()


def mean_abs_difference(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    """Mean absolute difference (code values 0–255) of two (3,S,S) 0–1 crops over (S,S) ``mask``."""
    diff = (a - b).abs().mean(0) * 255.0
    values = diff[mask]
    return float(values.mean()) if values.numel() else 0.0
