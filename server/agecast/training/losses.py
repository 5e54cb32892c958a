"""Losses that keep identity and detail: structural dissimilarity, L1 and the mask's error."""

from __future__ import annotations

import torch
from torch.nn import functional as F


def _gaussian(size: int, sigma: float, channels: int, device: torch.device) -> torch.Tensor:
    """(channels,1,1,size) 1-D Gaussian: blurring is two passes of it (rows, then columns)."""
    x = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return (g / g.sum()).reshape(1, 1, 1, size).expand(channels, 1, 1, size).contiguous()


def dssim(a: torch.Tensor, b: torch.Tensor, window: int = 11, sigma: float = 1.5) -> torch.Tensor:
    """Per-pixel (1 - SSIM) / 2 of two (N,C,H,W) 0–1 images, shape (N,C,H,W) (valid region)."""
    c = a.shape[1]
    w = _gaussian(window, sigma, c, a.device)

    def blur(x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(x, w, groups=c), w.transpose(2, 3), groups=c)

    mu_a, mu_b = blur(a), blur(b)
    var_a = blur(a * a) - mu_a**2
    var_b = blur(b * b) - mu_b**2
    cov = blur(a * b) - mu_a * mu_b
    c1, c2 = 0.01**2, 0.03**2
    ssim = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / (
        (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    )
    return (1 - ssim) / 2


def face_loss(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, window: int = 11
) -> dict[str, torch.Tensor]:
    """DSSIM and L1 inside the (slightly dilated) target mask: what the paste-back will show."""
    region = F.max_pool2d(mask, 5, stride=1, padding=2)
    p, t = pred * region, target * region
    half = window // 2
    d = dssim(p, t, window).mean()
    l1 = ((pred - target).abs() * region).sum() / (region.sum() * 3 + 1e-6)
    # the finer scale alone misses broad tone (hair colour): add DSSIM at half size
    d2 = (
        dssim(F.avg_pool2d(p, 2), F.avg_pool2d(t, 2), window).mean()
        if p.shape[-1] >= 4 * half
        else d
    )
    return {"dssim": (d + d2) / 2, "l1": l1}


def mask_loss(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.mse_loss(pred, target)
