"""``testpattern:WxH@FPS``: colour bars, a scrolling ramp, a frame counter and a moving face.

Drawn per frame with array slices over a cached still (no file, no per-pixel Python). The
counter band shows the frame number twice: as 24 binary cells (most significant first, for
machines) and as digits (for people).
"""

from __future__ import annotations

import re

import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from agecast.errors import SourceError
from agecast.sources.astronaut import astronaut_face
from agecast.sources.base import Decoded, Source, SourceState

TESTPATTERN_SCHEME = "testpattern"
DEFAULT_WIDTH, DEFAULT_HEIGHT, DEFAULT_RATE = 1280, 720, 30.0
MIN_SIDE, MAX_SIDE, MAX_RATE = 32, 8192, 240.0
COUNTER_BITS = 24

_SPEC = re.compile(r"^(?:(?P<w>\d+)x(?P<h>\d+))?(?:@(?P<fps>\d+(?:\.\d+)?))?$")
# 75 % bars: grey, yellow, cyan, green, magenta, red, blue.
_BARS = np.array(
    [
        [191, 191, 191],
        [191, 191, 0],
        [0, 191, 191],
        [0, 191, 0],
        [191, 0, 191],
        [191, 0, 0],
        [0, 0, 191],
    ],
    dtype=np.uint8,
)
_DIGITS = (
    "111101101101111",
    "010110010010111",
    "111001111100111",
    "111001111001111",
    "101101111001001",
    "111100111001111",
    "111100111101111",
    "111001001001001",
    "111101111101111",
    "111101111001111",
)  # 3×5 glyphs, row by row
_GLYPHS = np.array([[int(c) for c in g] for g in _DIGITS], dtype=np.uint8).reshape(10, 5, 3)


def parse_testpattern(uri: str) -> tuple[int, int, float]:
    """(width, height, fps) from ``testpattern[:WxH][@FPS]``; SourceError when malformed."""
    spec = uri.removeprefix(TESTPATTERN_SCHEME).removeprefix(":")
    match = _SPEC.match(spec)
    if match is None:
        raise SourceError(
            f"bad test pattern {uri!r}: write testpattern, testpattern:1280x720 or "
            "testpattern:1280x720@30"
        )
    width = int(match["w"] or DEFAULT_WIDTH)
    height = int(match["h"] or DEFAULT_HEIGHT)
    fps = float(match["fps"] or DEFAULT_RATE)
    if not (MIN_SIDE <= width <= MAX_SIDE and MIN_SIDE <= height <= MAX_SIDE):
        raise SourceError(f"bad test pattern {uri!r}: sides must be {MIN_SIDE}–{MAX_SIDE} px")
    if not 0 < fps <= MAX_RATE:
        raise SourceError(f"bad test pattern {uri!r}: frame rate must be above 0 and ≤ {MAX_RATE}")
    return width, height, fps


def _resized(image: NDArray[np.uint8], height: int) -> NDArray[np.uint8]:
    width = max(1, round(image.shape[1] * height / image.shape[0]))
    chw = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float()
    out = F.interpolate(chw, size=(height, width), mode="bilinear", antialias=True)
    return out[0].permute(1, 2, 0).round().clamp(0, 255).to(torch.uint8).numpy()


class TestPatternSource(Source):
    """An endless generated pattern; paced at ``fps`` when live."""

    __test__ = False  # not a pytest test class despite the name

    def __init__(self, uri: str, width: int, height: int, fps: float, *, live: bool) -> None:
        super().__init__(uri, live=live, paced=live, fps=fps)
        self.width, self.height = width, height
        self._count = 0
        h = height
        self._ramp_rows = (int(h * 0.62), int(h * 0.78))
        self._band_rows = (self._ramp_rows[1], h)
        self._still = np.zeros((h, width, 3), dtype=np.uint8)
        self._ramp = np.zeros((0, width, 3), dtype=np.uint8)
        self._face = np.zeros((0, 0, 3), dtype=np.uint8)

    def _open_impl(self) -> None:
        w, h = self.width, self.height
        bar_of_column = np.minimum(np.arange(w) * len(_BARS) // w, len(_BARS) - 1)
        self._still[: self._ramp_rows[0]] = _BARS[bar_of_column][None]
        ramp = np.linspace(0, 255, w, dtype=np.float32).round().astype(np.uint8)
        self._ramp = np.repeat(ramp[None, :, None], 3, axis=2).repeat(
            self._ramp_rows[1] - self._ramp_rows[0], axis=0
        )
        self._face = _resized(astronaut_face(), max(8, int(h * 0.34)))
        self.state = SourceState.LIVE

    def _grab(self) -> Decoded | None:
        n = self._count
        self._count += 1
        return Decoded(torch.from_numpy(self.draw(n)), n / self.fps)

    def _release(self) -> None:
        pass

    def draw(self, n: int) -> NDArray[np.uint8]:
        """Frame ``n`` of the pattern as HWC uint8 RGB."""
        out = self._still.copy()
        r0, r1 = self._ramp_rows
        out[r0:r1] = np.roll(self._ramp, (n * max(1, self.width // 320)) % self.width, axis=1)
        self._draw_counter(out, n)
        self._draw_face(out, n)
        return out

    def _draw_counter(self, out: NDArray[np.uint8], n: int) -> None:
        top, bottom = self._band_rows
        band = bottom - top
        cell = max(1, self.width // (COUNTER_BITS + 2))
        bits = (n >> np.arange(COUNTER_BITS - 1, -1, -1)) & 1
        # A set bit is white, a clear one dark grey, with a black gap between cells.
        cells = np.repeat(np.where(bits == 1, 255, 48).astype(np.uint8)[:, None], cell, axis=1)
        cells[:, cell - max(1, cell // 5) :] = 0
        cells = cells.reshape(-1)
        x0 = (self.width - cells.size) // 2
        out[top + band // 8 : top + band // 2, x0 : x0 + cells.size] = cells[None, :, None]
        digits = f"{n:08d}"
        scale = max(1, min(band * 3 // 8 // 5, self.width // (4 * len(digits)) // 3))
        glyphs = np.concatenate([np.pad(_GLYPHS[int(d)], ((0, 0), (0, 1))) for d in digits], axis=1)
        text = np.kron(glyphs, np.ones((scale, scale), dtype=np.uint8)) * 255
        y0, tx0 = top + band * 9 // 16, (self.width - text.shape[1]) // 2
        th, tw = min(text.shape[0], bottom - y0), min(text.shape[1], self.width - tx0)
        out[y0 : y0 + th, tx0 : tx0 + tw] = text[:th, :tw, None]

    def _draw_face(self, out: NDArray[np.uint8], n: int) -> None:
        fh, fw = self._face.shape[:2]
        fh, fw = min(fh, self.height), min(fw, self.width)
        travel_x = max(0, self.width - fw)
        # Crosses the frame in about eight seconds, then comes back (a triangle wave).
        phase = (n / (8.0 * self.fps)) % 2.0
        x = round(travel_x * (phase if phase <= 1.0 else 2.0 - phase))
        drift = (self._ramp_rows[0] - fh) / 2.0
        y = round(max(0.0, drift + 0.25 * drift * np.sin(2 * np.pi * n / (5.0 * self.fps))))
        y = min(y, self.height - fh)
        out[y : y + fh, x : x + fw] = self._face[:fh, :fw]


def read_counter(picture: NDArray[np.uint8]) -> int:
    """The frame number a testpattern picture (HWC RGB, any size it was drawn at) shows in its
    binary cells: what a receiver of it (a browser, NDI, a decoder) can check it got."""
    h, w = picture.shape[:2]
    top = int(h * 0.78)
    band = h - top
    cell = w // (COUNTER_BITS + 2)
    x0 = (w - cell * COUNTER_BITS) // 2
    row = picture[top + band // 4, x0 : x0 + cell * COUNTER_BITS].astype(int).sum(axis=1)
    on = row.reshape(COUNTER_BITS, cell)[:, cell // 3] > 3 * 150
    return int("".join("1" if b else "0" for b in on), 2)
