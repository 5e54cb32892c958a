from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from skimage import data

from agecast.faces.detector import make_detector
from agecast.faces.tracker import FaceTracker
from agecast.identities import IdentityModel, resolve
from agecast.inference import get_backend
from agecast.pipeline.build import Built, build
from agecast.pipeline.fx import FaceFX
from agecast.pipeline.runner import Output
from agecast.settings import REPO_MODELS_DIR, Settings


def astronaut_frame(dx: int = 0) -> torch.Tensor:
    """The astronaut photo scaled ×1.2 on a grey 1280×720 frame, shifted ``dx`` px."""
    face = torch.from_numpy(data.astronaut()).permute(2, 0, 1)[None].float()
    face = F.interpolate(face, size=(614, 614), mode="bilinear", antialias=True)[0]
    frame = torch.full((3, 720, 1280), 90.0)
    frame[:, 53:667, 333 + dx : 947 + dx] = face
    return frame.round().clamp(0, 255).byte().permute(1, 2, 0).contiguous()


@pytest.fixture(scope="session")
def backend():  # type: ignore[no-untyped-def]
    return get_backend("onnxruntime", threads=2)


@pytest.fixture
def fx(backend) -> FaceFX:  # type: ignore[no-untyped-def]
    identity = IdentityModel.load(resolve("testpattern", [REPO_MODELS_DIR]), backend)
    return FaceFX(FaceTracker(make_detector(backend), detect_every=1), identity)


@pytest.fixture(scope="session")
def face_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 24-frame 1280×720 H.264 clip of the astronaut drifting right."""
    path = tmp_path_factory.mktemp("clips") / "face.mp4"
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=Fraction(24))
        stream.width, stream.height, stream.pix_fmt = 1280, 720, "yuv420p"
        for i in range(24):
            frame = av.VideoFrame.from_ndarray(
                np.ascontiguousarray(astronaut_frame(2 * i).numpy()), format="rgb24"
            )
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    return path


def render_outputs(settings: Settings, limit: int | None = None) -> tuple[Built, list[Output]]:
    """Run ``settings``' pipeline in render mode (``limit`` frames, or to the source's end)
    and return it, closed, with every output."""
    built = build(settings, mode="render")
    built.pipeline.limit = limit
    built.pipeline.start()
    try:
        outputs = [o for o in built.pipeline.outputs() if o is not None]
    finally:
        built.close()
    return built, outputs
