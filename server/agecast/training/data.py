"""Training batches: facesets as tensors, target masks, and augmentation.

Every crop in a faceset is aligned to the same template as the live path, so a face's five
landmarks sit near the template's points. Masks are drawn from each face's own landmarks: an
ellipse that covers the face and the hair, the region an identity owns (hair greys with age).

Augmentation (all batched, on the training device):
- a random similarity (rotation, scale, shift) applied to input and target alike, so the model
  learns the alignment jitter it will see live;
- a random smooth warp of the input only, so the model learns to draw a face rather than copy
  pixels (the "random warp" of DeepFaceLab-style training);
- colour (brightness, contrast, saturation) applied to input and target alike, so the model
  carries the footage's lighting through instead of learning one grade;
- a horizontal flip of both.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from agecast.training.faceset import Faceset


@dataclass(slots=True)
class FaceTensors:
    """A faceset at training resolution: images (N,3,R,R) 0–1, masks (N,1,R,R), ages (N,)."""

    images: torch.Tensor
    masks: torch.Tensor
    ages: torch.Tensor  # NaN where the faceset records no age
    files: list[str]

    def __len__(self) -> int:
        return self.images.shape[0]

    def subset(self, idx: list[int]) -> FaceTensors:
        index = torch.tensor(idx, dtype=torch.long)
        return FaceTensors(
            self.images[index], self.masks[index], self.ages[index], [self.files[i] for i in idx]
        )


def face_mask(landmarks5: torch.Tensor, size: int, soft: float = 0.08) -> torch.Tensor:
    """(1,size,size) soft ellipse over face, forehead and hairline from 5 points in crop pixels."""
    pts = landmarks5.float()
    eyes = (pts[0] + pts[1]) / 2
    mouth = (pts[3] + pts[4]) / 2
    d = torch.linalg.vector_norm(pts[1] - pts[0]).clamp(min=1.0)
    up = (eyes - mouth) / torch.linalg.vector_norm(eyes - mouth).clamp(min=1.0)
    top = eyes + up * 1.9 * d  # the top of the hair: greying hair is part of ageing
    bottom = mouth - up * 0.8 * d  # below the chin
    centre = (top + bottom) / 2
    half_h = torch.linalg.vector_norm(top - bottom) / 2
    half_w = 1.6 * d  # the hair at the sides
    ys, xs = torch.meshgrid(
        torch.arange(size, dtype=torch.float32) + 0.5,
        torch.arange(size, dtype=torch.float32) + 0.5,
        indexing="ij",
    )
    dx, dy = xs - centre[0], ys - centre[1]
    # rotate into the face's frame: v along "up", u across
    u = dx * -up[1] + dy * up[0]
    v = dx * up[0] + dy * up[1]
    r = torch.sqrt((u / half_w) ** 2 + (v / half_h) ** 2)
    return ((1 - r) / soft).clamp(0, 1).unsqueeze(0)


def load_faces(faceset: Faceset, resolution: int) -> FaceTensors:
    """Every face of ``faceset`` resized to ``resolution`` with its mask and age."""
    images = torch.from_numpy(np.ascontiguousarray(faceset.images())).permute(0, 3, 1, 2)
    images = images.float() / 255
    scale = resolution / faceset.size
    if resolution != faceset.size:
        images = F.interpolate(images, size=(resolution, resolution), mode="area")
    masks = torch.stack(
        [
            face_mask(torch.tensor(r.landmarks5, dtype=torch.float32) * scale, resolution)
            for r in faceset.records
        ]
    )
    ages = torch.tensor(
        [math.nan if r.age is None else float(r.age) for r in faceset.records],
        dtype=torch.float32,
    )
    return FaceTensors(images.contiguous(), masks, ages, [r.file for r in faceset.records])


@dataclass(frozen=True, slots=True)
class AugmentDraw:
    """One batch's random choices, so paired images (a footage face and its aged target) can be
    augmented identically."""

    theta: torch.Tensor  # (n,2,3) affine_grid matrices
    warp: torch.Tensor  # (n,R,R,2) input-only offsets
    brightness: torch.Tensor  # (n,1,1,1)
    contrast: torch.Tensor
    saturation: torch.Tensor


@dataclass(frozen=True, slots=True)
class Augment:
    rotate_deg: float = 8.0
    scale: float = 0.05
    shift: float = 0.03
    warp: float = 0.025  # input-only smooth warp, fraction of the crop
    brightness: float = 0.1
    contrast: float = 0.1
    saturation: float = 0.15
    flip: bool = True

    def draw(self, n: int, size: int, gen: torch.Generator) -> AugmentDraw:
        def uniform(*shape: int, span: float) -> torch.Tensor:
            return (torch.rand(*shape, generator=gen) * 2 - 1) * span

        angle = uniform(n, span=math.radians(self.rotate_deg))
        scale = 1 + uniform(n, span=self.scale)
        tx, ty = uniform(n, span=self.shift * 2), uniform(n, span=self.shift * 2)
        flip = torch.where(torch.rand(n, generator=gen) < 0.5, -1.0, 1.0)
        if not self.flip:
            flip = torch.ones(n)
        cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
        theta = torch.zeros(n, 2, 3)
        theta[:, 0, 0] = cos * flip
        theta[:, 0, 1] = -sin
        theta[:, 1, 0] = sin * flip
        theta[:, 1, 1] = cos
        theta[:, 0, 2] = tx
        theta[:, 1, 2] = ty
        coarse = uniform(n, 2, 5, 5, span=self.warp * 2)
        coarse[:, :, [0, -1], :] = 0  # keep the border still
        coarse[:, :, :, [0, -1]] = 0
        warp = F.interpolate(coarse, size=(size, size), mode="bicubic", align_corners=True)
        return AugmentDraw(
            theta,
            warp.permute(0, 2, 3, 1),
            uniform(n, 1, 1, 1, span=self.brightness),
            1 + uniform(n, 1, 1, 1, span=self.contrast),
            1 + uniform(n, 1, 1, 1, span=self.saturation),
        )

    @staticmethod
    def _colour(x: torch.Tensor, d: AugmentDraw) -> torch.Tensor:
        grey = x.mean(1, keepdim=True)
        x = grey + (x - grey) * d.saturation.to(x.device)
        mean = x.mean((1, 2, 3), keepdim=True)
        x = (x - mean) * d.contrast.to(x.device) + mean + d.brightness.to(x.device)
        return x.clamp(0, 1)

    def apply(
        self, d: AugmentDraw, images: torch.Tensor, masks: torch.Tensor, *, warp: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(warped input, target, target mask) for a batch of 0–1 images and their masks."""
        n, _, size, _ = images.shape
        grid = F.affine_grid(d.theta.to(images.device), [n, 3, size, size], align_corners=False)
        both = torch.cat([self._colour(images, d), masks], 1)
        out = F.grid_sample(both, grid, padding_mode="border", align_corners=False)
        target, target_mask = out[:, :3], out[:, 3:]
        if not warp or self.warp <= 0:
            return target, target, target_mask
        warped = F.grid_sample(
            both[:, :3], grid + d.warp.to(images.device), padding_mode="border", align_corners=False
        )
        return warped, target, target_mask
