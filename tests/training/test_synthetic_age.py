"""The synthetic age target: ages the face and hair, leaves the backdrop, same spots every frame."""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from agecast.errors import FacesetError
from agecast.training.faceset import Faceset
from agecast.training.synthetic_age import age_face, age_face_series

from .conftest import SIZE, jittered_faceset


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


@pytest.fixture(scope="module")
def big_face(tmp_path_factory: pytest.TempPathFactory) -> tuple[np.ndarray, np.ndarray]:
    """The astronaut aligned at 256 px, the size the re-ageing model trains at."""
    faceset = jittered_faceset(tmp_path_factory.mktemp("big"), n=1, size=256, seed=3)
    return _first(faceset)


def _face_units(points: np.ndarray, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, float]:
    """Every pixel's (across, down) position from the point between the eyes, in eye distances."""
    origin = points[:2].mean(0)
    across = points[1] - points[0]
    d = float(np.linalg.norm(across))
    across = across / d
    down = np.array([-across[1], across[0]])
    ys, xs = np.mgrid[: shape[0], : shape[1]] + 0.5
    rel = np.stack([xs, ys], -1) - origin
    return rel @ across / d, rel @ down / d, d


def test_eyes_mouth_interior_and_backdrop_keep_the_plate(
    big_face: tuple[np.ndarray, np.ndarray],
) -> None:
    image, points = big_face
    old = age_face(image, points, 1.0)
    u, v, d = _face_units(points, image.shape)
    irises = np.zeros(u.shape, bool)
    for eye in points[:2]:
        ys, xs = np.mgrid[: u.shape[0], : u.shape[1]] + 0.5
        irises |= np.hypot(xs - eye[0], ys - eye[1]) < 0.09 * d
    # between the lips: the middle of the segment joining the mouth corners, a little each side
    a, b = points[3], points[4]
    ys, xs = np.mgrid[: u.shape[0], : u.shape[1]] + 0.5
    rel = np.stack([xs, ys], -1) - a
    t = rel @ (b - a) / float(np.dot(b - a, b - a))
    off = np.abs(rel @ np.array([-(b - a)[1], (b - a)[0]]) / float(np.linalg.norm(b - a)))
    mouth = (t > 0.2) & (t < 0.8) & (off < 0.04 * d)
    far = np.hypot(u, v) > 2.25
    assert irises.sum() > 50 and mouth.sum() > 50 and far.sum() > 1000
    for region in (irises, mouth, far):
        assert np.array_equal(old[region], image[region])
    # while the skin right around them did age
    cheeks = (np.abs(np.abs(u) - 0.5) < 0.15) & (np.abs(v - 0.6) < 0.15)
    assert np.abs(old[cheeks].astype(float) - image[cheeks]).mean() > 4


def test_age_grows_with_strength_and_follows_the_seed(
    big_face: tuple[np.ndarray, np.ndarray],
) -> None:
    image, points = big_face
    strengths = [0.25, 0.5, 0.75, 1.0]
    series = age_face_series(image, points, strengths, seed=7)
    change = [float(np.abs(x.astype(float) - image).mean()) for x in series]
    assert all(a < b for a, b in itertools.pairwise(change)), change
    # roughly linear, so that blending neighbouring ages is close to the age between them
    assert change[1] == pytest.approx((change[0] + change[2]) / 2, rel=0.35)
    assert np.array_equal(age_face(image, points, 0.75, seed=7), series[2])
    other = age_face(image, points, 0.75, seed=8)
    assert np.abs(other.astype(float) - series[2]).mean() > 0.3


def test_the_ageing_moves_with_the_face(big_face: tuple[np.ndarray, np.ndarray]) -> None:
    """The same face two pixels further on gets the same lines, texture and spots, moved with
    it: nothing is tied to the crop's pixel grid (it would flicker as the face moves)."""
    image, points = big_face
    moved = np.roll(image, (2, 2), axis=(0, 1))
    delta = age_face(image, points, 1.0).astype(float) - image
    delta_moved = age_face(moved, points + 2, 1.0).astype(float) - moved
    u, v, _ = _face_units(points, image.shape)
    face = np.hypot(u, v - 0.4) < 1.2
    follows = np.abs(np.roll(delta, (2, 2), axis=(0, 1)) - delta_moved)[face].mean()
    stuck = np.abs(delta - delta_moved)[face].mean()
    assert follows < 0.35, follows
    assert stuck > 4 * follows  # the change has detail fine enough to tell a 2 px move
