"""RGB → 4:2:0 on the picture's own device, so a GPU picture comes down once, at half the bytes.

The H.264 encoders take YUV 4:2:0. For a picture on the host, PyAV's ``reformat`` (swscale)
converts it; a picture on the GPU would first come down as RGB (3 bytes a pixel) and then take
several milliseconds of CPU per 1080p frame to convert. Here the conversion runs in torch where
the picture is (BT.601 limited range, the coefficients swscale uses, chroma from each 2×2
block's mean), and only the planes (1.5 bytes a pixel) come down.
"""

from __future__ import annotations

import av
import numpy as np
import torch

from agecast.media.avframe import _plane_rows

# BT.601, limited range ("tv"), for 8-bit R'G'B' in 0–255: Y in 16–235, Cb/Cr in 16–240
_Y = (65.481 / 255, 128.553 / 255, 24.966 / 255)
_CB = (-37.797 / 255, -74.203 / 255, 112.0 / 255)
_CR = (112.0 / 255, -93.786 / 255, -18.214 / 255)


def _weighted(
    rgb: torch.Tensor, weights: tuple[float, float, float], offset: float
) -> torch.Tensor:
    out = rgb[..., 0] * weights[0] + rgb[..., 1] * weights[1] + rgb[..., 2] * weights[2] + offset
    return out.round_().clamp_(0, 255).to(torch.uint8)


def yuv420_planes(picture: torch.Tensor) -> torch.Tensor:
    """HWC uint8 RGB → one flat uint8 tensor Y (h·w) | Cb (h/2·w/2) | Cr, on ``picture``'s
    device, the size cut to even numbers first."""
    if picture.ndim != 3 or picture.shape[2] != 3 or picture.dtype != torch.uint8:
        raise ValueError(
            f"expected an HxWx3 uint8 RGB picture, got {tuple(picture.shape)} {picture.dtype}"
        )
    height, width = picture.shape[0] - picture.shape[0] % 2, picture.shape[1] - picture.shape[1] % 2
    rgb = picture[:height, :width].float()
    luma = _weighted(rgb, _Y, 16.0)
    blocks = rgb.reshape(height // 2, 2, width // 2, 2, 3).mean(dim=(1, 3))
    cb = _weighted(blocks, _CB, 128.0)
    cr = _weighted(blocks, _CR, 128.0)
    return torch.cat([luma.reshape(-1), cb.reshape(-1), cr.reshape(-1)])


def yuv420_frame(planes: np.ndarray, width: int, height: int) -> av.VideoFrame:
    """A ``yuv420p`` frame of ``width``×``height`` (even) from :func:`yuv420_planes`' bytes,
    copied with the GIL released (``numpy.copyto``)."""
    if width % 2 or height % 2 or planes.size != width * height * 3 // 2:
        raise ValueError(f"{planes.size} bytes are not a {width}x{height} 4:2:0 picture")
    frame = av.VideoFrame(width, height, "yuv420p")
    sizes = ((height, width), (height // 2, width // 2), (height // 2, width // 2))
    start = 0
    for plane, (rows, cols) in zip(frame.planes, sizes, strict=True):
        np.copyto(
            _plane_rows(plane, rows, cols), planes[start : start + rows * cols].reshape(rows, cols)
        )
        start += rows * cols
    return frame
