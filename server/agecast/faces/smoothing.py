"""One-Euro filter (Casiez, Roussel & Vogel, CHI 2012) over tensors.

A low-pass filter whose cutoff rises with speed: a still face is smoothed hard (no jitter), a
moving face is barely smoothed (no lag). Units here are pixels and seconds, so ``min_cutoff``
is in Hz and ``beta`` in Hz per (pixel/second).

For landmarks, ``speed="rigid"`` reads the speed that sets the cutoff from a similarity motion
(shift, turn, zoom) fitted to the points' velocities: four numbers from ten, so sensor noise
hardly raises the cutoff of a still face, while a face that turns or zooms in place still gets
its own (fitted) speed.

Defaults (0.5 Hz, beta 0.2, d_cutoff 2 Hz, tuned on YuNet landmarks of the astronaut at 720p,
30 fps): a still face with σ 6 sensor noise jitters 8× less (0.26 → 0.031 px/frame); a face
swaying at up to ≈ 700 px/s keeps its raw accuracy (3.90 vs 3.94 px mean eye error), at up to
≈ 1400 px/s nearly so (4.27 vs 4.18 px, max 9.1 vs 8.9); landmarks turning ±15° in place at
1 Hz lag 0.53 px on average (max 1.0). d_cutoff 1 Hz steadies a still face more (0.026) but
lags 15 px at the fastest sway; textbook per-element speed jitters 0.030–0.036 for the same lag.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch

from agecast.errors import check_literal

Speed = Literal["element", "rigid"]  # what sets the cutoff: each value's speed or the rigid motion


def _alpha(cutoff: torch.Tensor | float, dt: float) -> torch.Tensor | float:
    """Smoothing factor of a first-order low-pass at ``cutoff`` Hz sampled every ``dt`` s."""
    tau = 1.0 / (2.0 * math.pi * cutoff)
    return 1.0 / (1.0 + tau / dt)


def rigid_speed(points: torch.Tensor, velocity: torch.Tensor) -> torch.Tensor:
    """Per-point speed (N×1) of the similarity motion that best explains ``velocity`` (N×2)."""
    offsets = points - points.mean(0)
    shift = velocity.mean(0)
    rest = velocity - shift
    spread = float((offsets**2).sum())
    fitted: torch.Tensor
    if spread < 1e-9:
        fitted = shift.expand_as(velocity)
    else:
        zoom = float((offsets * rest).sum()) / spread
        turn = float((offsets[:, 0] * rest[:, 1] - offsets[:, 1] * rest[:, 0]).sum()) / spread
        perpendicular = torch.stack([-offsets[:, 1], offsets[:, 0]], dim=1)
        fitted = shift + zoom * offsets + turn * perpendicular
    speed: torch.Tensor = fitted.norm(dim=1, keepdim=True)
    return speed


@dataclass(eq=False)  # a filter is its own state: compared by identity
class OneEuroFilter:
    """Filters a stream of same-shaped tensors (e.g. 5×2 landmarks) stamped in seconds.

    ``speed="element"``: each element's cutoff follows its own speed. ``speed="rigid"``: for
    N×2 points, the cutoff follows a fitted similarity motion (see the module notes). A
    repeated or backwards timestamp returns the previous output unchanged.
    """

    min_cutoff: float = 0.5
    beta: float = 0.2
    d_cutoff: float = 2.0
    speed: Speed = field(default="element", kw_only=True)
    _value: torch.Tensor | None = field(default=None, init=False, repr=False)
    _velocity: torch.Tensor | None = field(default=None, init=False, repr=False)
    _t: float | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.min_cutoff <= 0 or self.d_cutoff <= 0 or self.beta < 0:
            raise ValueError("min_cutoff and d_cutoff must be > 0 and beta >= 0")
        check_literal("speed", self.speed, Speed)

    def reset(self) -> None:
        self._value = self._velocity = None
        self._t = None

    def __call__(self, value: torch.Tensor, t_s: float) -> torch.Tensor:
        x = value.detach().to(torch.float32)
        if self.speed == "rigid" and (x.ndim != 2 or x.shape[1] != 2):
            raise ValueError(f"speed='rigid' filters N×2 points, got shape {tuple(x.shape)}")
        if self._value is None or self._t is None or self._velocity is None:
            self._value, self._velocity, self._t = x.clone(), torch.zeros_like(x), t_s
            return x.clone()
        if x.shape != self._value.shape:
            raise ValueError(f"filter holds shape {tuple(self._value.shape)}, got {tuple(x.shape)}")
        dt = t_s - self._t
        if dt <= 0:
            return self._value.clone()
        raw_velocity = (x - self._value) / dt
        self._velocity = self._velocity + _alpha(self.d_cutoff, dt) * (
            raw_velocity - self._velocity
        )
        if self.speed == "rigid":
            speed = rigid_speed(self._value, self._velocity)
        else:
            speed = self._velocity.abs()
        cutoff = self.min_cutoff + self.beta * speed
        self._value = self._value + _alpha(cutoff, dt) * (x - self._value)
        self._t = t_s
        return self._value.clone()
