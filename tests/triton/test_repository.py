"""``agecast triton repo``: a model repository the real server loads, versioned by sha256."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import onnx
import pytest
from typer.testing import CliRunner

from agecast.cli import app
from agecast.errors import OutputError
from agecast.identities import resolve
from agecast.inference.triton_naming import model_name, model_version
from agecast.settings import REPO_MODELS_DIR
from tests.triton.conftest import IDENTITIES, start_server, write_repo

grpc = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")
runner = CliRunner()


def _parse(path: Path) -> Any:
    """config.pbtxt read with Triton's own ModelConfig schema (tritonclient ships it)."""
    from google.protobuf import text_format

    return text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())


def _ready_versions(url: str) -> dict[str, set[str]]:
    client = grpc.InferenceServerClient(url.removeprefix("grpc://"))
    try:
        index = client.get_model_repository_index(as_json=True)["models"]
    finally:
        client.close()
    ready: dict[str, set[str]] = {}
    for entry in index:
        if entry.get("state") == "READY":
            ready.setdefault(entry["name"], set()).add(entry["version"])
    return ready


def test_the_real_server_loads_every_identity_written(triton: Any) -> None:
    ready = _ready_versions(triton.url)
    for name in IDENTITIES:
        sha = resolve(name, [REPO_MODELS_DIR]).manifest.model.sha256
        assert ready[model_name(name)] == {str(model_version(sha))}


def test_cli_writes_onnxruntime_config_with_batching_and_instances(tmp_path: Path) -> None:
    out = tmp_path / "repo"
    result = runner.invoke(
        app,
        ["triton", "repo", "--out", str(out), "--identity", "demo-aged",
         "--max-batch", "16", "--instances", "2", "--delay-us", "300"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    package = resolve("demo-aged", [REPO_MODELS_DIR])
    folder = out / "agecast_demo-aged"
    version = folder / str(model_version(package.manifest.model.sha256))
    # the served model is the checked one, wrapped for the compact wire: its own nodes and
    # weights unchanged, converting nodes at its ends
    served = onnx.load(str(version / "model.onnx"))
    original = onnx.load(str(package.model_path))
    # in: age maps 1 Cast, the crop Cast·Mul·Add; out: the delta 1 Cast, face and mask
    # Sub·Div·Round·Clip·Cast each
    assert [n.op_type for n in served.graph.node[4:-11]] == [n.op_type for n in original.graph.node]
    assert {t.name for t in original.graph.initializer} <= {
        t.name for t in served.graph.initializer
    }
    assert [p.name for p in out.iterdir()] == ["agecast_demo-aged"]
    config = _parse(folder / "config.pbtxt")
    assert config.name == "agecast_demo-aged" and config.backend == "onnxruntime"
    assert config.max_batch_size == 16
    assert config.dynamic_batching.max_queue_delay_microseconds == 300
    assert [(g.count, g.kind) for g in config.instance_group] == [(2, 1)]  # KIND_GPU
    types = model_config_pb2.DataType
    assert [(i.name, list(i.dims), types.Name(i.data_type)) for i in config.input] == [
        ("face", [3, 256, 256], "TYPE_UINT8"),  # the crop as 8-bit codes
        ("age_maps", [2, 256, 256], "TYPE_FP16"),
    ]
    # the exporter left the output sizes symbolic: the writer ran the model to find them
    assert [(o.name, list(o.dims), types.Name(o.data_type)) for o in config.output] == [
        ("face_out", [3, 256, 256], "TYPE_UINT8"),
        ("delta_out", [3, 256, 256], "TYPE_FP16"),
        ("mask_out", [1, 256, 256], "TYPE_UINT8"),
    ]
    assert config.version_policy.HasField("all")
    wire = json.loads(config.parameters["agecast_wire"].string_value)[version.name]
    assert wire == json.loads((version / "agecast-wire.json").read_text())
    assert wire["face"] == {"dtype": "uint8", "lo": [0.0] * 3, "step": [1 / 255] * 3, "axis": 1}


def test_float32_wire_serves_the_checked_bytes_as_they_are(tmp_path: Path) -> None:
    out = tmp_path / "repo"
    result = runner.invoke(
        app, ["triton", "repo", "--out", str(out), "--identity", "demo-aged", "--wire", "float32"]
    )
    assert result.exit_code == 0, result.output
    package = resolve("demo-aged", [REPO_MODELS_DIR])
    folder = out / "agecast_demo-aged"
    version = folder / str(model_version(package.manifest.model.sha256))
    assert (version / "model.onnx").read_bytes() == package.model_path.read_bytes()
    config = _parse(folder / "config.pbtxt")
    assert {model_config_pb2.DataType.Name(t.data_type) for t in config.output} == {"TYPE_FP32"}
    assert "agecast_wire" not in config.parameters
    bad = runner.invoke(app, ["triton", "repo", "--out", str(out), "--wire", "bf16"])
    assert bad.exit_code == 2 and "compact | float32" in bad.output


def test_tensorrt_platform_says_it_needs_tensorrt_on_the_gpu(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["triton", "repo", "--out", str(tmp_path), "--identity", "testpattern",
              "--platform", "tensorrt"],
    )  # fmt: skip
    assert result.exit_code == 2
    assert "TensorRT" in result.output and "--platform onnxruntime" in result.output


def test_tensorrt_config_names_the_plan() -> None:
    from agecast.inference.base import TensorSpec
    from agecast.triton.repository import RepoOptions, render_config

    text = render_config(
        "agecast_x",
        [TensorSpec("face", (None, 3, 128, 128))],
        [TensorSpec("face_out", (None, 3, 128, 128))],
        RepoOptions(platform="tensorrt", max_batch=4),
        identity="x",
    )
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2

    config = text_format.Parse(text, model_config_pb2.ModelConfig())
    assert config.platform == "tensorrt_plan" and config.default_model_filename == "model.plan"
    assert config.max_batch_size == 4 and list(config.input[0].dims) == [3, 128, 128]


def _retrained(tmp_path: Path) -> Path:
    """A copy of the testpattern package whose ONNX changed (as after more training)."""
    folder = tmp_path / "testpattern-v2"
    shutil.copytree(REPO_MODELS_DIR / "testpattern", folder)
    model = onnx.load(str(folder / "model.onnx"))
    model.doc_string = "re-trained"
    onnx.save(model, str(folder / "model.onnx"))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["model"]["sha256"] = hashlib.sha256((folder / "model.onnx").read_bytes()).hexdigest()
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_retrained_identity_is_a_new_version_served_beside_the_old(
    tmp_path: Path, agecast_state_dir: Path
) -> None:
    from agecast.identities.package import read_package
    from agecast.identities.vouch import Vouches
    from agecast.triton.repository import RepoOptions, write_repository

    repo = write_repo(tmp_path / "repo", ("testpattern",))
    new = read_package(_retrained(tmp_path))
    vouches = Vouches(agecast_state_dir)
    vouches.add(new, by="test")  # a copy of the shipped test pattern is no longer "shipped"
    write_repository(repo, [new], RepoOptions(platform="python", kind="cpu"), vouches=vouches)
    old_version = model_version(resolve("testpattern", [REPO_MODELS_DIR]).manifest.model.sha256)
    new_version = model_version(new.manifest.model.sha256)
    assert old_version != new_version
    server = start_server(repo, tmp_path / "triton.log")
    try:
        assert _ready_versions(server.url)["agecast_testpattern"] == {
            str(old_version),
            str(new_version),
        }
    finally:
        server.close()
    # Triton declares one type per tensor for all of a model's versions: a version whose
    # tensors would travel otherwise is refused, saying how to go on
    float32 = RepoOptions(platform="python", kind="cpu", wire="float32")
    with pytest.raises(OutputError, match="--prune"):
        write_repository(repo, [new], float32, vouches=vouches)
    pruning = RepoOptions(platform="python", kind="cpu", prune=True)
    write_repository(repo, [new], pruning, vouches=vouches)
    assert sorted(p.name for p in (repo / "agecast_testpattern").iterdir()) == sorted(
        ["config.pbtxt", str(new_version)]
    )
