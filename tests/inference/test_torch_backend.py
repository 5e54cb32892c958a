"""The torch backend runs agecast-df identities from their ONNX weights, like onnxruntime does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from agecast.errors import BackendError, IdentityError
from agecast.identities import IdentityModel, read_package
from agecast.identities.testpattern import build_package
from agecast.inference.registry import get_backend
from agecast.inference.torch_backend import TorchBackend
from agecast.settings import REPO_MODELS_DIR
from tests.identities.conftest import vouch

from .conftest import SIZE, agecast_df_package
from .test_registry import _double_model

TOLERANCE = 1e-4  # fp32 on both sides; far below one 8-bit level (0.0039)


@pytest.mark.parametrize("age", [True, False])
def test_torch_on_cpu_matches_onnxruntime(tmp_path: Path, age: bool) -> None:
    package = read_package(agecast_df_package(tmp_path / "pkg", age=age))
    ours = IdentityModel.load(package, get_backend("torch"))
    reference = IdentityModel.load(package, get_backend("onnxruntime"))
    assert [s.name for s in ours.model.inputs] == (["face", "age"] if age else ["face"])
    assert [s.name for s in ours.model.outputs] == ["face_out", "mask_out"]
    crops = torch.rand(3, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(1))
    for years in (20, 50, 80) if age else (None,):
        a, b = ours.infer(crops, years), reference.infer(crops, years)
        assert a.masks is not None and b.masks is not None
        assert float((a.faces - b.faces).abs().max()) <= TOLERANCE
        assert float((a.masks - b.masks).abs().max()) <= TOLERANCE
    if age:
        young, old = ours.infer(crops, 20), ours.infer(crops, 80)
        assert float((young.faces - old.faces).abs().max()) > 1e-3, "age changed nothing"
    ours.close()
    with pytest.raises(BackendError, match="closed"):
        ours.model.run({s.name: torch.zeros(1, *s.shape[1:]) for s in ours.model.inputs})  # type: ignore[misc]


def test_the_shipped_reage_demo_on_torch_matches_onnxruntime() -> None:
    """The shipped agecast-reage package: torch rebuilds ReageNet from the manifest and gives
    onnxruntime's face, delta and mask, at two ages and with a local age offset."""
    package = read_package(REPO_MODELS_DIR / "demo-aged")
    assert package.manifest.family == "agecast-reage"
    ours = IdentityModel.load(package, get_backend("torch", threads=1))
    reference = IdentityModel.load(package, get_backend("onnxruntime", threads=1))
    try:
        assert ours.model.__class__.__name__ == "TorchModel"
        assert [s.name for s in ours.model.inputs] == ["face", "age_maps"]
        assert [s.name for s in ours.model.outputs] == ["face_out", "delta_out", "mask_out"]
        size = package.manifest.crop.size
        crops = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(2))
        results = {}
        for age, offsets in ((38, None), (75, None), (75, (0.0, -37.0, 0.0, 0.0))):
            a, b = ours.infer(crops, age, offsets), reference.infer(crops, age, offsets)
            assert a.masks is not None and b.masks is not None
            assert a.deltas is not None and b.deltas is not None
            assert float((a.faces - b.faces).abs().max()) <= TOLERANCE
            assert float((a.deltas - b.deltas).abs().max()) <= TOLERANCE
            assert float((a.masks - b.masks).abs().max()) <= TOLERANCE
            results[age, offsets] = a
        # the age and the local offset reach the network: the outputs differ
        old, young = results[75, None], results[38, None]
        assert float((old.faces - young.faces).abs().max()) > 1e-2
        assert float((old.faces - results[75, (0.0, -37.0, 0.0, 0.0)].faces).abs().max()) > 1e-2
    finally:
        ours.close()
        reference.close()


def test_other_families_are_refused_by_name(tmp_path: Path) -> None:
    package = read_package(vouch(build_package(tmp_path / "tp")))
    with pytest.raises(
        IdentityError,
        match="family 'testpattern'.*torch backend runs agecast-df and agecast-reage "
        "identities.*onnxruntime",
    ):
        IdentityModel.load(package, get_backend("torch"))


def test_bare_onnx_is_delegated_or_refused(tmp_path: Path) -> None:
    path = _double_model(tmp_path / "m.onnx")
    model = TorchBackend().load(path, label="double")
    assert float(model.run({"x": torch.ones(1, 3)})["y"].sum()) == 6.0
    with pytest.raises(BackendError, match="agecast-df and agecast-reage identities only"):
        TorchBackend(delegate=False).load(path.read_bytes(), label="double")


def test_weights_that_do_not_match_the_manifest_are_named(tmp_path: Path) -> None:
    folder = agecast_df_package(tmp_path / "pkg")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["family_config"]["encoder_dims"] = 8
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(BackendError, match=r"weight encoder\.stages\.0\.conv\.weight .* disagree"):
        TorchBackend().load(folder / "model.onnx", label="tiny")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_graphs_match_cpu(tmp_path: Path) -> None:
    package = read_package(agecast_df_package(tmp_path / "pkg"))
    cpu = IdentityModel.load(package, TorchBackend(device="cpu"))
    gpu = IdentityModel.load(package, TorchBackend(device="cuda", cuda_graphs=True))
    crops = torch.rand(2, 3, SIZE, SIZE)
    for _ in range(2):  # first call captures, second replays
        got = gpu.infer(crops.cuda(), 50)
    want = cpu.infer(crops, 50)
    assert got.faces.is_cuda and got.faces.dtype == torch.float32
    assert float((got.faces.cpu() - want.faces).abs().max()) < 1e-2  # fp16


def test_a_frame_through_the_pipeline_on_the_torch_backend(tmp_path: Path) -> None:
    """Detector delegated to onnxruntime, the identity in torch: the face is replaced."""
    import time

    from agecast.faces.detector import make_detector
    from agecast.faces.tracker import FaceTracker
    from agecast.frames import Frame
    from agecast.pipeline.fx import FaceFX, FxState

    from ..pipeline.conftest import astronaut_frame

    backend = TorchBackend(threads=1)
    identity = IdentityModel.load(read_package(agecast_df_package(tmp_path / "pkg")), backend)
    assert identity.model.__class__.__name__ == "TorchModel"
    fx = FaceFX(FaceTracker(make_detector(backend), detect_every=1), identity)
    try:
        frame = Frame(0, astronaut_frame(), time.monotonic_ns(), time.time_ns())
        result = fx.process(frame)
        assert result.fx is FxState.ON and len(result.faces) == 1
        assert int((result.aged.int() - frame.image.int()).abs().max()) > 0
    finally:
        fx.tracker.close()
        identity.close()


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_fp16_graphs_run_the_reage_demo_like_cpu() -> None:
    package = read_package(REPO_MODELS_DIR / "demo-aged")
    cpu = IdentityModel.load(package, TorchBackend(device="cpu"))
    gpu = IdentityModel.load(package, TorchBackend(device="cuda", cuda_graphs=True))
    size = package.manifest.crop.size
    crops = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(3))
    for _ in range(2):  # first call captures, second replays
        got = gpu.infer(crops.cuda(), 75)
    want = cpu.infer(crops, 75)
    assert got.faces.is_cuda and got.deltas is not None and want.deltas is not None
    assert float((got.faces.cpu() - want.faces).abs().max()) < 1e-2  # fp16
    assert float((got.deltas.cpu() - want.deltas).abs().max()) < 1e-2
