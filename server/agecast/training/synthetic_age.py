"""A procedural ageing transform, to make a synthetic age target from footage faces.

No archival footage of anyone can ship with agecast, so a re-ageing model learns an age target
drawn by code, not photographed. On an aligned crop, placed by the face's five landmarks, it:
- lets the face sag a little: a smooth warp pulls the jowls, lower cheeks, outer brows and upper
  lids down and thins the lips (a few pixels at the oldest age);
- relights the skin from a height field: folds (forehead, frown, crow's feet, tear troughs,
  nasolabial, marionette, jowl and lip lines) with a shadow in the fold, a lit edge and, for the
  nasolabial and jowl folds, the cheek bulging over them; under-eye bags; fine crepey creases and
  skin grain whose direction follows the face (across the forehead, fanning from the eye corners,
  down the cheeks), each drawn only where the crop is large enough to show it without aliasing.
  More lines appear, wider and deeper, as the age rises;
- greys the hair and brows strand by strand along the hair's own strands (salt and pepper first,
  temples first, then silver);
- dulls, desaturates and warms the skin, mottles its pigment and adds age spots of varied size
  and colour; pales the lips.
Every texture, line and spot is computed in face coordinates (from the landmarks: origin between
the eyes, eye distance as the unit) or from the plate's own pixels, never from the crop's pixel
grid, so the same face in consecutive frames gets the same wrinkles at the same place. The eye
openings and the mouth interior (between the mouth corners) keep the plate's pixels, as does
everything outside the head.
``strength`` 0 leaves the crop untouched; 1 is the oldest target; effects grow smoothly and
monotonically between. It is plainly synthetic ageing: a model that learns it shows that the
pipeline ages a face live and can be steered by age, not what the actor will look like.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from agecast.errors import FacesetError
from agecast.training.faceset import FaceRecord, Faceset

_EXTENT = 3.2  # face units: noise lattices cover |u|, |v| ≤ this (more than any head reaches)


def _frame(landmarks5: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
    """Origin (eye midpoint), across (unit, left→right eye), down (unit) and eye distance."""
    left, right = landmarks5[0], landmarks5[1]
    across = right - left
    d = float(torch.linalg.vector_norm(across).clamp(min=1.0))
    across = across / d
    down = torch.stack([-across[1], across[0]])
    mouth = (landmarks5[3] + landmarks5[4]) / 2
    if float(torch.dot(mouth - (left + right) / 2, down)) < 0:
        down = -down
    return (left + right) / 2, across, down, d


def _smoothstep(t: torch.Tensor) -> torch.Tensor:
    t = t.clamp(0, 1)
    return t * t * (3 - 2 * t)


@dataclass(frozen=True)
class _Face:
    """Every pixel's position on the face: ``u`` across, ``v`` down, in eye distances from the
    point between the eyes; plus the mouth's own frame (``mu`` along the corners, −1…1 between
    them; ``mv`` across the mouth line, face units, + down)."""

    d: float
    origin: torch.Tensor
    across: torch.Tensor
    down: torch.Tensor
    u: torch.Tensor
    v: torch.Tensor
    mouth_u: float  # half the mouth's width, across
    mouth_v: float
    nose_v: float
    mu: torch.Tensor
    mv: torch.Tensor
    mouth_normal: torch.Tensor  # unit, across the mouth line, pointing down (pixels)

    @classmethod
    def of(cls, landmarks5: torch.Tensor, h: int, w: int) -> _Face:
        origin, across, down, d = _frame(landmarks5)
        ys, xs = torch.meshgrid(
            torch.arange(h, dtype=torch.float32) + 0.5,
            torch.arange(w, dtype=torch.float32) + 0.5,
            indexing="ij",
        )
        rel = (torch.stack([xs, ys], -1) - origin) / d
        u, v = (rel * across).sum(-1), (rel * down).sum(-1)
        left, right = (landmarks5[3] - origin) / d, (landmarks5[4] - origin) / d
        centre = (left + right) / 2
        half = max(float(torch.linalg.vector_norm(right - left)) / 2, 0.05)
        axis = (right - left) / (2 * half)
        normal = torch.stack([-axis[1], axis[0]])
        if float(torch.dot(normal, down)) < 0:
            normal = -normal
        m = rel - centre
        return cls(
            d=d,
            origin=origin,
            across=across,
            down=down,
            u=u,
            v=v,
            mouth_u=float(((right - left) * across).sum()) / 2,
            mouth_v=float((centre * down).sum()),
            nose_v=float((((landmarks5[2] - origin) / d) * down).sum()),
            mu=(m * axis).sum(-1) / half,
            mv=(m * normal).sum(-1),
            mouth_normal=normal,
        )

    def blob(self, cu: float, cv: float, au: float, av: float, soft: float = 1.0) -> torch.Tensor:
        """1 inside the ellipse's inner part, easing to 0 at its rim (``soft``: width of the
        easing, as a fraction of the radius)."""
        out = torch.zeros_like(self.u)
        corners = torch.tensor(
            [[cu - au, cv - av], [cu + au, cv - av], [cu - au, cv + av], [cu + au, cv + av]]
        )
        box = self.box(corners, 0)
        if box is not None:  # a blob is small: work out only its own pixels
            r = torch.sqrt(((self.u[box] - cu) / au) ** 2 + ((self.v[box] - cv) / av) ** 2)
            out[box] = _smoothstep((1 - r) / soft)
        return out

    def pair(self, cu: float, cv: float, au: float, av: float, soft: float = 1.0) -> torch.Tensor:
        """The same blob on both sides of the face, mirrored."""
        return torch.maximum(self.blob(cu, cv, au, av, soft), self.blob(-cu, cv, au, av, soft))

    def box(self, points: torch.Tensor, reach: float) -> tuple[slice, slice] | None:
        """The pixels within ``reach`` (face units) of the box around ``points`` (N,2 face
        units); None when that is off the crop."""
        px = self.origin + self.d * (points[:, :1] * self.across + points[:, 1:] * self.down)
        h, w = self.u.shape
        pad = reach * self.d
        x0, y0 = (px.min(0).values - pad).floor().clamp(min=0).int().tolist()
        x1, y1 = (px.max(0).values + pad).ceil().int().tolist()
        x1, y1 = min(x1, w), min(y1, h)
        if x1 <= x0 or y1 <= y0:
            return None
        return slice(y0, y1), slice(x0, x1)

    def resolved(self, wavelength: float) -> float:
        """How far a texture of this wavelength (face units) is above the pixel grid: 0 where it
        would alias (and crawl as the face moves), 1 where it is drawn cleanly."""
        return min(max((wavelength * self.d - 2.5) / 2.5, 0.0), 1.0)


@functools.lru_cache(maxsize=64)
def _lattice(seed: int, name: str, cells_a: int, cells_b: int) -> torch.Tensor:
    """Smoothed white noise on a lattice, scaled so that it interpolates to unit variance. It is
    smoothed over a few cells so that interpolating it shows no trace of the lattice."""
    gen = torch.Generator().manual_seed(seed * 7919 + zlib.crc32(name.encode()))
    noise = torch.randn(1, 1, cells_b + 4, cells_a + 4, generator=gen)
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16
    noise = F.conv2d(noise, (k[:, None] * k[None, :])[None, None])
    fine = F.interpolate(noise[..., :64, :64], scale_factor=4.0, mode="bicubic")
    return noise / fine.std()


def _noise(
    seed: int, name: str, a: torch.Tensor, b: torch.Tensor, cell_a: float, cell_b: float
) -> torch.Tensor:
    """Band-limited noise at face positions (``a``, ``b`` in face units, |·| ≤ _EXTENT·√2):
    the same value at the same place on the face in every frame."""
    reach = _EXTENT * math.sqrt(2)
    # half-size cells: the smoothing over two of them leaves features about a cell wide
    lattice = _lattice(seed, name, math.ceil(4 * reach / cell_a), math.ceil(4 * reach / cell_b))
    grid = torch.stack([a / reach, b / reach], -1)[None]
    sampled = F.grid_sample(
        lattice, grid, mode="bicubic", padding_mode="border", align_corners=True
    )
    return sampled[0, 0]


def _oriented(
    face: _Face, seed: int, name: str, wavelength: float, stretch: float, angle: float
) -> torch.Tensor:
    """Noise whose streaks run at ``angle`` (radians from across), ``stretch`` times longer than
    wide."""
    c, s = math.cos(angle), math.sin(angle)
    along = face.u * c + face.v * s
    across = -face.u * s + face.v * c
    return _noise(seed, name, along, across, wavelength * stretch / 2, wavelength / 2)


def _fold_direction(face: _Face) -> tuple[torch.Tensor, torch.Tensor]:
    """Which way fine lines run at each point, as (cos 2θ, sin 2θ) (a direction, not an arrow):
    across the forehead and under the eyes, fanning out from the outer eye corners, down and
    out along the cheeks, up and down around the lips. Regions blend; where they meet, the
    lines cross-hatch."""
    side = torch.sign(face.u) + (face.u == 0).float()
    fan = torch.atan2(face.v - 0.02, face.u - side * 0.72)
    parts = [
        (face.blob(0, -0.75, 1.2, 0.55), torch.zeros_like(face.u)),  # forehead
        (face.pair(0.5, 0.28, 0.35, 0.16), side * 0.15),  # under the eyes
        (face.pair(0.9, 0.0, 0.3, 0.35), fan),  # crow's feet
        (face.pair(0.55, 0.85, 0.4, 0.55), side * 1.05),  # cheeks
        (face.blob(0, face.mouth_v, face.mouth_u + 0.1, 0.3), torch.full_like(face.u, 1.5708)),
    ]
    c2 = torch.zeros_like(face.u)
    s2 = torch.zeros_like(face.u)
    total = torch.full_like(face.u, 1e-3)
    for weight, theta in parts:
        c2 += weight * torch.cos(2 * theta)
        s2 += weight * torch.sin(2 * theta)
        total += weight
    return c2 / total, s2 / total


def _crepe(face: _Face, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(grain, creases): fine skin relief (zero-mean) and a network of fine crease lines (0–1),
    both running along ``_fold_direction``."""
    c2, s2 = _fold_direction(face)
    grain = torch.zeros_like(face.u)
    creases = torch.zeros_like(face.u)
    g_weight, c_weight = face.resolved(0.035), face.resolved(0.07)
    for i, theta in enumerate((0.0, math.pi / 3, 2 * math.pi / 3)):
        weight = (1 + c2 * math.cos(2 * theta) + s2 * math.sin(2 * theta)) / 3
        if g_weight > 0:
            grain += weight * _oriented(face, seed, f"grain{i}", 0.035, 3.0, theta)
        if c_weight > 0:
            n = _oriented(face, seed, f"crease{i}", 0.08, 2.5, theta)
            creases += weight * torch.exp(-((n / 0.35) ** 2))
    return grain * g_weight, creases * c_weight


@dataclass(frozen=True)
class _Line:
    """A fold, in face units (both sides are made from one, mirrored)."""

    points: tuple[tuple[float, float], ...]
    depth: float  # how dark the fold's floor gets (≈ the fraction of light lost) at full age
    width: float  # half-width at full age, face units
    onset: float = 0.0  # strength at which it starts to show
    bulge: float = 0.0  # skin rolling over the fold on its left (+) or right (−) of travel

    def mirrored(self) -> _Line:
        return _Line(
            tuple((-u, v) for u, v in self.points), self.depth, self.width, self.onset, -self.bulge
        )


def _lines(face: _Face, seed: int) -> list[_Line]:
    """Where faces fold with age, wavy by ``seed``, placed from the landmarks."""
    gen = torch.Generator().manual_seed(seed)
    phases = torch.rand(8, generator=gen).tolist()
    mu, mv, nv = face.mouth_u, face.mouth_v, face.nose_v
    out: list[_Line] = []
    for i, (v, onset) in enumerate(((-0.72, 0.0), (-0.87, 0.12), (-1.02, 0.3), (-0.58, 0.55))):
        span = 0.55 if i < 3 else 0.3
        pts = tuple(
            (
                float(u),
                v + 0.07 * (u / 0.62) ** 2 + 0.015 * math.sin(7 * u + 6.28 * phases[i]),
            )
            for u in np.linspace(-span, span, 14)
        )
        out.append(_Line(pts, 0.3 - 0.04 * i, 0.035, onset))
    half = [
        _Line(((0.08, -0.38), (0.095, -0.27), (0.1, -0.17)), 0.22, 0.028, 0.2),  # frown
        _Line(((0.74, -0.06), (0.82, -0.12), (0.9, -0.16)), 0.22, 0.026, 0.1),  # crow's feet
        _Line(((0.77, 0.03), (0.86, 0.04), (0.95, 0.02)), 0.22, 0.026, 0.0),
        _Line(((0.75, 0.1), (0.83, 0.17), (0.9, 0.23)), 0.2, 0.024, 0.3),
        _Line(  # tear trough: the lower rim of the bag
            tuple((float(u), 0.3 + 0.55 * (u - 0.42) ** 2) for u in np.linspace(0.2, 0.7, 8)),
            0.1,
            0.04,
            0.05,
            -0.5,
        ),
        _Line(  # nasolabial fold, the cheek rolling over it
            (
                (0.24, nv - 0.06),
                (0.3, nv + 0.08),
                (mu * 0.9 + 0.07, mv - 0.12),
                (mu + 0.1, mv + 0.04),
                (mu + 0.1, mv + 0.14),
            ),
            0.24,
            0.06,
            0.0,
            -1.2,
        ),
        _Line(
            ((mu + 0.02, mv + 0.08), (mu + 0.03, mv + 0.22), (mu, mv + 0.36)), 0.22, 0.04, 0.3, 0.5
        ),
        _Line(  # jowl: the sagging cheek meeting the jaw
            ((mu + 0.25, mv + 0.12), (mu + 0.28, mv + 0.35), (mu + 0.2, mv + 0.55)),
            0.2,
            0.05,
            0.45,
            0.6,
        ),
        _Line(((0.5, nv + 0.02), (0.56, nv + 0.3)), 0.12, 0.03, 0.6),  # cheek
    ]
    for k, x in enumerate((0.1, 0.2, 0.3)):  # lip lines, above the upper lip
        half.append(_Line(((x, mv - 0.3), (x + 0.01, mv - 0.18)), 0.12, 0.018, 0.5 + 0.1 * k))
    for line in half:
        out += [line, line.mirrored()]
    return out


@dataclass(frozen=True)
class _Placed:
    """A line measured on the crop: the box of pixels near it, their distance to it (face
    units, signed: + on its left), and how far along it they are (0 at the ends, 1 inside)."""

    line: _Line
    box: tuple[slice, slice]
    dist: torch.Tensor
    ends: torch.Tensor


def _place(face: _Face, line: _Line) -> _Placed | None:
    p = torch.tensor(line.points, dtype=torch.float32)
    box = face.box(p, 4 * line.width + 1 / face.d)
    if box is None:
        return None
    q = torch.stack([face.u[box], face.v[box]], -1).reshape(-1, 1, 2)
    a, b = p[:-1], p[1:]
    seg = b - a
    length = torch.linalg.vector_norm(seg, dim=-1).clamp(min=1e-6)
    t = (((q - a) * seg).sum(-1) / length**2).clamp(0, 1)  # N, segments
    off = q - (a + t[..., None] * seg)
    dist = torch.linalg.vector_norm(off, dim=-1)
    best = dist.argmin(1, keepdim=True)
    cross = seg[:, 0] * off[..., 1] - seg[:, 1] * off[..., 0]
    side = torch.where(cross.gather(1, best) >= 0, 1.0, -1.0)[:, 0]
    start = torch.cat([torch.zeros(1), length.cumsum(0)])
    along = start[best[:, 0]] + t.gather(1, best)[:, 0] * length[best[:, 0]]
    total = float(start[-1])
    taper = min(0.12, total / 3)
    ends = _smoothstep(torch.minimum(along, total - along) / taper)
    shape = face.u[box].shape
    return _Placed(
        line, box, (dist.gather(1, best)[:, 0] * side).reshape(shape), ends.reshape(shape)
    )


def _folds(
    face: _Face, placed: list[_Placed], vary: torch.Tensor, s: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The folds at strength ``s``: their height field (face units) and how dark their floors
    are (0–1). Grooves widen, deepen and multiply with age; depth wanders along each line."""
    height = torch.zeros_like(face.u)
    floor = torch.zeros_like(face.u)
    narrowest = 0.45 / face.d  # narrower than about a pixel, a fold would alias
    for p in placed:
        amount = min(max((s - p.line.onset) / (1 - p.line.onset), 0.0), 1.0)
        if amount <= 0:
            continue
        nominal = p.line.width * (0.6 + 0.4 * s)
        w = max(nominal, narrowest)
        depth = 1.3 * p.line.depth * amount * (nominal / w) * p.ends * vary[p.box]
        r = p.dist / w
        groove = torch.exp(-(r**2))
        floor[p.box] += depth * groove
        if p.line.bulge:
            side = math.copysign(1.0, p.line.bulge)
            groove = groove - abs(p.line.bulge) * torch.exp(-(((r * side - 2.2) / 1.5) ** 2))
        height[p.box] -= depth * w * groove
    return height, floor.clamp(0, 1)


@dataclass(frozen=True)
class _Regions:
    """Soft masks over the crop (1 = fully that)."""

    head: torch.Tensor  # everything that may change lies inside
    skin: torch.Tensor  # the face's skin, forehead included, hair excluded
    hair: torch.Tensor  # hair and brows, weighted by how much they grey
    keep: torch.Tensor  # 1 on the eye openings and the mouth interior: the plate's pixels
    still: torch.Tensor  # 1 near those: no warp (so the kept pixels stay continuous)
    lips: torch.Tensor


def _box_mean(image: torch.Tensor, k: int) -> torch.Tensor:
    """Mean over a k×k box (k odd), in two passes; the crop's edge counts zeros."""
    x = F.avg_pool2d(image[None, None], (1, k), stride=1, padding=(0, k // 2))
    return F.avg_pool2d(x, (k, 1), stride=1, padding=(k // 2, 0))[0, 0]


def _regions(face: _Face, plate: torch.Tensor) -> _Regions:
    luma = (plate * torch.tensor([0.299, 0.587, 0.114])).sum(-1)
    skin = face.blob(0, 0.42, 0.98, 1.28, 0.12)
    core = face.blob(0, 0.42, 0.82, 1.12, 0.3)  # always skin
    head = face.blob(0, -0.2, 1.9, 1.95, 0.1)
    # skin colour sampled on the cheeks; hair is whatever in the head differs from it
    chroma = plate / plate.sum(-1, keepdim=True).clamp(min=1e-3)
    weights = face.pair(0.45, 0.55, 0.14, 0.12, 0.5).reshape(-1, 1)
    total = weights.sum().clamp(min=1e-6)
    skin_chroma = (chroma.reshape(-1, 3) * weights).sum(0) / total
    skin_luma = float((luma.reshape(-1) * weights[:, 0]).sum() / total)
    off_skin = (((chroma - skin_chroma).norm(dim=-1) - 0.02) / 0.04).clamp(0, 1)
    dark = ((skin_luma - 0.12 - luma) / 0.15).clamp(0, 1)
    mx, mn = plate.max(-1).values, plate.min(-1).values
    coloured = ((mx - mn) / mx.clamp(min=1e-3) - 0.1).div(0.1).clamp(0, 1)
    # hair: off the skin's colour (or much darker), more coloured than a grey backdrop; a
    # region, not a pixel test: smoothed so that lit strands grey with the rest
    hairlike = torch.maximum(off_skin * coloured, dark)
    k = max(3, int(face.d * 0.12) | 1)
    smooth = _box_mean(_box_mean(hairlike, k), k)
    jaw = face.blob(0, 0.95, 1.0, 0.95, 0.1)
    hair = (head * (1 - core) * (1 - jaw) * (smooth * 1.8).clamp(0, 1)).clamp(0, 1)
    brows = face.pair(0.5, -0.32, 0.3, 0.12, 0.4) * dark
    eyes = torch.sqrt(((face.u.abs() - 0.5) / 0.25) ** 2 + (face.v / 0.12) ** 2)
    mouth = torch.sqrt(face.mu**2 + (face.mv / 0.075) ** 2)
    near = torch.minimum(eyes, mouth)
    lips = _smoothstep((1 - torch.sqrt((face.mu / 1.15) ** 2 + (face.mv / 0.2) ** 2)) / 0.4)
    forehead = face.blob(0, -0.8, 0.75, 0.45, 0.5)
    return _Regions(
        head=head,
        skin=(torch.maximum(skin, forehead * head) * (1 - hair)).clamp(0, 1),
        hair=(0.95 * hair + 0.7 * brows).clamp(0, 1),
        keep=((1.35 - near) / 0.35).clamp(0, 1),
        still=_smoothstep((1.9 - near) / 0.6),
        lips=lips,
    )


def _grey_order(face: _Face, seed: int, luma: torch.Tensor) -> torch.Tensor:
    """When each hair goes grey (0 first … 1 last): in wisps placed on the face, along the
    hair's own strands (light strands first, dark ones last, so it runs the way the hair
    does), the temples first."""
    wisps = _noise(seed, "wisps", face.u, face.v, 0.05, 0.05)
    strands = (luma - _box_mean(luma, max(3, int(face.d * 0.08) | 1))) / 0.06
    n = (0.8 * wisps - 0.6 * strands.clamp(-2.5, 2.5)) / 1.0
    order = 0.5 * (1 + torch.erf(n / math.sqrt(2)))
    return order - 0.25 * face.pair(0.95, -0.3, 0.35, 0.5)


@dataclass(frozen=True)
class _Spot:
    u: float
    v: float
    radius: float
    darkness: float
    onset: float
    tint: tuple[float, float, float]


def _spots(seed: int) -> list[_Spot]:
    """Age spots: more, and darker, with age; tan to brown; off the eyes, nose and mouth."""
    gen = torch.Generator().manual_seed(seed)
    spots: list[_Spot] = []
    while len(spots) < 22:
        u, v, r, dark, onset, hue = torch.rand(6, generator=gen).tolist()
        u, v = -0.9 + 1.8 * u, -1.0 + 2.2 * v
        if abs(u) < 0.35 and -0.15 < v < 1.15:
            continue
        tint = (0.5 + 0.15 * hue, 0.8, 1.05 + 0.2 * hue)
        spots.append(_Spot(u, v, 0.02 + 0.05 * r**2, 0.05 + 0.12 * dark, 0.7 * onset, tint))
    return spots


@dataclass(frozen=True)
class _Plan:
    """Everything about one crop that does not depend on the age."""

    face: _Face
    plate: torch.Tensor
    regions: _Regions
    placed: list[_Placed]
    vary: torch.Tensor
    grain: torch.Tensor
    creases: torch.Tensor
    relief: torch.Tensor  # bags and jowls: height at full age
    sag: torch.Tensor  # H,W,2 pixel displacement at full age
    grey_order: torch.Tensor
    shine: torch.Tensor
    pigment: torch.Tensor
    spots: list[tuple[_Spot, tuple[slice, slice], torch.Tensor]]  # each with its box and shape


def _plan(image: np.ndarray, landmarks5: np.ndarray, seed: int) -> _Plan:
    h, w = image.shape[:2]
    plate = torch.from_numpy(np.array(image, dtype=np.float32)) / 255
    face = _Face.of(torch.from_numpy(np.asarray(landmarks5, dtype=np.float32)), h, w)
    regions = _regions(face, plate)
    grain, creases = _crepe(face, seed)
    weather = (
        0.45
        + 0.6 * face.pair(0.5, 0.3, 0.3, 0.18)
        + 0.6 * face.pair(0.85, 0.05, 0.25, 0.3)
        + 0.4 * face.pair(0.6, 0.9, 0.35, 0.45)
        + 0.4 * face.blob(0, face.mouth_v - 0.15, face.mouth_u + 0.2, 0.2)
        - 0.3 * face.blob(0, 0.45, 0.18, 0.35)
    ).clamp(0, 1.2) * regions.skin
    luma = (plate * torch.tensor([0.299, 0.587, 0.114])).sum(-1)
    local = _box_mean(luma, max(3, int(face.d * 0.25) | 1))
    pigment = 0.7 * _noise(seed, "pigment", face.u, face.v, 0.09, 0.09) + 0.5 * face.resolved(
        0.06
    ) * _noise(seed, "freckle", face.u, face.v, 0.03, 0.03)
    spots = []
    for spot in _spots(seed):
        box = face.box(torch.tensor([[spot.u, spot.v]]), spot.radius)
        if box is not None:
            r = torch.sqrt(
                ((face.u[box] - spot.u) / spot.radius) ** 2
                + ((face.v[box] - spot.v) / (0.85 * spot.radius)) ** 2
            )
            spots.append((spot, box, _smoothstep(1 - r) * regions.skin[box]))
    return _Plan(
        face=face,
        plate=plate,
        regions=regions,
        placed=[p for line in _lines(face, seed) if (p := _place(face, line)) is not None],
        vary=(0.8 + 0.35 * _noise(seed, "vary", face.u, face.v, 0.12, 0.12)).clamp(0.25, 1.3),
        grain=grain * weather,
        creases=creases * weather,
        relief=0.012 * face.pair(0.47, 0.25, 0.22, 0.11)
        + 0.015 * face.pair(0.68, 1.32, 0.28, 0.24),
        sag=_sag(face),
        grey_order=_grey_order(face, seed, luma),
        shine=(luma - local - 0.03).clamp(min=0) * regions.skin,
        pigment=pigment * regions.skin,
        spots=spots,
    )


def _sag(face: _Face) -> torch.Tensor:
    """Pixel displacement at full age: jowls, lower cheeks, outer brows and upper lids drop;
    the lips' outer edges move in toward the mouth line (thinner lips)."""
    drop = (
        0.05 * face.pair(0.68, 1.3, 0.34, 0.34)
        + 0.03 * face.pair(0.55, 0.85, 0.3, 0.3)
        + 0.035 * face.pair(0.75, -0.3, 0.28, 0.16)
        + 0.02 * face.pair(0.5, -0.15, 0.26, 0.09)
    )
    lip_band = _smoothstep((1 - torch.sqrt((face.mu / 1.1) ** 2 + (face.mv / 0.24) ** 2)) / 0.5)
    inward = 0.03 * lip_band * -torch.tanh(face.mv / 0.04)
    return face.d * (drop[..., None] * face.down + inward[..., None] * face.mouth_normal)


def _warp(plate: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``plate`` with its content moved by ``shift`` (H,W,2 pixels); unmoved pixels are the
    plate's own."""
    h, w = plate.shape[:2]
    moving = shift.abs().amax(-1) > 1e-3
    if not bool(moving.any()):
        return plate
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32) + 0.5,
        torch.arange(w, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    src = torch.stack([xs, ys], -1) - shift
    grid = (src / torch.tensor([w, h], dtype=torch.float32) * 2 - 1)[None]
    moved = F.grid_sample(
        plate.permute(2, 0, 1)[None],
        grid,
        mode="bicubic",
        padding_mode="border",
        align_corners=False,
    )[0].permute(1, 2, 0)
    return torch.where(moving[..., None], moved.clamp(0, 1), plate)


def _shading(plan: _Plan, s: float) -> torch.Tensor:
    """Light lost or gained at each pixel (a factor around 1), lit from above and a little from
    the side: folds and creases shadow their floor and light the wall that faces up."""
    face = plan.face
    height, floor = _folds(face, plan.placed, plan.vary, s)
    height = height + s * (plan.relief + 4.5e-4 * plan.grain - 5e-4 * plan.creases)
    floor = floor + 0.08 * s * plan.creases
    gy, gx = torch.gradient(height)
    down = face.down
    slope_v = face.d * (gx * down[0] + gy * down[1])
    slope_u = face.d * (gx * down[1] - gy * down[0])
    light = 0.8 * slope_v + 0.25 * slope_u
    light = torch.where(light > 0, 0.5 * light, light)  # ageing skin is matte: little sheen
    return ((1 + light) * (1 - 0.25 * floor)).clamp(0.3, 1.5)


def _render(plan: _Plan, s: float) -> np.ndarray:
    regions = plan.regions
    x = _warp(plan.plate, s * plan.sag * (1 - regions.still)[..., None])
    # hair and brows to a silver that keeps their light and shade: on average ``s`` of the way
    # (a blend of neighbouring ages stays close to the age between), early strands ahead
    spread = (1.2 - 2.4 * plan.grey_order).clamp(-1.2, 1.2)
    grey = (s + s * (1 - s) * spread).clamp(0, 1) * regions.hair
    luma = (x * torch.tensor([0.299, 0.587, 0.114])).sum(-1, keepdim=True)
    silver = (0.22 + 0.9 * luma).clamp(0, 1) * torch.tensor([1.0, 0.985, 0.955])
    x = x + (silver - x) * grey[..., None]
    # skin: duller (less shine), less saturated, warmer, uneven pigment, spots
    skin = regions.skin[..., None]
    x = x - (0.5 * s * plan.shine)[..., None]
    mean = x.mean(-1, keepdim=True)
    toned = mean + (x - mean) * (1 - 0.25 * s) + torch.tensor([0.02, 0.008, -0.022]) * s
    x = x + (toned - x) * skin
    brown = torch.tensor([0.7, 1.0, 1.5])
    x = x * (1 - 0.035 * s * plan.pigment[..., None] * brown)
    for spot, box, shape in plan.spots:
        amount = min(max((s - spot.onset) / (1 - spot.onset), 0.0), 1.0) * spot.darkness
        if amount > 0:
            x[box] = x[box] * (1 - amount * shape[..., None] * torch.tensor(spot.tint))
    # lips: paler, toward the skin's own grey
    lips = (s * regions.lips * (1 - regions.keep))[..., None]
    mean = x.mean(-1, keepdim=True)
    x = x + (mean + 0.02 - x) * 0.35 * lips
    # skin shadows are warm (light scatters red under the skin), so blue falls fastest
    light = ((_shading(plan, s) - 1) * regions.skin)[..., None]
    x = x * (1 + light * torch.tensor([0.75, 1.0, 1.25]))
    change = (regions.head * (1 - regions.keep))[..., None]
    x = plan.plate + (x.clamp(0, 1) - plan.plate) * change
    return (x * 255).round().to(torch.uint8).numpy()


def age_face(
    image: np.ndarray, landmarks5: np.ndarray, strength: float, seed: int = 7
) -> np.ndarray:
    """``image`` (H,W,3 uint8 RGB aligned crop) aged by ``strength`` in 0–1; landmarks in crop
    pixels (left eye, right eye, nose, left mouth, right mouth). ``seed`` places the lines'
    waviness, the skin texture, the grey strands and the age spots: keep it fixed across a
    faceset so every frame has the same ones."""
    return age_face_series(image, landmarks5, [strength], seed)[0]


def age_face_series(
    image: np.ndarray, landmarks5: np.ndarray, strengths: list[float], seed: int = 7
) -> list[np.ndarray]:
    """``age_face`` at several strengths; where hair, skin and lines are is worked out once."""
    plan: _Plan | None = None
    out: list[np.ndarray] = []
    with torch.no_grad():
        for strength in strengths:
            s = float(min(max(strength, 0.0), 1.0))
            if s == 0:
                out.append(np.array(image, copy=True))
                continue
            plan = plan or _plan(image, landmarks5, seed)
            out.append(_render(plan, s))
    return out


def synthesize_faceset(
    footage: Path, out: Path, ages: list[int], base_age: int, *, seed: int = 7
) -> Faceset:
    """A src faceset from a footage faceset: every face at every age in ``ages``.

    ``base_age`` is the footage's own (nominal) age: it gets strength 0; the oldest age gets 1.
    Each face records its age and ``pair_of`` (the footage face it was drawn from), so the
    trainer can learn the swap from the pairs directly.
    """
    if not ages or any(a < base_age for a in ages):
        raise FacesetError(
            f"ages {ages}: give one or more ages at or above the footage's age {base_age}"
        )
    if out.exists() and any(out.iterdir()):
        raise FacesetError(f"{out} exists and is not empty: choose a new folder")
    source = Faceset.load(footage)
    oldest = max(ages)
    span = max(oldest - base_age, 1)
    records: list[FaceRecord] = []
    images: dict[str, np.ndarray] = {}
    strengths = [(age - base_age) / span for age in ages]
    for i, record in enumerate(source.records):
        series = age_face_series(source.image(i), np.asarray(record.landmarks5), strengths, seed)
        for age, aged in zip(ages, series, strict=True):
            name = f"{Path(record.file).stem}_age{age}.png"
            images[name] = aged
            records.append(
                record.model_copy(update={"file": name, "age": float(age), "pair_of": record.file})
            )
    index = source.index.model_copy(
        update={
            "source": f"synthetic ageing of {footage}",
            "params": {
                **source.index.params,
                "synthetic_age": {"base_age": base_age, "ages": list(ages), "seed": seed},
            },
            "faces": records,
        }
    )
    return Faceset.write(out, index, images)
