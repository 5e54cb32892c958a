"""A procedural ageing transform, to make a synthetic age target from footage faces.

No archival footage of anyone can ship with agecast, so the demo identity learns an age target
drawn by code, not photographed. On an aligned crop, placed by the face's five landmarks, it:
- greys the hair and eyebrows (dark pixels outside the skin, or on the brows, move to silver);
- draws lines where faces line with age: forehead, frown lines, crow's feet, under the eyes,
  nasolabial folds and marionette lines (soft dark grooves with a lit edge);
- shadows the under-eyes, lowers the skin's saturation and warms it, and adds a few age spots
  (the same spots, at the same place on the face, in every frame).
``strength`` 0 leaves the crop untouched; 1 is the oldest target. It is a stylised, plainly
synthetic ageing: a model that learns it shows that the pipeline ages a face live and can be
steered by age, not what the actor will look like.
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import torch
from torch.nn import functional as F

from agecast.errors import FacesetError
from agecast.training.faceset import FaceRecord, Faceset


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


def _curves(mouth_u: float, mouth_v: float) -> list[tuple[list[tuple[float, float]], float]]:
    """Lines in face units (u across, v down, eye distance = 1; origin between the eyes) with
    their depth. Both sides are drawn from the same list, mirrored."""
    lines: list[tuple[list[tuple[float, float]], float]] = []
    for i, v in enumerate((-0.72, -0.88, -1.04)):  # forehead, curving down at the ends
        pts = [(u, v + 0.07 * (u / 0.62) ** 2) for u in np.linspace(-0.62, 0.62, 25)]
        lines.append((pts, 0.9 - 0.15 * i))
    half: list[tuple[list[tuple[float, float]], float]] = [
        ([(0.06, -0.36), (0.09, -0.25), (0.1, -0.14)], 0.45),  # frown line
        ([(0.74, -0.03), (0.88, -0.11)], 0.55),  # crow's feet
        ([(0.76, 0.03), (0.91, 0.02)], 0.55),
        ([(0.74, 0.08), (0.87, 0.15)], 0.5),
        (
            [(u, 0.2 + 0.25 * (u - 0.5) ** 2) for u in np.linspace(0.3, 0.72, 12)],
            0.6,
        ),  # under the eye
        (
            [
                (0.19, 0.56),
                (0.3, 0.72),
                (mouth_u + 0.06, mouth_v - 0.06),
                (mouth_u + 0.05, mouth_v + 0.1),
            ],
            1.0,
        ),  # nasolabial fold
        ([(mouth_u + 0.02, mouth_v + 0.1), (mouth_u + 0.03, mouth_v + 0.3)], 0.5),  # marionette
    ]
    for pts, depth in half:
        lines.append((pts, depth))
        lines.append(([(-u, v) for u, v in pts], depth))
    return lines


def _densify(pts: list[tuple[float, float]], step: float = 0.01) -> torch.Tensor:
    out: list[torch.Tensor] = []
    p = torch.tensor(pts, dtype=torch.float32)
    for a, b in itertools.pairwise(p):
        n = max(2, math.ceil(float(torch.linalg.vector_norm(b - a)) / step))
        t = torch.linspace(0, 1, n).unsqueeze(1)
        out.append(a + (b - a) * t)
    return torch.cat(out)


def _to_pixels(
    uv: torch.Tensor, origin: torch.Tensor, across: torch.Tensor, down: torch.Tensor, d: float
) -> torch.Tensor:
    return origin + d * (uv[:, :1] * across + uv[:, 1:2] * down)


def _ellipse(
    xy: torch.Tensor,
    centre: torch.Tensor,
    axes: tuple[float, float],
    across: torch.Tensor,
    down: torch.Tensor,
    soft: float = 0.15,
) -> torch.Tensor:
    rel = xy - centre
    u = (rel * across).sum(-1) / axes[0]
    v = (rel * down).sum(-1) / axes[1]
    r = torch.sqrt(u**2 + v**2)
    return ((1 - r) / soft).clamp(0, 1)


def age_face(
    image: np.ndarray, landmarks5: np.ndarray, strength: float, seed: int = 7
) -> np.ndarray:
    """``image`` (H,W,3 uint8 RGB aligned crop) aged by ``strength`` in 0–1; landmarks in crop
    pixels (left eye, right eye, nose, left mouth, right mouth). ``seed`` places the age spots:
    keep it fixed across a faceset so every frame has the same ones."""
    return age_face_series(image, landmarks5, [strength], seed)[0]


def age_face_series(
    image: np.ndarray, landmarks5: np.ndarray, strengths: list[float], seed: int = 7
) -> list[np.ndarray]:
    """``age_face`` at several strengths; where hair, skin and lines are is worked out once."""
    h, w = image.shape[:2]
    x = torch.from_numpy(np.array(image, dtype=np.float32)) / 255  # H,W,3
    lm = torch.from_numpy(np.asarray(landmarks5, dtype=np.float32))
    origin, across, down, d = _frame(lm)
    ys, xs = torch.meshgrid(
        torch.arange(h, dtype=torch.float32) + 0.5,
        torch.arange(w, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    xy = torch.stack([xs, ys], -1)
    mouth = (lm[3] + lm[4]) / 2
    rel = (lm[4] - origin) / d
    mouth_u = float((rel * across).sum())
    mouth_v = float((((mouth - origin) / d) * down).sum())

    luma = (x * torch.tensor([0.299, 0.587, 0.114])).sum(-1)
    skin_centre = origin + d * (0.42 * down)
    skin = _ellipse(xy, skin_centre, (0.98 * d, 1.28 * d), across, down, 0.12)
    core = _ellipse(xy, skin_centre, (0.8 * d, 1.1 * d), across, down, 0.05)  # always skin
    head_centre = origin + d * (-0.2 * down)
    head = _ellipse(xy, head_centre, (1.9 * d, 1.95 * d), across, down, 0.1)
    # skin colour sampled on the cheeks; hair is whatever in the head differs from it
    chroma = x / x.sum(-1, keepdim=True).clamp(min=1e-3)
    cheeks = sum(
        _ellipse(
            xy,
            origin + d * (side * 0.45 * across + 0.55 * down),
            (0.14 * d, 0.12 * d),
            across,
            down,
            0.5,
        )
        for side in (-1.0, 1.0)
    )
    assert isinstance(cheeks, torch.Tensor)
    weights = cheeks.reshape(-1, 1)
    skin_chroma = (chroma.reshape(-1, 3) * weights).sum(0) / weights.sum().clamp(min=1e-6)
    skin_luma = float((luma.reshape(-1) * weights[:, 0]).sum() / weights.sum().clamp(min=1e-6))
    off_skin = (((chroma - skin_chroma).norm(dim=-1) - 0.02) / 0.04).clamp(0, 1)
    dark = ((skin_luma - 0.12 - luma) / 0.15).clamp(0, 1)
    mx, mn = x.max(-1).values, x.min(-1).values
    coloured = ((mx - mn) / mx.clamp(min=1e-3) - 0.1).div(0.1).clamp(0, 1)
    # hair: off the skin's colour (or much darker), more coloured than the grey backdrop
    hairlike = torch.maximum(off_skin * coloured, dark)
    brows = sum(
        _ellipse(
            xy,
            origin + d * (side * 0.5 * across - 0.32 * down),
            (0.3 * d, 0.12 * d),
            across,
            down,
            0.4,
        )
        for side in (-1.0, 1.0)
    )
    assert isinstance(brows, torch.Tensor)
    jaw = _ellipse(xy, origin + d * (0.95 * down), (1.0 * d, 0.95 * d), across, down, 0.1)
    # hair is a region, not a pixel test: smooth the test so lit strands grey with the rest
    k = max(3, int(d * 0.12) | 1)
    smooth = F.avg_pool2d(hairlike[None, None], k, stride=1, padding=k // 2)
    smooth = F.avg_pool2d(smooth, k, stride=1, padding=k // 2)[0, 0]
    hairlike = (smooth * 1.8).clamp(0, 1)
    hair = (head * (1 - core) * (1 - jaw) * hairlike).clamp(0, 1)
    grey_unit = 0.9 * hair + 0.6 * brows.clamp(0, 1) * dark
    # white-silver: lighter and neutral, keeping the strands' light and shade
    silver = (0.42 + 0.62 * luma).clamp(0, 1).unsqueeze(-1) * torch.tensor([0.98, 0.98, 1.0])

    # skin: less saturated, warmer, a little darker under the eyes, age spots
    bags = torch.zeros(h, w)
    for side in (-1.0, 1.0):
        bag = _ellipse(
            xy,
            origin + d * (side * 0.5 * across + 0.24 * down),
            (0.24 * d, 0.1 * d),
            across,
            down,
            0.8,
        )
        bags = torch.maximum(bags, bag)
    spots = torch.zeros(h, w)
    gen = torch.Generator().manual_seed(seed)
    for _ in range(14):
        u = float(torch.empty(1).uniform_(-0.85, 0.85, generator=gen))
        v = float(torch.empty(1).uniform_(-0.95, 1.2, generator=gen))
        if abs(u) < 0.35 and -0.1 < v < 1.1:  # keep the eyes, nose and mouth clear
            continue
        r = float(torch.empty(1).uniform_(0.025, 0.05, generator=gen))
        spot = _ellipse(xy, origin + d * (u * across + v * down), (r * d, r * d), across, down, 0.9)
        spots = torch.maximum(spots, spot)

    # lines: a dark groove with a lit edge just above it
    width = 0.034 * d
    dist_dark = torch.full((h, w), float("inf"))
    depth_at = torch.zeros(h, w)
    reach = 4 * width  # beyond this a groove is invisible: measure only near each line
    for pts, depth in _curves(mouth_u, mouth_v):
        px = _to_pixels(_densify(pts, step=0.25 * width / d), origin, across, down, d)
        x0 = max(int(px[:, 0].min() - reach), 0)
        x1 = min(int(px[:, 0].max() + reach) + 1, w)
        y0 = max(int(px[:, 1].min() - reach), 0)
        y1 = min(int(px[:, 1].max() + reach) + 1, h)
        if x1 <= x0 or y1 <= y0:
            continue
        box = xy[y0:y1, x0:x1].reshape(-1, 2)
        dist = torch.cdist(box, px).min(1).values.reshape(y1 - y0, x1 - x0)
        region = dist_dark[y0:y1, x0:x1]
        closer = dist < region
        dist_dark[y0:y1, x0:x1] = torch.where(closer, dist, region)
        depth_at[y0:y1, x0:x1] = torch.where(closer, depth, depth_at[y0:y1, x0:x1])
    groove = torch.exp(-((dist_dark / width) ** 2)) * depth_at
    lit_shift = torch.round(-down * width * 1.6).long()
    lit = torch.roll(groove, shifts=(int(lit_shift[1]), int(lit_shift[0])), dims=(0, 1))
    face_area = (skin + 0.6 * head * (1 - dark)).clamp(0, 1)

    out: list[np.ndarray] = []
    plate = x
    for strength in strengths:
        s = float(min(max(strength, 0.0), 1.0))
        if s == 0:
            out.append(np.array(image, copy=True))
            continue
        x = plate + (silver - plate) * (grey_unit * s).unsqueeze(-1)
        grey = x.mean(-1, keepdim=True)
        toned = grey + (x - grey) * (1 - 0.3 * s) + torch.tensor([0.025, 0.01, -0.03]) * s
        x = x + (toned - x) * skin.unsqueeze(-1)
        x = x * (1 - 0.16 * s * bags).unsqueeze(-1)
        x = x * (1 - 0.22 * s * spots * skin).unsqueeze(-1) + (
            torch.tensor([0.02, 0.005, -0.01]) * s * spots.unsqueeze(-1)
        )
        x = x * (1 - 0.38 * s * groove * face_area).unsqueeze(-1)
        x = x + (0.07 * s * lit * face_area * (1 - groove)).unsqueeze(-1)
        out.append((x.clamp(0, 1) * 255).round().to(torch.uint8).numpy())
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
