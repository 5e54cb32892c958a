"""One-Euro: steadies a still point, follows a moving one."""

from __future__ import annotations

import itertools
import math
from typing import Literal

import pytest
import torch

from agecast.faces.smoothing import OneEuroFilter

FPS = 30.0


def _mean_step(points: list[torch.Tensor]) -> float:
    steps = [float((b - a).norm(dim=-1).mean()) for a, b in itertools.pairwise(points)]
    return sum(steps) / len(steps)


def test_reduces_jitter_on_a_noisy_still() -> None:
    generator = torch.Generator().manual_seed(0)
    still = torch.tensor(
        [[200.0, 100.0], [250.0, 102.0], [225.0, 127.0], [205.0, 140.0], [245.0, 141.0]]
    )
    raw = [still + torch.randn(5, 2, generator=generator) * 0.5 for _ in range(90)]
    modes: tuple[tuple[Literal["element", "rigid"], float], ...] = (
        ("element", 3.0),
        ("rigid", 5.0),
    )
    for speed, gain in modes:
        smoother = OneEuroFilter(speed=speed)
        smoothed = [smoother(x, i / FPS) for i, x in enumerate(raw)]
        assert _mean_step(smoothed[10:]) < _mean_step(raw[10:]) / gain, speed
        error = sum(float((s - still).norm(dim=1).mean()) for s in smoothed[10:]) / 80
        assert error < 0.35, speed  # a single raw sample is ≈ 0.63 px off


@pytest.mark.parametrize("speed", [30.0, 300.0, 1500.0])  # pixels per second
@pytest.mark.parametrize("mode", ["element", "rigid"])
def test_little_lag_on_a_ramp(speed: float, mode: Literal["element", "rigid"]) -> None:
    smoother = OneEuroFilter(speed=mode)
    start = torch.tensor([[100.0, 200.0], [150.0, 210.0]])
    out = torch.zeros(2, 2)
    for i in range(60):
        truth = start + torch.tensor([[speed * i / FPS, 0.0]])
        out = smoother(truth, i / FPS)
    lag = float((truth[:, 0] - out[:, 0]).max())
    assert 0 <= lag < 1.0  # bounded by 1 / (2π·beta) ≈ 0.8 px at any speed
    plain = OneEuroFilter(beta=0.0, speed=mode)  # a fixed low-pass lags far more
    for i in range(60):
        truth = start + torch.tensor([[speed * i / FPS, 0.0]])
        out = plain(truth, i / FPS)
    assert float((truth[:, 0] - out[:, 0]).min()) > 5 * lag


def test_rigid_speed_follows_a_turn_in_place() -> None:
    # landmarks turning ±15° at 1 Hz about their centre: no net shift, yet little lag
    base = torch.tensor([[-22.0, -10.0], [22.0, -8.0], [0.0, 8.0], [-18.0, 30.0], [18.0, 30.0]])
    smoother = OneEuroFilter(speed="rigid")
    errors = []
    for i in range(60):
        angle = math.radians(15 * math.sin(2 * math.pi * i / FPS))
        turn = torch.tensor(
            [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
        )
        truth = base @ turn.T + 300.0
        errors.append(float((smoother(truth, i / FPS) - truth).norm(dim=1).mean()))
    assert max(errors[10:]) < 1.5
    with pytest.raises(ValueError, match="N×2"):
        smoother(torch.zeros(5), 3.0)


def test_first_value_passes_and_time_must_advance() -> None:
    smoother = OneEuroFilter()
    first = torch.tensor([1.0, 2.0])
    torch.testing.assert_close(smoother(first, 0.0), first)
    torch.testing.assert_close(smoother(torch.tensor([50.0, 50.0]), 0.0), first)
    with pytest.raises(ValueError, match="shape"):
        smoother(torch.zeros(3), 1.0)
    smoother.reset()
    torch.testing.assert_close(smoother(torch.zeros(3), 1.0), torch.zeros(3))


def test_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError):
        OneEuroFilter(min_cutoff=0.0)
    with pytest.raises(ValueError):
        OneEuroFilter(beta=-1.0)
