"""Small text labels burnt into a picture: "AI" on the aged side, a trace id, "FX OFF".

A label is white text on a semi-transparent dark box, about 2–3 % of the picture's height, in
a corner of the picture or of a horizontal region of it (the aged half of a side-by-side
picture). Each distinct text is rendered once with PIL into an RGBA tile and kept; burning is
then one alpha blend of the tile in torch on the picture's own device, so a label costs a few
tens of microseconds a frame and no host copy of the picture.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

log = logging.getLogger(__name__)

Corner = Literal["top-left", "top-right", "bottom-left", "bottom-right"]
CORNERS: tuple[Corner, ...] = ("top-left", "top-right", "bottom-left", "bottom-right")

# Glyphs that reach the cap/ascender line and the descender line: every tile of one size gets
# the same height whatever its text, so labels stacked or side by side line up.
_EXTENT_PROBE = "AHdfhklbgjpqy"


@dataclass(frozen=True, slots=True)
class Rect:
    """Where a label went, in picture pixels: rows y0:y1, columns x0:x1 (empty if clipped)."""

    x0: int
    y0: int
    x1: int
    y1: int


@dataclass(frozen=True, slots=True)
class _Blend:
    """A tile ready to blend on one device: out = picture * keep + ink (ink has +0.5 to round)."""

    keep: torch.Tensor  # (h, w, 1) float32, 1 - alpha
    ink: torch.Tensor  # (h, w, 3) float32, premultiplied colour + 0.5


class Marker:
    """Burns text labels into HWC uint8 RGB pictures (CPU or CUDA) in place.

    ``height_fraction`` sets the font size from the picture height (min ``min_size`` px);
    ``box_opacity`` is the dark box's alpha (the text itself is opaque white). Tiles are
    cached by (text, size) and, once per device, as blend-ready tensors. One Marker belongs to
    one thread (the device thread); ``renders`` counts PIL renders, for tests and logs.
    """

    def __init__(
        self,
        *,
        height_fraction: float = 0.02,
        min_size: int = 10,
        box_opacity: float = 0.55,
        margin_fraction: float = 0.5,
    ) -> None:
        if not 0 < height_fraction < 0.5:
            raise ValueError(f"height_fraction {height_fraction} must be in (0, 0.5)")
        if not 0 <= box_opacity <= 1:
            raise ValueError(f"box_opacity {box_opacity} must be in [0, 1]")
        self.height_fraction = height_fraction
        self.min_size = min_size
        self.box_opacity = box_opacity
        self.margin_fraction = margin_fraction
        self.renders = 0
        self._tiles: dict[tuple[str, int], np.ndarray] = {}
        self._blends: dict[tuple[str, int, torch.device], _Blend] = {}

    def size_for(self, picture_height: int) -> int:
        """Font size in pixels for a picture ``picture_height`` rows tall."""
        return max(self.min_size, round(picture_height * self.height_fraction))

    def tile(self, text: str, size: int) -> np.ndarray:
        """The label as a straight-alpha RGBA uint8 array (h, w, 4), rendered once per key."""
        key = (text, size)
        found = self._tiles.get(key)
        if found is None:
            found = self._render(text, size)
            self._tiles[key] = found
        return found

    def burn(
        self,
        picture: torch.Tensor,
        text: str,
        corner: Corner = "top-left",
        *,
        region: tuple[int, int] | None = None,
        size: int | None = None,
    ) -> Rect:
        """Blend ``text`` into ``picture`` at ``corner`` of ``region`` (columns x0:x1; default
        the whole width). The label is clipped to the region if it does not fit. Returns where
        it went."""
        if picture.ndim != 3 or picture.shape[2] != 3 or picture.dtype != torch.uint8:
            raise ValueError(
                f"picture must be HWC uint8 RGB, got {tuple(picture.shape)} {picture.dtype}"
            )
        if corner not in CORNERS:
            raise ValueError(f"unknown corner {corner!r}; use one of {', '.join(CORNERS)}")
        height, width = int(picture.shape[0]), int(picture.shape[1])
        rx0, rx1 = region if region is not None else (0, width)
        if not 0 <= rx0 < rx1 <= width:
            raise ValueError(f"region {region} must be 0 <= x0 < x1 <= picture width {width}")
        px = size if size is not None else self.size_for(height)
        blend = self._blend(text, px, picture.device)
        th, tw = int(blend.keep.shape[0]), int(blend.keep.shape[1])
        margin = max(1, round(px * self.margin_fraction))
        x = rx0 + margin if corner.endswith("left") else rx1 - margin - tw
        y = margin if corner.startswith("top") else height - margin - th
        # Clip the tile to the region and the picture (tiny pictures, long texts).
        x0, x1 = max(x, rx0), min(x + tw, rx1)
        y0, y1 = max(y, 0), min(y + th, height)
        if x0 >= x1 or y0 >= y1:
            return Rect(x0, y0, x0, y0)
        ty, tx = slice(y0 - y, y1 - y), slice(x0 - x, x1 - x)
        roi = picture[y0:y1, x0:x1]
        roi.copy_(torch.addcmul(blend.ink[ty, tx], roi.float(), blend.keep[ty, tx]))
        return Rect(x0, y0, x1, y1)

    def _blend(self, text: str, size: int, device: torch.device) -> _Blend:
        key = (text, size, device)
        found = self._blends.get(key)
        if found is None:
            rgba = torch.from_numpy(self.tile(text, size)).float() / 255
            alpha = rgba[:, :, 3:]
            found = _Blend(
                keep=(1 - alpha).contiguous().to(device),
                ink=(rgba[:, :, :3] * alpha * 255 + 0.5).contiguous().to(device),
            )
            self._blends[key] = found
        return found

    def _render(self, text: str, size: int) -> np.ndarray:
        """White text over a dark box, composited once here so the frame pays one blend."""
        font = ImageFont.load_default(size=size)
        _, top, _, bottom = font.getbbox(_EXTENT_PROBE)
        left, _, right, _ = font.getbbox(text)
        pad = max(2, round(size * 0.2))
        tw, th = max(1, int(right - left)) + 2 * pad, int(bottom - top) + 2 * pad
        coverage = Image.new("L", (tw, th), 0)
        ImageDraw.Draw(coverage).text((pad - left, pad - top), text, fill=255, font=font)
        glyph = np.asarray(coverage, dtype=np.float32)[:, :, None] / 255
        # "over": opaque white glyphs on a box of opacity a → alpha a + (1-a)·g, colour g/alpha.
        alpha = self.box_opacity + (1 - self.box_opacity) * glyph
        colour = np.divide(glyph, alpha, out=np.zeros_like(glyph), where=alpha > 0)
        rgba = np.concatenate([np.repeat(colour, 3, axis=2), alpha], axis=2)
        self.renders += 1
        log.debug("rendered mark %r at %d px: %dx%d tile", text, size, tw, th)
        return np.ascontiguousarray((rgba * 255).round().astype(np.uint8))
