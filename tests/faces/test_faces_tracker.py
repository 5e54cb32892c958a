"""Tracking: stable ids on a moving face, detection every N frames with optical flow between,
smoothed landmarks, and the jitter measure."""

from __future__ import annotations

import time
from typing import cast

import pytest
import torch

from agecast.faces.detector import FaceDetector
from agecast.faces.jitter import measure_jitter, noisy_frames
from agecast.faces.tracker import FaceTracker
from agecast.faces.yunet import YuNetDetector
from agecast.frames import FaceBox

FPS = 30.0
Sequence = list[tuple[torch.Tensor, torch.Tensor]]


class Counting(FaceDetector):
    """Wraps a detector and counts its calls."""

    def __init__(self, inner: FaceDetector) -> None:
        self.inner = inner
        self.name = inner.name
        self.calls = 0

    def detect(self, image: torch.Tensor) -> list[FaceBox]:
        self.calls += 1
        return self.inner.detect(image)


class Scripted(FaceDetector):
    """Returns a fixed list of faces, whatever the frame."""

    name = "scripted"

    def __init__(self, faces: list[FaceBox]) -> None:
        self.faces = faces
        self.calls = 0

    def detect(self, image: torch.Tensor) -> list[FaceBox]:
        self.calls += 1
        return [FaceBox(f.box.clone(), f.score, f.landmarks5.clone()) for f in self.faces]


def _face(x: float, y: float, size: float) -> FaceBox:
    box = torch.tensor([x, y, x + size, y + size])
    offsets = torch.tensor([[0.3, 0.4], [0.7, 0.4], [0.5, 0.55], [0.35, 0.75], [0.65, 0.75]])
    return FaceBox(box, 0.9, torch.tensor([x, y]) + offsets * size)


def _run(tracker: FaceTracker, sequence: Sequence) -> list[FaceBox]:
    out = []
    for index, (frame, _) in enumerate(sequence):
        faces = tracker.update(frame, index / FPS)
        assert len(faces) == 1, f"frame {index}: {len(faces)} faces"
        out.append(faces[0])
    return out


def _eye_errors(faces: list[FaceBox], sequence: Sequence) -> torch.Tensor:
    return torch.stack(
        [
            (f.landmarks5[:2] - eyes).norm(dim=1).mean()
            for f, (_, eyes) in zip(faces, sequence, strict=True)
        ]
    )


def test_one_track_id_across_a_moving_face(yunet: YuNetDetector, moving_sequence: Sequence) -> None:
    faces = _run(FaceTracker(yunet), moving_sequence)
    assert {f.track_id for f in faces} == {faces[0].track_id}
    errors = _eye_errors(faces, moving_sequence)
    assert float(errors.mean()) < 6.0 and float(errors.max()) < 10.0


def test_detect_every_3_holds_the_landmarks(
    yunet: YuNetDetector, moving_sequence: Sequence
) -> None:
    every_frame = _run(FaceTracker(yunet, smoothing=False), moving_sequence)
    counting = Counting(yunet)
    tracked = _run(FaceTracker(counting, detect_every=3, smoothing=False), moving_sequence)
    assert counting.calls == len(moving_sequence) // 3  # flow never lost the face
    assert {f.extras["source"] for f in tracked} == {"detect", "flow"}
    assert len({f.track_id for f in tracked}) == 1
    gaps = torch.stack(
        [
            (a.landmarks5 - b.landmarks5).norm(dim=1).mean()
            for a, b in zip(tracked, every_frame, strict=True)
        ]
    )
    assert float(gaps.mean()) < 3.5 and float(gaps.max()) < 8.0
    # against the truth, following by flow is as good as detecting every frame
    error_tracked = float(_eye_errors(tracked, moving_sequence).mean())
    error_detected = float(_eye_errors(every_frame, moving_sequence).mean())
    assert error_tracked < error_detected + 1.0


def test_detect_every_2_with_smoothing(yunet: YuNetDetector, moving_sequence: Sequence) -> None:
    faces = _run(FaceTracker(yunet, detect_every=2), moving_sequence)
    assert len({f.track_id for f in faces}) == 1
    assert float(_eye_errors(faces, moving_sequence).mean()) < 6.0
    raw = torch.stack([cast(torch.Tensor, f.extras["raw_landmarks5"]) for f in faces])
    smoothed = torch.stack([f.landmarks5 for f in faces])
    assert float((raw - smoothed).norm(dim=2).mean()) < 2.0  # little lag while moving


def test_background_detection_corrects_tracks_without_blocking(
    yunet: YuNetDetector, moving_sequence: Sequence
) -> None:
    counting = Counting(yunet)
    tracker = FaceTracker(counting, detect_every=3, smoothing=False, background=True)
    faces = []
    try:
        for index, (frame, _) in enumerate(moving_sequence):
            found = tracker.update(frame, index / FPS)
            assert len(found) == 1, f"frame {index}"
            faces.append(found[0])
            time.sleep(1 / FPS)  # a live feed's pace: detections come back between frames
    finally:
        tracker.close()
    assert len({f.track_id for f in faces}) == 1
    late = [i for i, f in enumerate(faces) if f.extras["source"] == "detect" and i > 0]
    assert len(late) >= 3  # detections made on the detector thread were merged in
    assert 3 <= counting.calls < len(moving_sequence)
    errors = _eye_errors(faces, moving_sequence)
    assert float(errors.mean()) < 6.0 and float(errors.max()) < 12.0


def test_all_faces_largest_first_with_stable_ids() -> None:
    big, small = _face(600, 200, 200), _face(100, 100, 80)
    detector = Scripted([small, big])
    frame = torch.zeros((720, 1280, 3), dtype=torch.uint8)
    tracker = FaceTracker(detector, select="all")
    first = tracker.update(frame, 0.0)
    second = tracker.update(frame, 1 / FPS)
    assert [f.area for f in first] == sorted((f.area for f in first), reverse=True)
    assert [f.track_id for f in first] == [f.track_id for f in second]
    assert len({f.track_id for f in first}) == 2
    largest = FaceTracker(Scripted([small, big]), select="largest").update(frame, 0.0)
    assert len(largest) == 1 and largest[0].area == big.area


def test_max_faces_caps_the_tracks() -> None:
    faces = [_face(100 + 150 * i, 100, 100 + 10 * i) for i in range(6)]
    tracker = FaceTracker(Scripted(faces), select="all", max_faces=4)
    out = tracker.update(torch.zeros((720, 1280, 3), dtype=torch.uint8), 0.0)
    assert len(out) == 4 and out[0].area == faces[-1].area


def test_a_lost_face_is_dropped_and_a_new_id_follows(
    yunet: YuNetDetector, moving_sequence: Sequence
) -> None:
    tracker = FaceTracker(yunet, detect_every=2, max_misses=2)
    first_id = _run(tracker, moving_sequence[:6])[0].track_id
    blank = torch.zeros_like(moving_sequence[0][0])
    results = [tracker.update(blank, (6 + i) / FPS) for i in range(5)]
    assert results[-1] == []
    again = tracker.update(moving_sequence[6][0], 11 / FPS)
    assert len(again) == 1 and again[0].track_id > first_id


def test_reset_forgets_tracks(yunet: YuNetDetector, moving_sequence: Sequence) -> None:
    counting = Counting(yunet)
    tracker = FaceTracker(counting, detect_every=10)
    before = tracker.update(moving_sequence[0][0], 0.0)[0]
    tracker.update(moving_sequence[1][0], 1 / FPS)
    assert counting.calls == 1
    tracker.reset()
    after = tracker.update(moving_sequence[2][0], 2 / FPS)[0]
    assert counting.calls == 2 and after.track_id != before.track_id


def test_jitter_smoothed_is_far_below_raw(yunet: YuNetDetector, moving_sequence: Sequence) -> None:
    result = measure_jitter(yunet, moving_sequence[0][0], frames=20, noise_sigma=6.0)
    assert set(result) >= {"raw_px", "smoothed_px"}
    assert result["missed_frames"] == 0
    assert 0 < result["smoothed_px"] < result["raw_px"] / 3


def test_jitter_noise_is_deterministic(astronaut: torch.Tensor) -> None:
    first = noisy_frames(astronaut, 3, 2.0, seed=7)
    again = noisy_frames(astronaut, 3, 2.0, seed=7)
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    assert not torch.equal(first[0], first[1])
    assert float((first[0].float() - astronaut.float()).std()) == pytest.approx(2.0, abs=0.2)
