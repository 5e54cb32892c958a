"""The shipped demo identity: small, the default, and it visibly ages the demo face by age."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from agecast.faces.detector import make_detector
from agecast.faces.tracker import FaceTracker
from agecast.frames import Frame
from agecast.identities import IdentityModel, discover, read_package, resolve
from agecast.identities.package import sha256_file
from agecast.inference import get_backend
from agecast.pipeline.fx import FaceFX, FxState
from agecast.settings import REPO_MODELS_DIR
from agecast.sources.astronaut import FACE_LANDMARKS5
from agecast.sources.demo import DemoRenderer, demo_truth

PACKAGE = REPO_MODELS_DIR / "demo-aged"
MAX_BYTES = 20 * 1024 * 1024


def test_it_is_small_checked_and_the_default() -> None:
    package = read_package(PACKAGE)
    size = sum(p.stat().st_size for p in PACKAGE.iterdir())
    assert size <= MAX_BYTES, f"{size / 1e6:.1f} MB"
    m = package.manifest
    assert m.purpose == "demo" and "synthetic" in m.provenance.notes
    assert m.age_range is not None and m.color_transfer == "none"
    assert m.provenance.parity_max_abs_diff is not None and m.provenance.parity_max_abs_diff < 2e-3
    assert sha256_file(package.model_path) == m.model.sha256
    assert " train --src" in m.provenance.command and "agecast export" in m.provenance.command
    assert resolve("auto", [REPO_MODELS_DIR]).manifest.id == "demo-aged"
    assert {p.manifest.id for p in discover([REPO_MODELS_DIR])} >= {"demo-aged", "testpattern"}


@pytest.fixture(scope="module")
def fx() -> FaceFX:
    backend = get_backend("onnxruntime", threads=2)
    identity = IdentityModel.load(read_package(PACKAGE), backend)
    return FaceFX(FaceTracker(make_detector(backend), detect_every=1), identity)


def _saturation(image: torch.Tensor) -> float:
    x = image.float()
    return float((x.max(-1).values - x.min(-1).values).mean())


def test_it_ages_the_demo_face_and_follows_the_age(fx: FaceFX) -> None:
    renderer = DemoRenderer()
    index = 45
    image = torch.from_numpy(renderer.render(index)).contiguous()
    frame = Frame(index, image, time.monotonic_ns(), time.time_ns())
    points = np.hstack([np.array(FACE_LANDMARKS5), np.ones((5, 1))]) @ demo_truth(index).T
    eyes = points[:2]  # (x, y) of both eyes in frame pixels
    d = float(abs(eyes[1][0] - eyes[0][0]))
    cx, cy = (eyes[0][0] + eyes[1][0]) / 2, (eyes[0][1] + eyes[1][1]) / 2
    hair = (slice(int(cy - 1.4 * d), int(cy - 0.6 * d)), slice(int(cx - d), int(cx + d)))
    face = (
        slice(int(cy - 0.2 * d), int(cy + 1.2 * d)),
        slice(int(cx - 0.8 * d), int(cx + 0.8 * d)),
    )
    outputs = {}
    for age in (38, 75):
        fx.set_look(age=age, color_transfer="auto")
        result = fx.process(frame)
        assert result.fx is FxState.ON
        outputs[age] = result.aged
    old, young = outputs[75], outputs[38]
    diff = (old.int() - image.int()).abs().sum(-1)
    assert float(diff[face].float().mean()) > 15, "the face did not change"
    # far from the head nothing moves
    assert int(diff[:, : int(cx - 3 * d)].max()) == 0 and int(diff[:, int(cx + 3 * d) :].max()) == 0
    # older = greyer hair than the raw frame and than the youngest age
    assert _saturation(old[hair]) < 0.8 * _saturation(image[hair])
    assert _saturation(old[hair]) < _saturation(young[hair])
