"""Attacks 6 and 9 on identity packages: weights rewritten under a live identity (onnxruntime
memory-maps external weights: the server died of SIGBUS), external weights swapped (the
manifest's sha256 covered only model.onnx), a package file that is a link (an error printed
the sha256 of the file it pointed to)."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from agecast.errors import IdentityError
from agecast.identities.package import load_model, read_package
from agecast.inference.registry import get_backend
from tests.identities.conftest import manifest_for, vouch

SIZE = 64
WEIGHTS = "weights.bin"


def _bias_model() -> onnx.ModelProto:
    """face → bias - face, the bias (48 KB) stored outside model.onnx."""
    bias = numpy_helper.from_array(np.full((1, 3, SIZE, SIZE), 0.75, np.float32), "bias")
    graph = helper.make_graph(
        [
            helper.make_node("Neg", ["face"], ["neg"]),
            helper.make_node("Add", ["neg", "bias"], ["out"]),
        ],
        "bias",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        [bias],
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


def _package(folder: Path, *, declare_weights: bool = True) -> Path:
    folder.mkdir()
    onnx.save_model(
        _bias_model(), folder / "model.onnx", save_as_external_data=True,
        all_tensors_to_one_file=True, location=WEIGHTS, size_threshold=0,
    )  # fmt: skip
    manifest = manifest_for((folder / "model.onnx").read_bytes(), SIZE, purpose="tooling")
    manifest.pop("consent")
    if declare_weights:
        digest = hashlib.sha256((folder / WEIGHTS).read_bytes()).hexdigest()
        manifest["model"]["files"] = {WEIGHTS: digest}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return vouch(folder)


def test_rewriting_a_live_identitys_weights_does_not_crash_the_server(tmp_path: Path) -> None:
    package = _package(
        tmp_path / "bias",
    )
    script = textwrap.dedent(
        f"""
        import torch
        from pathlib import Path
        from agecast.identities.package import load_model, read_package
        from agecast.inference.registry import get_backend
        package = read_package(Path({str(package)!r}))
        model = load_model(package, get_backend("onnxruntime"))
        face = torch.zeros((1, 3, {SIZE}, {SIZE}))
        before = model.run({{"face": face}})
        with open(Path({str(package)!r}) / {WEIGHTS!r}, "r+b") as fh:  # rewritten in place
            fh.truncate(0)
            fh.flush()
            fh.write(b"\\0" * 16)
        after = model.run({{"face": face}})
        print("still serving", float(after["out"].mean()))
        """
    )
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, cwd=root,
        env={**os.environ, "PYTHONPATH": str(root / "server")},
    )  # fmt: skip
    assert done.returncode == 0, f"exit {done.returncode}: {done.stderr[-2000:]}"
    assert "still serving 0.75" in done.stdout


def test_swapped_external_weights_are_refused(tmp_path: Path) -> None:
    package = _package(tmp_path / "bias")
    weights = package / WEIGHTS
    swapped = np.full(weights.stat().st_size // 4, 0.1, np.float32).tobytes()
    weights.write_bytes(swapped)  # same size, other numbers
    with pytest.raises(IdentityError, match=WEIGHTS):
        load_model(read_package(package), get_backend("onnxruntime"))


def test_weights_the_manifest_does_not_cover_are_refused(tmp_path: Path) -> None:
    package = _package(tmp_path / "bias", declare_weights=False)
    with pytest.raises(IdentityError, match=f"{WEIGHTS}.*does not cover"):
        load_model(read_package(package), get_backend("onnxruntime"))


def test_a_linked_model_file_is_refused_without_hashing_its_target(tmp_path: Path) -> None:
    secret = tmp_path / "private.key"
    secret.write_bytes(b"someone else's secret")
    package = _package(tmp_path / "bias", declare_weights=False)
    (package / "model.onnx").unlink()
    (package / "model.onnx").symlink_to(secret)
    with pytest.raises(IdentityError) as refused:
        load_model(read_package(package), get_backend("onnxruntime"))
    assert hashlib.sha256(secret.read_bytes()).hexdigest() not in str(refused.value)
    assert "model.onnx is a link, not a file" in str(refused.value)
