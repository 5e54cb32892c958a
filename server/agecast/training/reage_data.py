"""Training batches for ``agecast-reage``: the same face at several ages, blended per region,
with occluders, as (input, age maps, target, target mask).

The data is a footage faceset (the actor as filmed, at ``base_age``) and a faceset of the same
faces at several ages (``faceset age-synth``, or real pairs), linked face by face by
``pair_of``. A sample picks one face, an input age and a target age, and with even odds a
different target age per region (forehead, eyes, mouth, hair), blending the aged pictures by the
same soft region maps the live path uses for local age offsets: the model learns what a
per-pixel target age means.

Occluders (ellipses, bars, polygons and a hand-like silhouette, filled with flat colour, skin
tones, gradients or stripes) are pasted over input and target alike, and the target mask is
cut out under them: the model learns to leave a hand, a cup or hair in front of the face alone.
The ``textured`` style makes them harder: up to face-sized, hard or soft edged, and most often
skin (the face's own colour or any skin tone) lit unevenly, with fine texture, grain and
creases — what a model that knows skin could mistake for the face.
The mouth interior is cut out of the target mask too: teeth and tongue stay the plate's.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from torch.nn import functional as F

from agecast.errors import TrainError
from agecast.faces.regions import REGIONS, mouth_interior, region_maps
from agecast.nets.reage import AGE_SCALE
from agecast.training.data import face_mask
from agecast.training.faceset import Faceset


@dataclass(slots=True)
class AgedFaces:
    """Every face at every age: images (F,A,3,S,S) uint8, ages (A,) years, per-face maps."""

    images: torch.Tensor
    ages: torch.Tensor
    regions: torch.Tensor  # (F,R,S,S) float16
    keep: torch.Tensor  # (F,1,S,S) float16: face mask without the mouth interior
    files: list[str]  # the footage face of each row

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, idx: list[int]) -> AgedFaces:
        i = torch.tensor(idx, dtype=torch.long)
        return AgedFaces(
            self.images[i], self.ages, self.regions[i], self.keep[i], [self.files[j] for j in idx]
        )


def load_aged(aged: Faceset, footage: Faceset, resolution: int) -> AgedFaces:
    """Group ``aged`` by footage face: every footage face that has a picture at every age."""
    if aged.template != footage.template:
        raise TrainError(
            f"{aged.path} uses template {aged.template!r} but {footage.path} uses "
            f"{footage.template!r}: derive the aged faceset from this footage faceset"
        )
    by_face: dict[str, dict[float, int]] = {}
    for i, r in enumerate(aged.records):
        if r.pair_of is None or r.age is None:
            raise TrainError(
                f"{aged.path}: face {r.file} has no age or no pair_of; agecast-reage trains on "
                "the same face at several ages (`agecast faceset age-synth`, or real pairs)"
            )
        by_face.setdefault(r.pair_of, {})[float(r.age)] = i
    ages = sorted({a for faces in by_face.values() for a in faces})
    if len(ages) < 2:
        raise TrainError(f"{aged.path} holds one age ({ages}); re-ageing needs at least two")
    records = {r.file: r for r in footage.records}
    files = [f for f, at in by_face.items() if len(at) == len(ages) and f in records]
    if len(files) < 2:
        raise TrainError(
            f"{aged.path}: fewer than 2 faces of {footage.path} have a picture at every age "
            f"({', '.join(f'{a:g}' for a in ages)})"
        )
    scale = resolution / aged.size
    pics = []
    for f in files:
        row = np.stack([aged.image(by_face[f][a]) for a in ages])
        pics.append(torch.from_numpy(row).permute(0, 3, 1, 2))
    images = torch.stack(pics)
    if resolution != aged.size:
        n, a = images.shape[:2]
        flat = F.interpolate(images.flatten(0, 1).float(), size=resolution, mode="area")
        images = flat.round().clamp(0, 255).to(torch.uint8).reshape(n, a, 3, resolution, resolution)
    regions, keep = [], []
    for f in files:
        lm = torch.tensor(records[f].landmarks5, dtype=torch.float32) * scale
        regions.append(region_maps(lm, resolution).half())
        cut = face_mask(lm, resolution) * (1 - mouth_interior(lm, resolution))
        keep.append(cut.half())
    return AgedFaces(images, torch.tensor(ages), torch.stack(regions), torch.stack(keep), files)


@dataclass(slots=True)
class Batch:
    face: torch.Tensor  # (N,3,C,C) input
    age_maps: torch.Tensor  # (N,2,C,C) current, target (years / AGE_SCALE)
    target: torch.Tensor  # (N,3,C,C)
    mask: torch.Tensor  # (N,1,C,C) where the model may change the plate
    occluded: torch.Tensor  # (N,1,C,C) where an occluder covers the picture (0 without one)


@dataclass(frozen=True, slots=True)
class ReageAugment:
    crop: int = 128  # training window (the net is fully convolutional)
    rotate_deg: float = 8.0
    scale: float = 0.08
    brightness: float = 0.1
    contrast: float = 0.12
    saturation: float = 0.15
    local_p: float = 0.5  # share of samples with per-region target ages
    same_p: float = 0.12  # share with target age = input age (must change nothing)
    base_p: float = 0.6  # share whose input is the footage's own age (what runs live)
    occluder_p: float = 0.5
    occluder_style: OccluderStyle = "shapes"  # or "textured": large, lit, creased, skin-like

    def batch(self, data: AgedFaces, n: int, gen: torch.Generator) -> Batch:
        a = len(data.ages)
        size = data.images.shape[-1]
        fi = torch.randint(len(data), (n,), generator=gen)
        base = int(torch.argmin(data.ages))
        ii = torch.where(
            torch.rand(n, generator=gen) < self.base_p,
            torch.full((n,), base),
            torch.randint(a, (n,), generator=gen),
        )
        ji = torch.randint(a, (n,), generator=gen)
        ji = torch.where(torch.rand(n, generator=gen) < self.same_p, ii, ji)
        r = len(REGIONS)
        local = torch.rand(n, generator=gen) < self.local_p
        ki = torch.where(local[:, None], torch.randint(a, (n, r), generator=gen), ji[:, None])
        pics = data.images[fi].float() / 255  # (n,A,3,S,S)
        rows = torch.arange(n)
        inp = pics[rows, ii]
        tgt_global = pics[rows, ji]
        w = data.regions[fi].float()
        w = w / w.sum(1, keepdim=True).clamp(min=1.0)
        ages = data.ages.float()
        target = tgt_global.clone()
        tmap = ages[ji][:, None, None, None].expand(n, 1, size, size).clone()
        for k in range(r):
            wk = w[:, k : k + 1]
            target += wk * (pics[rows, ki[:, k]] - tgt_global)
            tmap += wk * (ages[ki[:, k]] - ages[ji])[:, None, None, None]
        cmap = ages[ii][:, None, None, None].expand(n, 1, size, size)
        keep = data.keep[fi].float()
        stack = torch.cat([inp, target, cmap / AGE_SCALE, tmap / AGE_SCALE, keep], 1)
        out = F.grid_sample(
            stack,
            self._grid(n, size, gen),
            mode="bilinear",
            padding_mode="border",
            align_corners=False,
        )
        inp, target, maps, keep = out[:, :3], out[:, 3:6], out[:, 6:8], out[:, 8:9]
        inp, target = self._colour(inp, target, gen)
        occ = self._occluders(inp, keep, gen)
        occluded = torch.zeros_like(keep)
        if occ is not None:
            shade, alpha = occ
            occluded = alpha
            inp = inp + (shade - inp) * alpha
            target = target + (shade - target) * alpha
            keep = keep * (1 - alpha)
        # outside the region the model may touch, the target is the input itself
        target = inp + (target - inp) * keep
        return Batch(inp, maps, target, keep, occluded)

    def _grid(self, n: int, size: int, gen: torch.Generator) -> torch.Tensor:
        """A rotated, scaled window of ``crop`` pixels somewhere over the face."""

        def uniform(span: float) -> torch.Tensor:
            return (torch.rand(n, generator=gen) * 2 - 1) * span

        frac = self.crop / size
        angle = uniform(math.radians(self.rotate_deg))
        scale = (1 + uniform(self.scale)) * frac
        flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
        room = max(0.0, 1 - frac) * 0.85
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = torch.cos(angle) * scale * flip
        theta[:, 0, 1] = -torch.sin(angle) * scale
        theta[:, 1, 0] = torch.sin(angle) * scale * flip
        theta[:, 1, 1] = torch.cos(angle) * scale
        theta[:, 0, 2] = uniform(room)
        theta[:, 1, 2] = uniform(room)
        return F.affine_grid(theta, [n, 1, self.crop, self.crop], align_corners=False)

    def _colour(
        self, a: torch.Tensor, b: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        n = a.shape[0]

        def uniform(span: float) -> torch.Tensor:
            return ((torch.rand(n, generator=gen) * 2 - 1) * span).reshape(n, 1, 1, 1)

        sat, con, bri = (
            1 + uniform(self.saturation),
            1 + uniform(self.contrast),
            uniform(self.brightness),
        )
        mean = a.mean((1, 2, 3), keepdim=True)

        def apply(x: torch.Tensor) -> torch.Tensor:
            grey = x.mean(1, keepdim=True)
            x = grey + (x - grey) * sat
            return ((x - mean) * con + mean + bri).clamp(0, 1)

        return apply(a), apply(b)

    def _occluders(
        self, inp: torch.Tensor, keep: torch.Tensor, gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        n, c = inp.shape[0], self.crop
        use = torch.rand(n, generator=gen) < self.occluder_p
        if not bool(use.any()):
            return None
        shade = torch.zeros(n, 3, c, c)
        alpha = torch.zeros(n, 1, c, c)
        # each face's own mean colour: the skin a textured occluder most often takes
        skin = (inp * keep).sum((2, 3)) / keep.sum((2, 3)).clamp(min=1.0)
        for i in use.nonzero().flatten().tolist():
            if self.occluder_style == "textured":
                shade[i], alpha[i] = textured_occluder(c, gen, skin[i])
            else:
                shade[i], alpha[i] = occluder(c, gen)
        return shade, alpha


def _rand(gen: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=gen))


def _capsule(
    xy: torch.Tensor, a: torch.Tensor, b: torch.Tensor, radius: float, soft: float
) -> torch.Tensor:
    ab = b - a
    t = (((xy - a) * ab).sum(-1) / (ab * ab).sum().clamp(min=1e-6)).clamp(0, 1)
    dist = torch.linalg.vector_norm(xy - (a + t[..., None] * ab), dim=-1)
    return ((radius - dist) / soft + 0.5).clamp(0, 1)


OccluderStyle = Literal["shapes", "textured"]
OCCLUDER_STYLES: tuple[OccluderStyle, ...] = ("shapes", "textured")
# skin from light to dark (0–1 RGB): textured occluders take skin tones along this line
_SKIN_LIGHT = torch.tensor([0.96, 0.8, 0.69])
_SKIN_DARK = torch.tensor([0.33, 0.21, 0.15])


def _shape(
    xy: torch.Tensor,
    size: int,
    gen: torch.Generator,
    scale: float = 1.0,
    soft_px: tuple[float, float] = (0.6, 2.5),
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """A random occluder outline (ellipse, bar, hand or polygon edge) at ``scale`` × its base
    size, its edge ``soft_px`` wide: (alpha (S,S), centre (2,), direction (2,))."""
    s = float(size)
    soft = _rand(gen, *soft_px)
    kind = int(torch.randint(4, (1,), generator=gen))
    centre = torch.tensor([_rand(gen, 0.1, 0.9) * s, _rand(gen, 0.1, 0.9) * s])
    angle = _rand(gen, 0, math.pi)
    direction = torch.tensor([math.cos(angle), math.sin(angle)])
    if kind == 0:  # ellipse: a cup, a microphone head
        rel = xy - centre
        across = torch.stack([-direction[1], direction[0]])
        u = (rel * direction).sum(-1) / (_rand(gen, 0.08, 0.3) * scale * s)
        v = (rel * across).sum(-1) / (_rand(gen, 0.05, 0.2) * scale * s)
        alpha = ((1 - torch.sqrt(u * u + v * v)) * 8 / soft).clamp(0, 1)
    elif kind == 1:  # bar: a finger, a pen, a strand of hair, a boom pole
        half = direction * _rand(gen, 0.2, 0.8) * s
        radius = _rand(gen, 0.01, 0.08) * scale * s
        alpha = _capsule(xy, centre - half, centre + half, radius, soft)
    elif kind == 2:  # hand: a palm and four or five fingers
        palm_r = _rand(gen, 0.1, 0.18) * scale * s
        alpha = _capsule(xy, centre, centre - direction * palm_r * 0.6, palm_r, soft)
        across = torch.stack([-direction[1], direction[0]])
        for f in range(int(torch.randint(4, 6, (1,), generator=gen))):
            base = centre + direction * palm_r * 0.6 + across * (f - 1.5) * palm_r * 0.45
            tip = base + (direction + across * _rand(gen, -0.25, 0.25)) * palm_r * _rand(
                gen, 0.9, 1.6
            )
            finger = _capsule(xy, base, tip, palm_r * 0.18, soft)
            alpha = torch.maximum(alpha, finger)
    else:  # a polygon: a prop's edge entering the frame
        normal = direction
        offset = ((xy - centre) * normal).sum(-1)
        alpha = (offset / soft + 0.5).clamp(0, 1)
        second = torch.tensor([math.cos(angle + 1.2), math.sin(angle + 1.2)])
        alpha = alpha * (((xy - centre) * second).sum(-1) / soft + 0.5).clamp(0, 1)
    return alpha, centre, direction


def occluder(size: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One random occluder: (shade (3,S,S), alpha (1,S,S)) — ellipse, bar, hand or polygon."""
    xy = _pixel_grid(size)
    s = float(size)
    alpha, centre, direction = _shape(xy, size, gen)
    fill = int(torch.randint(4, (1,), generator=gen))
    colour = torch.rand(3, 1, 1, generator=gen)
    if torch.rand(1, generator=gen) < 0.45:  # skin tones: the hard case, a hand like the face
        colour = torch.tensor([0.55, 0.38, 0.3]).reshape(3, 1, 1) * _rand(gen, 0.6, 1.6)
    shade = colour.expand(3, size, size).clone()
    if fill == 2:  # a gradient (a lit, rounded object)
        ramp = ((xy - centre) * direction).sum(-1) / s
        shade = shade * (1 + ramp * _rand(gen, -1, 1))[None]
    elif fill == 3:  # stripes (fabric, hair)
        ramp = ((xy - centre) * direction).sum(-1)
        stripes = torch.sin(ramp * _rand(gen, 0.2, 1.5)) * _rand(gen, 0.05, 0.25)
        shade = shade + stripes[None]
    return shade.clamp(0, 1), alpha[None]


def textured_occluder(
    size: int, gen: torch.Generator, skin: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """One random occluder as something in front of a face really looks: (shade (3,S,S),
    alpha (1,S,S)).

    Against :func:`occluder`: up to two and a half times the size (a hand is about a face
    wide), edges from aliased to soft, and a fill that is most often skin — the face's own
    colour ``skin`` (3,) or a tone anywhere from light to dark skin — lit by a smooth random
    field, with a random fine texture (waves, grain) and creases: the texture a face model
    could take for skin, which it must still leave alone.
    """
    xy = _pixel_grid(size)
    alpha, _, _ = _shape(xy, size, gen, scale=_rand(gen, 1.0, 2.5), soft_px=(0.3, 2.0))
    pick = _rand(gen)
    if pick < 0.4:  # the face's own colour: the hardest case
        colour = skin * (1 + (torch.rand(3, generator=gen) * 2 - 1) * 0.04) * _rand(gen, 0.85, 1.2)
    elif pick < 0.75:
        tone = _rand(gen)
        colour = (_SKIN_LIGHT + (_SKIN_DARK - _SKIN_LIGHT) * tone) * _rand(gen, 0.9, 1.1)
    else:
        colour = torch.rand(3, generator=gen)
    shade = colour.reshape(3, 1, 1).expand(3, size, size).clone()
    cells = int(torch.randint(2, 8, (1,), generator=gen))
    light = torch.rand(1, 1, cells, cells, generator=gen) * 2 - 1
    light = F.interpolate(light, size=(size, size), mode="bicubic", align_corners=False)[0]
    shade = shade * (1 + _rand(gen, 0.05, 0.35) * light)
    if _rand(gen) < 0.6:  # a fine texture: crossed waves at a random period and orientation
        turn = _rand(gen, 0, math.pi)
        u = xy[..., 0] * math.cos(turn) + xy[..., 1] * math.sin(turn)
        v = xy[..., 1] * math.cos(turn) - xy[..., 0] * math.sin(turn)
        waves = torch.sin(u / _rand(gen, 2.0, 20.0) + _rand(gen, 0, 6.3)) * torch.cos(
            v / _rand(gen, 2.0, 20.0) + _rand(gen, 0, 6.3)
        )
        shade = shade * (1 + _rand(gen, 0.03, 0.2) * waves)[None]
    for _ in range(int(torch.randint(0, 6, (1,), generator=gen))):  # creases: thin dark lines
        a = torch.tensor([_rand(gen) * size, _rand(gen) * size])
        turn = _rand(gen, 0, 2 * math.pi)
        b = a + torch.tensor([math.cos(turn), math.sin(turn)]) * _rand(gen, 0.05, 0.4) * size
        line = _capsule(xy, a, b, _rand(gen, 0.3, 1.2), 1.0)
        shade = shade * (1 - _rand(gen, 0.1, 0.4) * line)[None]
    grain = torch.randn(3, size, size, generator=gen) * _rand(gen, 0.0, 0.03)
    return (shade + grain).clamp(0, 1), alpha[None]


def _pixel_grid(size: int) -> torch.Tensor:
    """(S,S,2): every pixel's (x, y)."""
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32),
        torch.arange(size, dtype=torch.float32),
        indexing="ij",
    )
    return torch.stack([xs, ys], -1)
