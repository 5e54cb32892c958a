import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper, numpy_helper

from agecast.compose.paste import paste_back
from agecast.faces.align import estimate_affine, template_points, warp_crop
from agecast.faces.landmarks106 import Landmarks106
from agecast.frames import Frame
from agecast.identities import IdentityModel, read_package
from agecast.pipeline.fx import FaceFX, FxState
from agecast.settings import REPO_MODELS_DIR

from ..identities.conftest import invert_model, manifest_for, valid_consent
from .conftest import astronaut_frame

# Face of the astronaut in astronaut_frame(): eyes ≈ (573, 175) and (630, 176) in frame pixels.
FACE = (slice(150, 260), slice(550, 660))


def _frame(index: int = 0, image: torch.Tensor | None = None) -> Frame:
    return Frame(
        index, astronaut_frame() if image is None else image, time.monotonic_ns(), time.time_ns()
    )


def test_face_changes_and_the_rest_does_not(fx: FaceFX) -> None:
    frame = _frame()
    fx.set_look(color_transfer="none")  # the testpattern's magenta tint in full
    result = fx.process(frame)
    assert result.fx is FxState.ON and len(result.faces) == 1
    diff = (result.aged.int() - frame.image.int()).abs().sum(dim=2)
    assert float(diff[FACE].float().mean()) > 20  # the face is visibly replaced
    assert int(diff[:, :450].max()) == 0 and int(diff[:, 850:].max()) == 0  # far from it: exact
    assert int(diff[500:].max()) == 0


def test_colour_transfer_pulls_a_likeness_back_to_the_plate(
    fx: FaceFX,
    backend,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    # the testpattern model relabelled as a likeness: its magenta cast stands for a model
    # trained under other light
    package = tmp_path / "tinted"
    shutil.copytree(REPO_MODELS_DIR / "testpattern", package)
    manifest = json.loads((package / "manifest.json").read_text())
    manifest.update(
        id="tinted", purpose="likeness", actor="Test Actor", consent=valid_consent("Test Actor")
    )
    (package / "manifest.json").write_text(json.dumps(manifest))
    fx.set_identity(IdentityModel.load(read_package(package), backend))
    frame = _frame()
    plate = frame.image[FACE].float().mean(dim=(0, 1))
    fx.set_look(color_transfer="none")
    tinted = fx.process(frame).aged[FACE].float().mean(dim=(0, 1))
    fx.set_look(color_transfer="rct")
    matched = fx.process(frame).aged[FACE].float().mean(dim=(0, 1))
    assert float((matched - plate).abs().max()) < 0.5 * float((tinted - plate).abs().max())


def test_a_tooling_pattern_is_never_colour_matched(fx: FaceFX) -> None:
    frame = _frame()
    fx.set_look(color_transfer="none")
    plain = fx.process(frame).aged
    fx.set_look(color_transfer="rct")
    assert torch.equal(fx.process(frame).aged, plain)


def test_blend_and_bypass(fx: FaceFX) -> None:
    frame = _frame()
    full = fx.process(frame).aged
    fx.set_look(blend=0.3)
    light = fx.process(frame).aged
    d_full = (full.int() - frame.image.int()).abs()[FACE].float().mean()
    d_light = (light.int() - frame.image.int()).abs()[FACE].float().mean()
    assert 0.1 * d_full < d_light < 0.6 * d_full
    fx.set_look(bypass=True)
    bypassed = fx.process(frame)
    assert bypassed.fx is FxState.BYPASS and torch.equal(bypassed.aged, frame.image)


def test_no_face_passes_the_frame_through(fx: FaceFX) -> None:
    empty = torch.full((720, 1280, 3), 60, dtype=torch.uint8)
    result = fx.process(_frame(image=empty))
    assert result.fx is FxState.NO_FACE and torch.equal(result.aged, empty)


def test_fail_open_when_the_model_raises_every_third_frame(
    fx: FaceFX, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_infer = fx.identity.infer
    calls = {"n": 0}

    def flaky(crops: torch.Tensor, *args: Any, **kwargs: Any):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] % 3 == 0:
            raise RuntimeError("CUDA error: an illegal memory access (simulated)")
        return real_infer(crops, *args, **kwargs)

    monkeypatch.setattr(fx.identity, "infer", flaky)
    states = []
    for i in range(9):
        frame = _frame(i)
        result = fx.process(frame)
        states.append(result.fx)
        if result.fx is FxState.ERROR:
            assert torch.equal(result.aged, frame.image)
            assert "illegal memory access" in (result.error or "")
    assert states.count(FxState.ERROR) == 3 and states.count(FxState.ON) == 6
    assert fx.errors == 3
    assert caplog.text.count("FX failed") == 3  # once per burst (each burst is one frame here)


def test_warp_then_paste_back_is_seamless() -> None:
    """align.warp_crop and compose.paste_back share one pixel convention."""
    image = astronaut_frame()
    lm = torch.tensor(
        [[573.0, 175.0], [630.0, 176.0], [600.0, 210.0], [578.0, 240.0], [624.0, 241.0]]
    )
    affine = estimate_affine(lm, template_points("ffhq", 256))
    crop = warp_crop(image, affine, 256)
    out = image.clone()
    paste_back(out, crop, torch.ones(1, 256, 256), affine, 1.0)
    x0, x1, y0, y1 = 520, 680, 120, 290
    err = (out[y0:y1, x0:x1].float() - image[y0:y1, x0:x1].float()).abs()
    assert float(err.mean()) < 4.0  # resampling blur only, no shift


def _ring_2d106(path: Path, radius: float) -> Path:
    """A stand-in 2d106det: 106 points on a ring of ``radius`` (crop units, -1..1) whatever
    the picture."""
    angles = np.linspace(0, 2 * np.pi, 106, endpoint=False)
    ring = np.stack([radius * np.cos(angles), radius * np.sin(angles)], 1).astype(np.float32)
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["data"], ["mean"], axes=[1, 2, 3], keepdims=1),
            helper.make_node("Reshape", ["mean", "column"], ["flat"]),
            helper.make_node("Mul", ["flat", "zero"], ["nothing"]),
            helper.make_node("Add", ["nothing", "ring"], ["fc1"]),
        ],
        "ring",
        [helper.make_tensor_value_info("data", TensorProto.FLOAT, [1, 3, 192, 192])],
        [helper.make_tensor_value_info("fc1", TensorProto.FLOAT, [1, 212])],
        [
            numpy_helper.from_array(ring.reshape(1, 212), "ring"),
            numpy_helper.from_array(np.array([-1, 1], np.int64), "column"),
            numpy_helper.from_array(np.array(0.0, np.float32), "zero"),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_106_landmarks_shape_the_mask_of_a_maskless_identity(
    fx: FaceFX,
    backend,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    package = tmp_path / "invert"
    package.mkdir()
    data = invert_model(256).SerializeToString()
    (package / "model.onnx").write_bytes(data)
    (package / "manifest.json").write_text(json.dumps(manifest_for(data, 256)))
    fx.set_identity(IdentityModel.load(read_package(package), backend))
    fx.set_look(color_transfer="none", mask_feather=0.01)  # a crisp edge to measure
    frame = _frame()
    ellipse = (fx.process(frame).aged.int() - frame.image.int()).abs().sum(2) > 60
    fx.landmarks106 = Landmarks106(backend, _ring_2d106(tmp_path / "2d106det.onnx", 0.25))
    result = fx.process(frame)
    ring = (result.aged.int() - frame.image.int()).abs().sum(2) > 60
    assert result.fx is FxState.ON
    assert 100 < int(ring.sum()) < 0.6 * int(ellipse.sum())  # the small hull replaces less
    box = result.faces[0].box
    centre = (box[:2] + box[2:]) / 2
    ys, xs = torch.nonzero(ring, as_tuple=True)
    reach = ((torch.stack([xs, ys], 1).float() - centre).norm(dim=1)).max()
    # ring radius in frame px: 0.25 · 96 crop px at 192 / (1.5 · side) crop px per frame px
    side = float((box[2:] - box[:2]).max())
    assert float(reach) < 0.25 * 0.75 * side * 1.2  # the hull (+5 % grow), nothing beyond
