"""Tiny facesets for training tests: the astronaut's face aligned with small random jitter."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agecast.faces.align import estimate_affine, template_points, transform_points, warp_crop
from agecast.sources.astronaut import FACE_LANDMARKS5, astronaut_rgb
from agecast.training.faceset import FaceRecord, Faceset, FacesetIndex
from agecast.training.synthetic_age import synthesize_faceset

SIZE = 64


def jittered_faceset(out: Path, n: int = 12, size: int = SIZE, seed: int = 0) -> Faceset:
    """``n`` crops of the astronaut, each aligned with a slightly different (random) fit."""
    rng = np.random.default_rng(seed)
    image = torch.from_numpy(np.array(astronaut_rgb()))
    labels = torch.tensor(FACE_LANDMARKS5, dtype=torch.float32)
    template = template_points("ffhq", size)
    records, pictures = [], {}
    for i in range(n):
        angle = rng.uniform(-0.08, 0.08)
        scale = rng.uniform(0.95, 1.05)
        shift = torch.tensor(rng.uniform(-1.5, 1.5, 2), dtype=torch.float32)
        rot = torch.tensor(
            [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]], dtype=torch.float32
        )
        centre = template.mean(0)
        target = (template - centre) @ rot.T * scale + centre + shift
        affine = estimate_affine(labels, target)
        crop = warp_crop(image, affine, size)
        picture = (crop.permute(1, 2, 0).clamp(0, 1) * 255).round().byte().numpy()
        name = f"f{i:06d}_0.png"
        points = transform_points(affine, labels).tolist()
        records.append(
            FaceRecord(
                file=name, frame=i, face=0, landmarks5=points,
                frame_landmarks5=labels.tolist(), score=0.9, sharpness=50.0, yaw=0.0, pitch=0.0,
            )
        )  # fmt: skip
        pictures[name] = picture
    index = FacesetIndex(
        size=size, template="ffhq", source="test", frames_done=n, complete=True, faces=records
    )
    return Faceset.write(out, index, pictures)


@pytest.fixture(scope="package")
def facesets(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(src, dst): dst = footage faces, src = the same faces aged to 38 and 75 (paired)."""
    root = tmp_path_factory.mktemp("facesets")
    jittered_faceset(root / "dst")
    synthesize_faceset(root / "dst", root / "src", [38, 75], 38)
    return root / "src", root / "dst"
