"""The TensorRT plan cache: keys, the build lock across processes, list and prune, CLI."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import BackendError
from agecast.inference.engines import EngineCache, GpuTarget, PlanKey, input_profiles

from .conftest import agecast_df_package
from .test_registry import _double_model

H100 = GpuTarget("10.9.0", "NVIDIA H100 80GB HBM3", "9.0")
SHAPES = {"face": ((1, 3, 64, 64), (1, 3, 64, 64), (8, 3, 64, 64)), "age": ((1, 1), (1, 1), (8, 1))}
SHA = "a" * 64


def _key(**change: object) -> PlanKey:
    key = PlanKey.make(SHA, H100, "fp16", SHAPES)
    return dataclasses.replace(key, **change)  # type: ignore[arg-type]


def test_key_is_stable_and_round_trips() -> None:
    key = _key()
    assert key.digest() == PlanKey.make(SHA, H100, "fp16", dict(reversed(SHAPES.items()))).digest()
    assert PlanKey.from_json(json.loads(json.dumps(key.to_json()))).digest() == key.digest()
    # pinned: a change to the key's canonical form would orphan every plan already built
    assert key.digest() == "536854d5ded95fd92cd9cc70c9b4ca22979c858003a5983951f74b28d85efe57"


@pytest.mark.parametrize(
    "change",
    [
        {"onnx_sha256": "b" * 64},
        {"trt_version": "10.8.0"},
        {"gpu_name": "NVIDIA H200"},
        {"compute_capability": "8.9"},
        {"precision": "fp32"},
        {
            "shapes": PlanKey.make(
                SHA, H100, "fp16", {**SHAPES, "age": ((1, 1), (1, 1), (4, 1))}
            ).shapes
        },
    ],
)
def test_each_key_component_changes_the_plan(change: dict[str, object]) -> None:
    assert _key(**change).digest() != _key().digest()
    cache = EngineCache(Path("/nonexistent"))
    assert cache.plan_path(_key(**change)) != cache.plan_path(_key())


def test_input_profiles_take_the_batch_as_dynamic(tmp_path: Path) -> None:
    data = (agecast_df_package(tmp_path / "pkg") / "model.onnx").read_bytes()
    assert input_profiles(data, max_batch=4) == {
        "face": ((1, 3, 64, 64), (1, 3, 64, 64), (4, 3, 64, 64)),
        "age": ((1, 1), (1, 1), (4, 1)),
    }
    assert input_profiles(_double_model(tmp_path / "d.onnx").read_bytes())["x"][2] == (8, 3)
    with pytest.raises(BackendError, match="not a readable ONNX"):
        input_profiles(b"garbage")


_HOLDER = """
import sys
from pathlib import Path
from agecast.inference.engines import EngineCache
with EngineCache(Path(sys.argv[1])).lock() as held:
    print("held" if held else "not held", flush=True)
    sys.stdin.read()
"""


def test_build_lock_excludes_another_process(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(cache.root)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with cache.lock(blocking=False) as got:
            assert not got
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=60)
    with cache.lock(blocking=False) as got:
        assert got


def test_prune_removes_unused_plans_and_other_tensorrt_versions(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    keep = cache.store(_key(), b"plan", "identity a")
    other_model = cache.store(_key(onnx_sha256="b" * 64), b"plan", "identity b")
    old_trt = cache.store(_key(trt_version="10.0.1"), b"plan", "identity a")
    broken = tmp_path / "0123.plan"
    broken.write_bytes(b"plan")  # no sidecar
    (tmp_path / "timing-trt10.0.1-x-sm90.cache").write_bytes(b"t")
    (tmp_path / f"timing-{H100.slug()}.cache").write_bytes(b"t")
    assert {e.label for e in cache.entries()} == {"identity a", "identity b", "?"}
    assert cache.find(_key()) == keep and cache.find(_key(precision="fp32")) is None

    removed = dict(cache.prune({SHA}, None))  # TensorRT unknown: versions are not judged
    assert set(removed) == {other_model, broken} and "no installed model" in removed[other_model]
    assert old_trt.is_file() and not other_model.with_suffix(".json").exists()

    removed = dict(cache.prune({SHA}, H100))
    assert set(removed) == {old_trt, tmp_path / "timing-trt10.0.1-x-sm90.cache"}
    assert "TensorRT 10.0.1" in removed[old_trt]
    assert [e.path for e in cache.entries()] == [keep]
    assert cache.timing_cache_path(H100).is_file()


@pytest.mark.skipif(
    __import__("importlib").util.find_spec("tensorrt") is not None, reason="TensorRT installed"
)
def test_cli_build_names_the_gpu_path_list_and_prune_work(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    agecast_df_package(tmp_path / "ids" / "tiny")
    monkeypatch.setenv("AGECAST_IDENTITIES_DIR", json.dumps([str(tmp_path / "ids")]))
    monkeypatch.setenv("AGECAST_ENGINES_DIR", str(tmp_path / "engines"))
    monkeypatch.setenv("COLUMNS", "300")  # one table row per plan
    runner = CliRunner()
    result = runner.invoke(app, ["engines", "build", "--all", "--fp16"])
    assert result.exit_code != 0 and "GPU path" in result.output, result.output
    result = runner.invoke(app, ["engines", "build"])
    assert result.exit_code != 0 and "--identity ID or --all" in result.output

    cache = EngineCache(tmp_path / "engines")
    sha = json.loads((tmp_path / "ids" / "tiny" / "manifest.json").read_text())["model"]["sha256"]
    cache.store(_key(onnx_sha256=sha), b"plan", "identity tiny-df-0")
    cache.store(_key(), b"plan", "identity gone")
    result = runner.invoke(app, ["engines", "list"])
    assert result.exit_code == 0 and "identity gone" in result.output, result.output
    result = runner.invoke(app, ["engines", "prune"])
    assert result.exit_code == 0 and "1 removed, 1 plans kept" in result.output, result.output
    assert [e.label for e in cache.entries()] == ["identity tiny-df-0"]
