"""SCRFD decode, checked with a stand-in ONNX model whose outputs must decode to a known face.

No SCRFD weights exist here; the stand-in has det_10g's interface (one dynamic 1×3×H×W input,
9 outputs: scores, box distances and landmark distances for strides 8, 16, 32 with two anchors
per location, unbatched N×k as insightface exports them) and returns fixed raw outputs.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from agecast.errors import DetectorError
from agecast.faces.detector import make_detector
from agecast.faces.scrfd import ScrfdDetector
from agecast.faces.yunet import YuNetDetector
from agecast.inference.base import Backend

STRIDES = (8, 16, 32)
ANCHORS = 2
SIZE = 640
# The planted face: stride 16, cell row 10 / col 12, second anchor → centre (192, 160).
STRIDE, ROW, COL, ANCHOR = 16, 10, 12, 1
DISTANCES = (2.0, 3.0, 4.0, 5.0)  # left, top, right, bottom in strides
KPS = ((-1.0, -1.0), (1.0, -1.0), (0.0, 0.5), (-0.8, 1.5), (0.8, 1.5))  # in strides


def _raw_outputs() -> list[np.ndarray]:
    scores, boxes, kps = [], [], []
    for stride in STRIDES:
        count = (SIZE // stride) ** 2 * ANCHORS
        score = np.full((count, 1), 0.01, np.float32)
        box = np.ones((count, 4), np.float32)
        points = np.zeros((count, 10), np.float32)
        if stride == STRIDE:
            index = (ROW * (SIZE // stride) + COL) * ANCHORS + ANCHOR
            score[index] = 0.95
            box[index] = DISTANCES
            points[index] = np.array(KPS, np.float32).reshape(-1)
            # a weaker, overlapping duplicate at the other anchor (NMS must drop it) ...
            score[index - 1] = 0.8
            box[index - 1] = [2.2, 3.0, 4.0, 5.0]
            # ... and a face below the score threshold elsewhere
            far = (30 * (SIZE // stride) + 30) * ANCHORS
            score[far] = 0.3
        scores.append(score)
        boxes.append(box)
        kps.append(points)
    return scores + boxes + kps


def write_stand_in(path: Path, *, with_kps: bool = True) -> Path:
    outputs = _raw_outputs() if with_kps else _raw_outputs()[:6]
    names = [str(448 + 3 * i) for i in range(len(outputs))]  # numeric, as in det_10g
    nodes = [helper.make_node("Identity", [f"c{i}"], [n]) for i, n in enumerate(names)]
    graph = helper.make_graph(
        nodes,
        "scrfd_stand_in",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, "h", "w"])],
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, list(a.shape))
            for n, a in zip(names, outputs, strict=True)
        ],
        [numpy_helper.from_array(a, f"c{i}") for i, a in enumerate(outputs)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    path.write_bytes(model.SerializeToString())
    return path


def _expected_in_input_pixels() -> tuple[torch.Tensor, torch.Tensor]:
    centre = torch.tensor([COL * STRIDE, ROW * STRIDE], dtype=torch.float32)
    d = torch.tensor(DISTANCES) * STRIDE
    box = torch.cat([centre - d[:2], centre + d[2:]])
    points = centre + torch.tensor(KPS) * STRIDE
    return box, points


def test_decode_gives_the_planted_face(backend: Backend, tmp_path: Path) -> None:
    detector = ScrfdDetector(backend, write_stand_in(tmp_path / "det_10g.onnx"))
    frame = torch.zeros((720, 1280, 3), dtype=torch.uint8)  # letterboxed at scale 0.5
    faces = detector.detect(frame)
    assert len(faces) == 1  # duplicate suppressed, weak face under the threshold
    box, points = _expected_in_input_pixels()
    assert box.tolist() == [160.0, 112.0, 256.0, 240.0]
    # input pixel x ↔ frame pixel (x + 0.5) / 0.5 - 0.5
    torch.testing.assert_close(faces[0].box, box * 2 + 0.5)
    torch.testing.assert_close(faces[0].landmarks5, points * 2 + 0.5)
    assert faces[0].score == pytest.approx(0.95)


def test_decode_at_native_size_and_lower_threshold(backend: Backend, tmp_path: Path) -> None:
    detector = ScrfdDetector(
        backend, write_stand_in(tmp_path / "det_10g.onnx"), score_threshold=0.2
    )
    faces = detector.detect(torch.zeros((640, 640, 3), dtype=torch.uint8))
    assert [round(f.score, 2) for f in faces] == [0.95, 0.3]
    box, points = _expected_in_input_pixels()
    torch.testing.assert_close(faces[0].box, box)
    torch.testing.assert_close(faces[0].landmarks5, points)
    far_centre = torch.tensor([30.0 * STRIDE, 30.0 * STRIDE])
    torch.testing.assert_close(faces[1].box, torch.cat([far_centre - STRIDE, far_centre + STRIDE]))


def test_model_without_landmarks_is_refused(backend: Backend, tmp_path: Path) -> None:
    path = write_stand_in(tmp_path / "scrfd_500m.onnx", with_kps=False)
    with pytest.raises(DetectorError, match=r"scrfd_500m\.onnx.*landmarks"):
        ScrfdDetector(backend, path)


def test_make_detector_prefers_scrfd_in_an_insightface_folder(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    write_stand_in(tmp_path / "det_10g.onnx")
    with caplog.at_level(logging.INFO, logger="agecast.faces.detector"):
        detector = make_detector(backend, insightface_dir=tmp_path, score_threshold=0.5)
    assert isinstance(detector, ScrfdDetector) and detector.name == "scrfd"
    assert detector.score_threshold == 0.5
    assert "SCRFD" in caplog.text and "det_10g.onnx" in caplog.text


def test_make_detector_falls_back_to_yunet(
    backend: Backend, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="agecast.faces.detector"):
        detector = make_detector(backend, insightface_dir=tmp_path)
    assert isinstance(detector, YuNetDetector)
    assert "YuNet" in caplog.text
    assert isinstance(make_detector(backend), YuNetDetector)


def test_broken_scrfd_file_is_a_detector_error(backend: Backend, tmp_path: Path) -> None:
    path = tmp_path / "det_10g.onnx"
    path.write_bytes(b"\x00" * 64)
    with pytest.raises(DetectorError, match=r"det_10g\.onnx"):
        make_detector(backend, insightface_dir=tmp_path)
