import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper

from agecast.errors import BackendError, BackendUnavailable
from agecast.inference import registry
from agecast.inference.registry import available_backends, get_backend
from agecast.inference.torch_backend import TorchBackend


def _double_model(path: Path) -> Path:
    node = helper.make_node("Add", ["x", "x"], ["y"])
    graph = helper.make_graph(
        [node],
        "double",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 3])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, path)
    return path


def test_auto_picks_a_usable_backend_and_says_why_others_are_not(
    caplog: pytest.LogCaptureFixture,
) -> None:
    status = available_backends()
    assert status["onnxruntime"] is None
    assert "GPU path" in (status["tensorrt"] or "")
    caplog.set_level("DEBUG")  # why the others cannot run is debug; the choice is on it
    backend = get_backend("auto")
    assert backend.name in status and status[backend.name] is None
    assert "backend auto →" in caplog.text and "tensorrt" in caplog.text
    assert backend.why.startswith("auto: the only backend usable here")
    assert all(r.levelname == "DEBUG" for r in caplog.records if "tensorrt" in r.getMessage())


def test_unknown_and_unavailable_backends_are_clear() -> None:
    with pytest.raises(BackendUnavailable, match="unknown backend 'trt'"):
        get_backend("trt")
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        get_backend("tensorrt")


def test_failing_import_is_reported_not_fatal(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken() -> type:
        raise ImportError("libcudart.so.12: cannot open shared object file")

    monkeypatch.setitem(registry._LOADERS, "onnxruntime-cuda", broken)
    assert "libcudart" in (available_backends()["onnxruntime-cuda"] or "")
    assert get_backend("auto").name == "onnxruntime"


def test_onnxruntime_runs_torch_tensors_and_checks_inputs(tmp_path: Path) -> None:
    model = get_backend("onnxruntime").load(_double_model(tmp_path / "m.onnx"), label="double")
    assert [s.name for s in model.inputs] == ["x"] and model.inputs[0].shape == (None, 3)
    out = model.run({"x": torch.arange(6, dtype=torch.float32).view(2, 3)})
    np.testing.assert_allclose(out["y"].numpy(), np.arange(6).reshape(2, 3) * 2)
    with pytest.raises(BackendError, match="axis 1 is 4"):
        model.run({"x": torch.zeros(2, 4)})
    with pytest.raises(BackendError, match="dtype float64"):
        model.run({"x": torch.zeros(2, 3, dtype=torch.float64)})
    with pytest.raises(BackendError, match="feed each input"):
        model.run({"z": torch.zeros(2, 3)})


def test_bad_model_file_is_a_clear_error(tmp_path: Path) -> None:
    bad = tmp_path / "model.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(BackendError, match="cannot load the model"):
        get_backend("onnxruntime").load(bad, label="bad")
    with pytest.raises(BackendError, match="does not exist"):
        get_backend("onnxruntime").load(tmp_path / "missing.onnx", label="missing")


def test_a_backend_whose_module_cannot_import_is_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    # None in sys.modules makes `import` raise ImportError, as a broken install would
    monkeypatch.setitem(sys.modules, "agecast.inference.torch_backend", None)
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    status = available_backends()
    assert "import failed" in (status["torch"] or "")
    assert "TensorRT is not installed" in (status["tensorrt"] or "")
    assert status["onnxruntime"] is None
    assert get_backend("auto").name == "onnxruntime"


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only choice")
def test_auto_leaves_torch_to_gpu_boxes(caplog: pytest.LogCaptureFixture) -> None:
    assert available_backends()["torch"] is None  # runs here, if asked for by name
    caplog.set_level("DEBUG")
    assert get_backend("auto").name == "onnxruntime"
    assert "torch: no CUDA here" in caplog.text


def test_auto_measures_the_candidates_that_can_run_a_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from agecast.identities import IdentityModel, read_package

    from .conftest import agecast_df_package

    auto = registry.AutoBackend([get_backend("onnxruntime"), TorchBackend(delegate=False)])
    caplog.set_level("INFO")
    package = read_package(agecast_df_package(tmp_path / "pkg"))
    identity = IdentityModel.load(package, auto)
    chosen = auto.chosen["identity tiny-df-0"]
    assert chosen in {"onnxruntime", "torch"}
    assert "median warm-up run: " in caplog.text
    assert "onnxruntime " in caplog.text and "torch " in caplog.text and " ms" in caplog.text
    assert identity.infer(torch.rand(1, 3, 64, 64), 50).faces.shape == (1, 3, 64, 64)
    # a model only one candidate can load goes to it, and the log says why
    auto.load(_double_model(tmp_path / "m.onnx"), label="double")
    assert auto.chosen["double"] == "onnxruntime"
    assert "torch cannot load it" in caplog.text
    with pytest.raises(BackendError, match="no usable backend"):
        registry.AutoBackend([TorchBackend(delegate=False)]).load(
            _double_model(tmp_path / "n.onnx"), label="double"
        )


def test_onnxruntime_gpu_provider_options(tmp_path: Path) -> None:
    from agecast.inference.onnxruntime_backend import provider_list

    cache = tmp_path / "engines" / "onnxruntime-trt"
    plain = provider_list(
        ["CUDAExecutionProvider", "CPUExecutionProvider"],
        device_id=0, stream=None, cache_dir=cache, fp16=True,
    )  # fmt: skip
    assert [p if isinstance(p, str) else p[0] for p in plain] == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert "user_compute_stream" not in plain[0][1] and not cache.exists()
    full = provider_list(
        ["TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider"],
        device_id=1, stream=1234, cache_dir=cache, fp16=False,
    )  # fmt: skip
    name, trt = full[0]
    assert name == "TensorrtExecutionProvider" and cache.is_dir()
    assert trt["trt_engine_cache_enable"] == "True" and trt["trt_engine_cache_path"] == str(cache)
    assert trt["trt_timing_cache_enable"] == "True" and trt["trt_fp16_enable"] == "False"
    assert trt["device_id"] == "1" and full[1][1]["user_compute_stream"] == "1234"
