"""Fixtures for the faces room: the astronaut photo, hand-labelled truth, the bundled detector."""

from __future__ import annotations

import math
from collections.abc import Callable

import cv2
import numpy as np
import pytest
import skimage.data
import torch

from agecast.faces.yunet import YuNetDetector
from agecast.inference import get_backend
from agecast.inference.base import Backend

# Iris centres of skimage.data.astronaut() (512×512), labelled by hand from a 16× zoom: left
# eye (image left) then right eye, pixel centres at integer coordinates.
ASTRONAUT_EYES = ((202.5, 100.5), (246.5, 102.5))
# Rougher labels (±2 px): nose tip, left and right mouth corners.
ASTRONAUT_NOSE_MOUTH = ((224.5, 127.0), (203.0, 139.0), (244.0, 141.0))
FRAME_HW = (720, 1280)


@pytest.fixture(scope="session")
def astronaut() -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(skimage.data.astronaut()))  # type: ignore[no-untyped-call]


@pytest.fixture(scope="session")
def eyes() -> torch.Tensor:
    return torch.tensor(ASTRONAUT_EYES, dtype=torch.float32)


@pytest.fixture(scope="session")
def backend() -> Backend:
    return get_backend("onnxruntime", threads=2)


@pytest.fixture(scope="session")
def yunet(backend: Backend) -> YuNetDetector:
    return YuNetDetector(backend)


def placement(scale: float, angle_deg: float, centre: tuple[float, float]) -> np.ndarray:
    """2×3 affine that turns the astronaut by ``angle_deg`` about her face, scales it and puts
    the face at ``centre`` of a frame."""
    face = (224.0, 120.0)
    matrix = cv2.getRotationMatrix2D(face, angle_deg, scale)
    matrix[:, 2] += np.array(centre) - np.array(face)
    return matrix


def place(astronaut: torch.Tensor, matrix: np.ndarray) -> torch.Tensor:
    """The astronaut warped by ``matrix`` into a black 1280×720 frame."""
    height, width = FRAME_HW
    out = cv2.warpAffine(astronaut.numpy(), matrix, (width, height), flags=cv2.INTER_LINEAR)
    return torch.from_numpy(out)


def apply(matrix: np.ndarray, points: torch.Tensor) -> torch.Tensor:
    m = torch.from_numpy(matrix).float()
    return points @ m[:, :2].T + m[:, 2]


def moving_matrix(t: float) -> np.ndarray:
    """A demo-like head move: sways ±350 px sideways, bobs, turns ±8°, scales 1.05–1.55."""
    angle = 8 * math.sin(2 * math.pi * t / 2.0)
    scale = 1.3 + 0.25 * math.sin(2 * math.pi * t / 3.0)
    cx = 640 + 350 * math.sin(2 * math.pi * t / 3.0)
    cy = 360 + 80 * math.sin(2 * math.pi * t / 1.7)
    return placement(scale, angle, (cx, cy))


@pytest.fixture(scope="session")
def moving_sequence(astronaut: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """45 frames at 30 fps of the moving astronaut, each with its true eye positions."""
    eyes = torch.tensor(ASTRONAUT_EYES, dtype=torch.float32)
    out = []
    for index in range(45):
        matrix = moving_matrix(index / 30.0)
        out.append((place(astronaut, matrix), apply(matrix, eyes)))
    return out


Placed = Callable[[float, float, tuple[float, float]], tuple[torch.Tensor, np.ndarray]]


@pytest.fixture()
def placed(astronaut: torch.Tensor) -> Placed:
    """Makes (frame, 2×3 matrix): the astronaut scaled, turned and put in a 1280×720 frame."""

    def make(
        scale: float, angle: float, centre: tuple[float, float]
    ) -> tuple[torch.Tensor, np.ndarray]:
        matrix = placement(scale, angle, centre)
        return place(astronaut, matrix), matrix

    return make
