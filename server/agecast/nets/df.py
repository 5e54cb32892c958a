"""The agecast identity model family: a DF-style autoencoder with a continuous age input.

One shared encoder and one shared inter block turn an aligned face crop into a latent that
holds pose, expression and lighting. Two decoders turn a latent back into a face and a mask:
``dst`` learns the footage's faces (the actor as filmed), ``src`` learns the identity (the actor
at the target age). Swapping is ``src_decoder(inter(encoder(dst_face)))``: the footage's pose and
expression, drawn as the identity.

The ``src`` decoder is conditioned on a continuous age (0–1 over the identity's trained age
range) by FiLM: each decoder stage scales and shifts its channels by amounts learnt from the age.
One identity then covers every age between its youngest and oldest training faces, and the
operator turns a knob on set rather than switching models.

Only the encoder, inter and ``src`` decoder are exported (``SwapNet``); the ``dst`` decoder exists
to make the shared latent describe the footage and is dropped after training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

FAMILY = "agecast-df"


@dataclass(frozen=True, slots=True)
class ModelConfig:
    resolution: int = 128  # crop side in pixels, a multiple of 16 in 128–320
    encoder_dims: int = 32  # channels of the first encoder stage; doubled at each of 4 stages
    decoder_dims: int = 24  # channels of the last decoder stage; doubled towards the latent
    age: bool = True  # the src decoder takes a continuous age

    def __post_init__(self) -> None:
        if not 64 <= self.resolution <= 320 or self.resolution % 16:
            raise ValueError(
                f"resolution {self.resolution}: use a multiple of 16 between 64 and 320"
            )
        if self.encoder_dims < 4 or self.decoder_dims < 4:
            raise ValueError("encoder_dims and decoder_dims must be at least 4")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelConfig:
        return cls(**data)


def _act(x: torch.Tensor) -> torch.Tensor:
    return F.leaky_relu(x, 0.1)


class Down(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 5, stride=2, padding=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _act(self.conv(x))


class Residual(nn.Module):
    def __init__(self, ch: int) -> None:
        super().__init__()
        self.a = nn.Conv2d(ch, ch, 3, padding=1)
        self.b = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _act(x + self.b(_act(self.a(x))))


class Up(nn.Module):
    """×2 by sub-pixel convolution (conv to 4× channels, then pixel shuffle)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout * 4, 3, padding=1)
        self.shuffle = nn.PixelShuffle(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _act(self.shuffle(self.conv(x)))


class Encoder(nn.Module):
    """R×R×3 → (R/16)×(R/16)×8·dims."""

    def __init__(self, dims: int) -> None:
        super().__init__()
        self.stages = nn.Sequential(
            Down(3, dims), Down(dims, dims * 2), Down(dims * 2, dims * 4), Down(dims * 4, dims * 8)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.stages(x * 2 - 1)  # 0–1 in, centred for the first convolution


class Inter(nn.Module):
    """Shared latent: squeeze through a narrow bottleneck, then widen again."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.squeeze = nn.Conv2d(cin, cin // 4, 1)
        self.widen = nn.Conv2d(cin // 4, cout, 3, padding=1)
        self.res = Residual(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.res(_act(self.widen(_act(self.squeeze(x)))))


class Decoder(nn.Module):
    """Latent → face (3 channels, 0–1) and mask (1 channel, 0–1), optionally age-conditioned."""

    def __init__(self, cin: int, dims: int, age: bool) -> None:
        super().__init__()
        widths = [dims * 8, dims * 4, dims * 2, dims]
        ups: list[nn.Module] = []
        res: list[nn.Module] = []
        prev = cin
        for i, w in enumerate(widths):
            ups.append(Up(prev, w))
            # residual refinement at the coarse stages only: the fine ones are costly at full size
            res.append(Residual(w) if i < 3 else nn.Identity())
            prev = w
        self.ups = nn.ModuleList(ups)
        self.res = nn.ModuleList(res)
        self.widths = widths
        self.film = (
            nn.Sequential(nn.Linear(1, 64), nn.LeakyReLU(0.1), nn.Linear(64, 2 * sum(widths)))
            if age
            else None
        )
        if self.film is not None:  # start as the identity transform: no age effect until learnt
            last = self.film[-1]
            assert isinstance(last, nn.Linear)
            nn.init.zeros_(last.weight)
            nn.init.zeros_(last.bias)
        self.out = nn.Conv2d(prev, 4, 3, padding=1)

    def forward(
        self, z: torch.Tensor, age: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        film: list[torch.Tensor] = []
        if self.film is not None:
            if age is None:
                raise ValueError("this decoder is age-conditioned: pass an age (N,1) in 0–1")
            film = list(torch.split(self.film(age.reshape(-1, 1)), [w for w in self.widths] * 2, 1))
        x = z
        for i, (up, res) in enumerate(zip(self.ups, self.res, strict=True)):
            x = up(x)
            if film:
                gamma = film[i].reshape(x.shape[0], -1, 1, 1)
                beta = film[len(self.widths) + i].reshape(x.shape[0], -1, 1, 1)
                x = x * (1 + gamma) + beta
            x = res(x)
        y = torch.sigmoid(self.out(x))
        return y[:, :3], y[:, 3:]


class AgeNet(nn.Module):
    """The whole trainable model: shared encoder + inter, src and dst decoders."""

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        latent = config.encoder_dims * 8
        self.encoder = Encoder(config.encoder_dims)
        self.inter = Inter(latent, latent)
        self.src = Decoder(latent, config.decoder_dims, config.age)
        self.dst = Decoder(latent, config.decoder_dims, age=False)

    def latent(self, x: torch.Tensor) -> torch.Tensor:
        return self.inter(self.encoder(x))

    def swap(
        self, x: torch.Tensor, age: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.src(self.latent(x), age)


class SwapNet(nn.Module):
    """What ships: footage crop (N,3,R,R, 0–1 RGB) [+ age (N,1), 0–1] → face, mask."""

    def __init__(self, net: AgeNet) -> None:
        super().__init__()
        self.config = net.config
        self.encoder = net.encoder
        self.inter = net.inter
        self.src = net.src

    def forward(
        self, face: torch.Tensor, age: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        return self.src(self.inter(self.encoder(face)), age)

    @classmethod
    def from_state(cls, config: ModelConfig, state: dict[str, torch.Tensor]) -> SwapNet:
        """Rebuild from ``state_dict()`` of a SwapNet (as stored in an identity package)."""
        net = cls(AgeNet(config))
        net.load_state_dict(state)
        return net.eval()


def parameter_count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
