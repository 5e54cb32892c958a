"""Colour transfer: make the model's face take the plate's light and grade.

RCT (Reinhard colour transfer) matches the mean and spread of each CIE Lab channel of the
model output to the original crop, inside the face mask. Plain torch, any device.
"""

from __future__ import annotations

import torch

_RGB_TO_XYZ = torch.tensor(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE = torch.tensor([0.950456, 1.0, 1.088754])
_EPS = 0.008856


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """(…,3,H,W) sRGB 0–1 → Lab (L 0–100)."""
    linear = torch.where(rgb > 0.04045, ((rgb + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    m = _RGB_TO_XYZ.to(rgb.device, rgb.dtype)
    xyz = torch.einsum("ij,...jhw->...ihw", m, linear)
    xyz = xyz / _WHITE.to(rgb.device, rgb.dtype).view(3, 1, 1)
    f = torch.where(xyz > _EPS, xyz.clamp_min(1e-12) ** (1 / 3), 7.787 * xyz + 16 / 116)
    lightness = 116 * f[..., 1:2, :, :] - 16
    a = 500 * (f[..., 0:1, :, :] - f[..., 1:2, :, :])
    b = 200 * (f[..., 1:2, :, :] - f[..., 2:3, :, :])
    return torch.cat([lightness, a, b], dim=-3)


def lab_to_rgb(lab: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`rgb_to_lab`, clamped to 0–1."""
    fy = (lab[..., 0:1, :, :] + 16) / 116
    fx = fy + lab[..., 1:2, :, :] / 500
    fz = fy - lab[..., 2:3, :, :] / 200
    f = torch.cat([fx, fy, fz], dim=-3)
    xyz = torch.where(f > _EPS ** (1 / 3), f**3, (f - 16 / 116) / 7.787)
    xyz = xyz * _WHITE.to(lab.device, lab.dtype).view(3, 1, 1)
    m_inv = torch.linalg.inv(_RGB_TO_XYZ.double()).to(lab.device, lab.dtype)
    linear = torch.einsum("ij,...jhw->...ihw", m_inv, xyz).clamp(0, 1)
    return torch.where(
        linear > 0.0031308, 1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055, 12.92 * linear
    ).clamp(0, 1)


def rct(
    source: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """Recolour ``source`` (N,3,H,W, 0–1) to the Lab statistics of ``target`` within ``mask``.

    ``mask`` (N,1,H,W) weights which pixels count (the face, not the background).
    """
    src, tgt = rgb_to_lab(source), rgb_to_lab(target)
    w = torch.ones_like(src[:, :1]) if mask is None else mask
    total = w.sum(dim=(-2, -1), keepdim=True).clamp_min(1e-6)

    def stats(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = (x * w).sum(dim=(-2, -1), keepdim=True) / total
        var = ((x - mean) ** 2 * w).sum(dim=(-2, -1), keepdim=True) / total
        return mean, var.clamp_min(1e-6).sqrt()

    src_mean, src_std = stats(src)
    tgt_mean, tgt_std = stats(tgt)
    out = (src - src_mean) * (tgt_std / src_std) + tgt_mean
    return lab_to_rgb(out)
