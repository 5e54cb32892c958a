"""The synthetic age target: ages the face and hair, leaves the backdrop, same spots every frame."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from agecast.errors import FacesetError
from agecast.training.faceset import Faceset
from agecast.training.synthetic_age import age_face, age_face_series

from .conftest import SIZE


def _first(faceset: Faceset) -> tuple[np.ndarray, np.ndarray]:
    return faceset.image(0), np.asarray(faceset.records[0].landmarks5)


def test_strength_zero_is_the_face_and_one_ages_it(facesets: tuple[Path, Path]) -> None:
    image, points = _first(Faceset.load(facesets[1]))
    assert np.array_equal(age_face(image, points, 0.0), image)
    old = age_face(image, points, 1.0).astype(float)
    diff = np.abs(old - image.astype(float)).sum(-1)
    eyes_y = int(points[:2, 1].mean())
    # hair above the eyes and the face change; the top corners (backdrop) stay
    assert diff[: eyes_y - 4].mean() > 8
    assert diff[:4, :4].max() < 30 and diff[:4, -4:].max() < 30
    half = age_face(image, points, 0.5).astype(float)
    assert 0 < np.abs(half - image).mean() < np.abs(old - image).mean()

    # greyer hair: less colour saturation above the eyes at the oldest age
    def saturation(x: np.ndarray) -> float:
        region = x[: eyes_y - 4]
        return float((region.max(-1) - region.min(-1)).mean())

    assert saturation(old) < saturation(image.astype(float))


def test_series_equals_one_at_a_time(facesets: tuple[Path, Path]) -> None:
    image, points = _first(Faceset.load(facesets[1]))
    series = age_face_series(image, points, [0.3, 1.0])
    assert np.array_equal(series[1], age_face(image, points, 1.0))


def test_synthesized_faceset_records_ages_and_pairs(facesets: tuple[Path, Path]) -> None:
    src = Faceset.load(facesets[0])
    dst = Faceset.load(facesets[1])
    assert len(src) == 2 * len(dst) and src.size == SIZE
    assert {r.age for r in src.records} == {38.0, 75.0}
    assert {r.pair_of for r in src.records} == {r.file for r in dst.records}
    young = next(i for i, r in enumerate(src.records) if r.age == 38.0)
    assert np.array_equal(src.image(young), dst.image(dst.records.index(next(
        r for r in dst.records if r.file == src.records[young].pair_of))))  # fmt: skip


def test_bad_ages_are_named(facesets: tuple[Path, Path], tmp_path: Path) -> None:
    from agecast.training.synthetic_age import synthesize_faceset

    with pytest.raises(FacesetError, match="at or above the footage's age 38"):
        synthesize_faceset(facesets[1], tmp_path / "x", [30, 60], 38)
    with pytest.raises(FacesetError, match="not empty"):
        synthesize_faceset(facesets[1], facesets[0], [40], 38)
