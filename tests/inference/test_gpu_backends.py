"""GPU backends against onnxruntime CPU on the same model. Skipped without the GPU pieces they
need (none of them has run on the development machines: no GPU, no TensorRT, and the lent GPU
machines have no onnxruntime-gpu)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from agecast.identities import IdentityModel, read_package
from agecast.inference.registry import available_backends, get_backend

from .conftest import SIZE, agecast_df_package

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


def _compare(package_dir: Path, backend_name: str, tolerance: float) -> None:
    package = read_package(package_dir)
    gpu = IdentityModel.load(package, get_backend(backend_name))
    cpu = IdentityModel.load(package, get_backend("onnxruntime"))
    crops = torch.rand(3, 3, SIZE, SIZE)
    got = gpu.infer(crops.cuda(), 50)
    assert got.faces.is_cuda
    assert float((got.faces.cpu() - cpu.infer(crops, 50).faces).abs().max()) < tolerance


@pytest.mark.skipif(
    available_backends()["onnxruntime-cuda"] is not None, reason="needs onnxruntime-gpu"
)
def test_onnxruntime_cuda_io_binding_matches_cpu(tmp_path: Path) -> None:
    _compare(agecast_df_package(tmp_path / "pkg"), "onnxruntime-cuda", 1e-3)


@pytest.mark.skipif(importlib.util.find_spec("tensorrt") is None, reason="needs TensorRT")
def test_tensorrt_plan_built_offline_matches_cpu(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from agecast.errors import IdentityError
    from agecast.inference.engines import EngineCache, EngineModel, build_engines

    folder = agecast_df_package(tmp_path / "pkg")
    monkeypatch.setenv("AGECAST_ENGINES_DIR", str(tmp_path / "engines"))
    with pytest.raises(IdentityError, match="agecast engines build"):
        IdentityModel.load(read_package(folder), get_backend("tensorrt"))
    model = EngineModel.of("identity tiny", (folder / "model.onnx").read_bytes())
    cache = EngineCache(tmp_path / "engines")
    assert [r.built for r in build_engines([model], cache, fp16=False)] == [True]
    assert [r.built for r in build_engines([model], cache, fp16=False)] == [False]
    _compare(folder, "tensorrt", 1e-3)
