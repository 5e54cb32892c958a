"""The ``agecast-reage`` model family: re-ageing the same actor by a delta on the plate.

After Disney's FRAN (*Production-Ready Face Re-Aging for Visual Effects*, 2022): a U-Net takes
the plate's aligned face and two per-pixel age maps (the face's current age and the wanted age,
in years / 100) and outputs an RGB **delta** and a mask. The aged face is the plate plus the
masked delta, so every detail the plate has (skin texture, eyes, teeth, grain) survives and only
what ageing changes is learnt. Paste-back adds the delta to the frame itself, so the plate is
never resampled.

Kept cheap enough for a live 256 px crop on a CPU:
- the trunk runs at half resolution: the input is pixel-unshuffled (2×2 → channels) and the
  output pixel-shuffled back, so the delta still has full-resolution detail;
- downsampling is blur-pooling (a binomial low-pass before the stride), which keeps the output
  steady as the face moves by sub-pixel amounts: drawn wrinkles do not shimmer;
- plain 3×3 convolutions with few channels (16-32-64-96 by default), which ONNX Runtime fuses.

A per-pixel target-age map gives local control: the eyes or the forehead can be given another
age than the rest (``agecast.faces.regions``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

FAMILY = "agecast-reage"
AGE_SCALE = 100.0  # age maps hold years / AGE_SCALE
_WIDTHS = (1, 2, 4, 6)  # channel multipliers of the four levels
MASK_FLOOR = 0.03


@dataclass(frozen=True, slots=True)
class ReageConfig:
    resolution: int = 256  # crop side in pixels, a multiple of 32 in 128–1024
    dims: int = 16  # channels of the first (half-resolution) level

    def __post_init__(self) -> None:
        if not 128 <= self.resolution <= 1024 or self.resolution % 32:
            raise ValueError(
                f"resolution {self.resolution}: use a multiple of 32 between 128 and 1024"
            )
        if self.dims < 4:
            raise ValueError("dims must be at least 4")

    def to_dict(self) -> dict[str, Any]:
        return {"family": FAMILY, **asdict(self)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReageConfig:
        return cls(**{k: v for k, v in data.items() if k != "family"})


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


class BlurPool(nn.Module):
    """Anti-aliased ×½: a [1 2 1]² binomial blur per channel, then stride 2."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        k = torch.tensor([1.0, 2.0, 1.0])
        kernel = (k[:, None] * k[None, :]) / 16
        self.register_buffer("kernel", kernel.expand(channels, 1, 3, 3).contiguous())
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        kernel = self.kernel
        assert isinstance(kernel, torch.Tensor)
        return F.conv2d(x, kernel, stride=2, padding=1, groups=self.channels)


class Block(nn.Module):
    """Two 3×3 convolutions."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(cin, cout, 3, padding=1)
        self.b = nn.Conv2d(cout, cout, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _act(self.b(_act(self.a(x))))


class ReageNet(nn.Module):
    """face (N,3,S,S, 0–1 RGB), age_maps (N,2,S,S: current, target; years/100)
    → face_out (N,3,S,S) = plate + delta·mask, delta (N,3,S,S, −1–1), mask (N,1,S,S, 0–1)."""

    def __init__(self, config: ReageConfig) -> None:
        super().__init__()
        self.config = config
        w = [config.dims * m for m in _WIDTHS]
        self.enc = nn.ModuleList(
            [Block(5 * 4, w[0]), Block(w[0], w[1]), Block(w[1], w[2]), Block(w[2], w[3])]
        )
        self.pool = nn.ModuleList([BlurPool(w[0]), BlurPool(w[1]), BlurPool(w[2])])
        self.dec = nn.ModuleList(
            [Block(w[3] + w[2], w[2]), Block(w[2] + w[1], w[1]), Block(w[1] + w[0], w[0])]
        )
        self.out = nn.Conv2d(w[0], 4 * 4, 3, padding=1)
        # start as "no change": a zero delta and a half-open mask
        nn.init.zeros_(self.out.weight)
        assert self.out.bias is not None
        nn.init.zeros_(self.out.bias)

    def forward(
        self, face: torch.Tensor, age_maps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # centre the inputs: faces to −1–1, ages (≈ 0.2–0.9) around 0
        x = torch.cat([face * 2 - 1, (age_maps - 0.5) * 4], 1)
        x = F.pixel_unshuffle(x, 2)
        skips: list[torch.Tensor] = []
        for i, block in enumerate(self.enc):
            if i:
                x = self.pool[i - 1](x)
            x = block(x)
            skips.append(x)
        x = skips.pop()
        for block in self.dec:
            skip = skips.pop()
            x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = block(torch.cat([x, skip], 1))
        y = F.pixel_shuffle(self.out(x), 2)
        delta = torch.tanh(y[:, :3])
        # below MASK_FLOOR the mask is exactly 0: what the model leaves alone (an occluder, the
        # background) stays bit-exact instead of taking a sliver of the delta
        mask = (torch.sigmoid(y[:, 3:]) - MASK_FLOOR).clamp(min=0) / (1 - MASK_FLOOR)
        face_out = (face + delta * mask).clamp(0, 1)
        return face_out, delta, mask

    @classmethod
    def from_state(cls, config: ReageConfig, state: dict[str, torch.Tensor]) -> ReageNet:
        net = cls(config)
        net.load_state_dict(state)
        return net.eval()


def constant_age_maps(
    n: int, size: int, current: float, target: float, device: torch.device | None = None
) -> torch.Tensor:
    """(N,2,S,S) maps of one current and one target age (years) over the whole crop."""
    maps = torch.empty(n, 2, size, size, device=device)
    maps[:, 0] = current / AGE_SCALE
    maps[:, 1] = target / AGE_SCALE
    return maps
