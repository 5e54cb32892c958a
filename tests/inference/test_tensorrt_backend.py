"""Without TensorRT the tensorrt backend says so, and nothing else breaks (it cannot run here)."""

from __future__ import annotations

import importlib.util

import pytest

from agecast.errors import BackendUnavailable
from agecast.inference.engines import EngineCache, build_engines
from agecast.inference.registry import available_backends, get_backend
from agecast.inference.tensorrt_backend import TensorRTBackend

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="TensorRT is installed here"
)


def test_tensorrt_reports_unavailable_cleanly() -> None:
    why = TensorRTBackend.probe()
    assert why is not None and "TensorRT is not installed" in why and "GPU path" in why
    assert available_backends()["tensorrt"] == why
    with pytest.raises(BackendUnavailable, match="backend tensorrt is not usable here"):
        get_backend("tensorrt")
    assert get_backend("auto").name != "tensorrt"


def test_building_plans_needs_tensorrt() -> None:
    with pytest.raises(BackendUnavailable, match="GPU path"):
        build_engines([], EngineCache(), fp16=True)
