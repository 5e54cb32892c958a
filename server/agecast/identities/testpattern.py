"""The built-in ``testpattern`` identity: placement tooling, not a likeness.

Its model tints the crop and draws an alignment grid, the template's five landmark targets and
the crop border, with an elliptical mask. On set an operator loads it to check that faces are
found, aligned and pasted back in the right place before a real identity goes on. The ONNX graph
is built here from code, deterministically, so the committed package can be rebuilt and checked.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from agecast.faces.align import template_points
from agecast.identities.package import sha256_file
from agecast.manifest import MANIFEST_NAME

IDENTITY_ID = "testpattern"
CROP_SIZE = 256
TEMPLATE = "ffhq"
_TINT_GAIN = (1.0, 0.7, 1.05)  # magenta cast: unmistakably "FX on"
_TINT_BIAS = (0.06, 0.0, 0.08)
_LINE = (0.1, 1.0, 0.35)  # grid and marks in green


def _overlay(size: int) -> np.ndarray:
    """(1,1,S,S) 1 where a line or mark is drawn."""
    g = np.zeros((size, size), np.float32)
    step = size // 8
    g[::step, :] = 1.0
    g[:, ::step] = 1.0
    g[:2, :] = g[-2:, :] = g[:, :2] = g[:, -2:] = 1.0  # crop border
    for x, y in template_points(TEMPLATE, size).round().int().tolist():
        g[max(0, y - 6) : y + 7, max(0, x - 1) : x + 2] = 1.0
        g[max(0, y - 1) : y + 2, max(0, x - 6) : x + 7] = 1.0
    return g[None, None]


def _mask(size: int) -> np.ndarray:
    """(1,1,S,S) soft ellipse over the face area of the template."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / (size - 1)
    r = np.sqrt(((xx - 0.5) / 0.36) ** 2 + ((yy - 0.53) / 0.45) ** 2)
    return np.clip((1.15 - r) / 0.3, 0.0, 1.0).astype(np.float32)[None, None]


def build_model(size: int = CROP_SIZE) -> onnx.ModelProto:
    def const(name: str, value: np.ndarray) -> onnx.TensorProto:
        return numpy_helper.from_array(value, name)

    inits = [
        const("gain", np.array(_TINT_GAIN, np.float32).reshape(1, 3, 1, 1)),
        const("bias", np.array(_TINT_BIAS, np.float32).reshape(1, 3, 1, 1)),
        const("line", np.array(_LINE, np.float32).reshape(1, 3, 1, 1)),
        const("overlay", _overlay(size)),
        const("one", np.array(1.0, np.float32)),
        const("zero", np.array(0.0, np.float32)),
        const("mask_base", _mask(size)),
        const("mask_tail", np.array([1, size, size], np.int64)),
        const("start", np.array([0], np.int64)),
        const("end", np.array([1], np.int64)),
    ]
    nodes = [
        helper.make_node("Mul", ["face", "gain"], ["tinted0"]),
        helper.make_node("Add", ["tinted0", "bias"], ["tinted"]),
        helper.make_node("Sub", ["one", "overlay"], ["keep"]),
        helper.make_node("Mul", ["tinted", "keep"], ["kept"]),
        helper.make_node("Mul", ["line", "overlay"], ["drawn"]),
        helper.make_node("Add", ["kept", "drawn"], ["mixed"]),
        helper.make_node("Clip", ["mixed", "zero", "one"], ["aged"]),
        helper.make_node("Shape", ["face"], ["face_shape"]),
        helper.make_node("Slice", ["face_shape", "start", "end"], ["batch"]),
        helper.make_node("Concat", ["batch", "mask_tail"], ["mask_shape"], axis=0),
        helper.make_node("Expand", ["mask_base", "mask_shape"], ["mask"]),
    ]
    graph = helper.make_graph(
        nodes,
        "agecast_testpattern",
        [helper.make_tensor_value_info("face", TensorProto.FLOAT, ["N", 3, size, size])],
        [
            helper.make_tensor_value_info("aged", TensorProto.FLOAT, ["N", 3, size, size]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", 1, size, size]),
        ],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="agecast"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def build_package(out_dir: Path, size: int = CROP_SIZE) -> Path:
    """Write the testpattern package (manifest + model.onnx) into ``out_dir``."""
    out_dir.mkdir(parents=True, exist_ok=True)
    model_path = out_dir / "model.onnx"
    model_path.write_bytes(build_model(size).SerializeToString())
    manifest = {
        "schema": 1,
        "id": IDENTITY_ID,
        "display_name": "Test pattern (alignment check)",
        "actor": "none",
        "purpose": "tooling",
        "family": "testpattern",
        "model": {
            "file": "model.onnx",
            "sha256": sha256_file(model_path),
            "inputs": [{"name": "face", "shape": ["N", 3, size, size], "role": "face"}],
            "outputs": [
                {"name": "aged", "shape": ["N", 3, size, size], "role": "face"},
                {"name": "mask", "shape": ["N", 1, size, size], "role": "mask"},
            ],
        },
        "crop": {"size": size, "template": TEMPLATE},
        "normalisation": {"layout": "NCHW", "channels": "RGB"},
        "provenance": {
            "trained_by": "not trained: built from code by agecast.identities.testpattern",
            "command": "agecast identity build-testpattern models/testpattern",
            "notes": "Magenta tint, green 8x8 grid, template landmark crosses, crop border, "
            "elliptical mask. For checking detection, alignment and paste-back on set.",
        },
        # Tooling shows no one's likeness, so it runs without a consent record.
        "consent": None,
    }
    (out_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    return out_dir
