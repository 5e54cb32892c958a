"""106-point landmarks, checked with stand-in ONNX models that answer KNOWN points.

No 2d106det weights exist here. The stand-in has 2d106det's interface (input ``data``
N×3×192×192, output ``fc1`` N×212) and returns fixed values in [-1, 1] whatever the picture, so
where they land in the frame depends only on the crop convention: centred on the box centre,
192 / (1.5 · longer side) crop pixels per frame pixel, no rotation, crop point (p + 1) · 96.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from agecast.errors import DetectorError
from agecast.faces.landmarks106 import (
    Landmarks106,
    find_landmarks106,
    graph_normalisation,
)
from agecast.inference.base import Backend, Dim

SIZE = 192


def known_points() -> np.ndarray:
    """106 distinct model outputs in [-1, 1]: a spiral, so a point mix-up shows."""
    i = np.arange(106, dtype=np.float64)
    radius = 0.15 + 0.8 * i / 105
    angle = i * 0.37
    return np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1).astype(np.float32)


def write_stand_in(
    path: Path,
    *,
    batch: Dim = 1,
    input_hw: tuple[int, int] = (SIZE, SIZE),
    values: int = 212,
    normalises: bool = False,
) -> Path:
    """A graph ``fc1 = ReduceMean(data) · 0 + constant`` (N×``values``).

    With ``normalises`` it starts with ``_minusscalar0`` / ``_mulscalar0`` nodes (subtract 0,
    multiply by 1) like insightface's MXNet exports that normalise inside the graph.
    """
    constant = np.zeros((1, values), np.float32)
    known = known_points().reshape(-1)
    constant[0, : min(values, known.size)] = known[: min(values, known.size)]
    batch_dim = batch if batch is not None else "N"
    initialisers = [
        numpy_helper.from_array(constant, "points"),
        numpy_helper.from_array(np.array([-1, 1], np.int64), "column"),
        numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        numpy_helper.from_array(np.array(1.0, np.float32), "one"),
    ]
    nodes = []
    source = "data"
    if normalises:
        nodes += [
            helper.make_node("Sub", ["data", "zero"], ["centred"], name="_minusscalar0"),
            helper.make_node("Mul", ["centred", "one"], ["scaled"], name="_mulscalar0"),
        ]
        source = "scaled"
    nodes += [
        helper.make_node("ReduceMean", [source], ["mean"], name="pool", axes=[1, 2, 3], keepdims=1),
        helper.make_node("Reshape", ["mean", "column"], ["flat"], name="flatten"),
        helper.make_node("Mul", ["flat", "zero"], ["nothing"], name="times_zero"),
        helper.make_node("Add", ["nothing", "points"], ["fc1"], name="plus_points"),
    ]
    graph = helper.make_graph(
        nodes,
        "landmarks_106_stand_in",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [batch_dim, 3, *input_hw])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [batch_dim, values])],
        initialisers,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(model.SerializeToString())
    return path


def expected_in_frame(box: tuple[float, float, float, float]) -> torch.Tensor:
    """Where the known points must land: centre + p · 0.75 · longer side (worked by hand:
    crop (p + 1) · 96 = 96 + scale · (x - cx) with scale = 192 / (1.5 · side))."""
    x1, y1, x2, y2 = box
    centre = torch.tensor([(x1 + x2) / 2, (y1 + y2) / 2], dtype=torch.float64)
    side = max(x2 - x1, y2 - y1)
    return (centre + torch.from_numpy(known_points()).double() * 0.75 * side).float()


class Recorder:
    """Wraps a model's ``run`` to keep each input blob."""

    def __init__(self, landmarks: Landmarks106) -> None:
        self.blobs: list[torch.Tensor] = []
        self._run = landmarks.model.run
        landmarks.model.run = self  # type: ignore[method-assign]

    def __call__(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        self.blobs.append(feeds["data"].clone())
        return self._run(feeds)


BOXES = [(400.0, 200.0, 560.0, 400.0), (1000.5, 50.25, 1100.5, 110.25)]


def test_points_land_in_frame_pixels(backend: Backend, tmp_path: Path) -> None:
    landmarks = Landmarks106(backend, write_stand_in(tmp_path / "2d106det.onnx"))
    assert (landmarks.size, landmarks.batched) == (SIZE, False)
    frame = torch.zeros((720, 1280, 3), dtype=torch.uint8)
    recorder = Recorder(landmarks)
    points = landmarks.landmarks(frame, [torch.tensor(box) for box in BOXES])
    assert len(recorder.blobs) == 2  # fixed batch of 1: one run per face
    assert len(points) == 2
    for got, box in zip(points, BOXES, strict=True):
        assert got.shape == (106, 2) and got.dtype == torch.float32 and got.device.type == "cpu"
        torch.testing.assert_close(got, expected_in_frame(box), atol=1e-3, rtol=0)
    # the first box: 200 tall → side 300 around (480, 300); output (-1, -1) would be its corner
    assert float(points[0][:, 0].min()) > 480 - 0.75 * 200 - 1e-3


def test_dynamic_batch_runs_all_faces_at_once(backend: Backend, tmp_path: Path) -> None:
    path = write_stand_in(tmp_path / "2d106det.onnx", batch=None)
    landmarks = Landmarks106(backend, path)
    assert landmarks.batched
    recorder = Recorder(landmarks)
    boxes = [*BOXES, (10.0, 10.0, 50.0, 70.0)]
    points = landmarks.landmarks(
        torch.zeros((720, 1280, 3), dtype=torch.uint8), boxes=[torch.tensor(b) for b in boxes]
    )
    assert [tuple(b.shape) for b in recorder.blobs] == [(3, 3, SIZE, SIZE)]
    for got, box in zip(points, boxes, strict=True):
        torch.testing.assert_close(got, expected_in_frame(box), atol=1e-3, rtol=0)
    assert landmarks.landmarks(torch.zeros((8, 8, 3), dtype=torch.uint8), []) == []


def test_crop_is_centred_rgb_and_normalised(backend: Backend, tmp_path: Path) -> None:
    landmarks = Landmarks106(backend, write_stand_in(tmp_path / "2d106det.onnx"))
    assert (landmarks.input_mean, landmarks.input_std) == (127.5, 128.0)
    frame = torch.zeros((480, 640, 3), dtype=torch.uint8)
    frame[...] = torch.tensor([200, 100, 50], dtype=torch.uint8)  # R, G, B
    frame[250, 330] = torch.tensor([255, 0, 10], dtype=torch.uint8)  # a marker
    # side 128 → 1.5 · 128 = 192: one crop pixel per frame pixel, box centre (300, 270) → (96, 96)
    recorder = Recorder(landmarks)
    landmarks.landmarks(frame, [torch.tensor([236.0, 206.0, 364.0, 334.0])])
    blob = recorder.blobs[0][0]
    background = (torch.tensor([200.0, 100.0, 50.0]) - 127.5) / 128.0
    torch.testing.assert_close(blob[:, 96, 96], background)
    # the marker at frame (330, 250) is crop (96 + 30, 96 - 20)
    marker = (torch.tensor([255.0, 0.0, 10.0]) - 127.5) / 128.0
    torch.testing.assert_close(blob[:, 76, 126], marker)
    torch.testing.assert_close(blob[:, 76, 125], background)


def test_graph_that_normalises_gets_raw_pixels(backend: Backend, tmp_path: Path) -> None:
    path = write_stand_in(tmp_path / "2d106det.onnx", normalises=True)
    assert graph_normalisation(path) == (0.0, 1.0)
    landmarks = Landmarks106(backend, path)
    recorder = Recorder(landmarks)
    frame = torch.zeros((300, 300, 3), dtype=torch.uint8)
    frame[...] = torch.tensor([200, 100, 50], dtype=torch.uint8)
    points = landmarks.landmarks(frame, [torch.tensor([100.0, 100.0, 200.0, 200.0])])
    torch.testing.assert_close(recorder.blobs[0][0, :, 96, 96], torch.tensor([200.0, 100.0, 50.0]))
    torch.testing.assert_close(
        points[0], expected_in_frame((100, 100, 200, 200)), atol=1e-3, rtol=0
    )


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"values": 136}, r"136 values per face"),
        ({"input_hw": (192, 160)}, r"not a square"),
    ],
)
def test_wrong_model_is_a_detector_error_naming_the_file(
    backend: Backend, tmp_path: Path, options: dict[str, object], reason: str
) -> None:
    path = write_stand_in(tmp_path / "2d106det.onnx", **options)  # type: ignore[arg-type]
    with pytest.raises(DetectorError, match=rf"2d106det\.onnx.*{reason}"):
        Landmarks106(backend, path)


def test_missing_or_broken_file_is_a_detector_error(backend: Backend, tmp_path: Path) -> None:
    with pytest.raises(DetectorError, match=r"2d106det\.onnx does not exist"):
        Landmarks106(backend, tmp_path / "2d106det.onnx")
    broken = tmp_path / "2d106det.onnx"
    broken.write_bytes(b"\x00" * 64)
    with pytest.raises(DetectorError, match=r"2d106det\.onnx cannot be loaded"):
        Landmarks106(backend, broken)


def test_find_landmarks106_looks_one_level_down(tmp_path: Path) -> None:
    assert find_landmarks106(tmp_path) is None
    assert find_landmarks106(tmp_path / "absent") is None
    nested = write_stand_in(tmp_path / "buffalo_l" / "2d106det.onnx")
    (tmp_path / "antelopev2").mkdir()
    assert find_landmarks106(tmp_path) == nested
    top = write_stand_in(tmp_path / "2d106det.onnx")
    assert find_landmarks106(tmp_path) == top
    assert find_landmarks106(tmp_path / "buffalo_l") == nested
