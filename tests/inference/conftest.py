"""Tiny agecast-df identity packages: a SwapNet with random weights, exported as ``agecast export``
writes it (the same ONNX exporter call), with a hand-written manifest."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from agecast.nets.df import FAMILY, AgeNet, ModelConfig, SwapNet
from agecast.training.export import _write_onnx
from tests.identities.conftest import vouch

SIZE = 64


def agecast_df_package(out: Path, *, age: bool = True, seed: int = 0) -> Path:
    torch.manual_seed(seed)
    config = ModelConfig(resolution=SIZE, encoder_dims=4, decoder_dims=4, age=age)
    net = SwapNet(AgeNet(config)).eval()
    if net.src.film is not None:  # untrained FiLM is zero: give the age input an effect
        with torch.no_grad():
            for p in net.src.film[-1].parameters():
                p.normal_(0, 0.2)
    out.mkdir(parents=True)
    data = _write_onnx(net, out / "model.onnx")
    inputs: list[dict[str, object]] = [
        {"name": "face", "shape": ["N", 3, SIZE, SIZE], "role": "face"}
    ]
    if age:
        inputs.append({"name": "age", "shape": ["N", 1], "role": "age"})
    manifest = {
        "schema": 1,
        "id": f"tiny-df-{seed}",
        "display_name": "tiny",
        "actor": "Test",
        "purpose": "demo",
        "age_range": [20, 80] if age else None,
        "family": FAMILY,
        "family_config": config.to_dict(),
        "model": {
            "file": "model.onnx",
            "sha256": hashlib.sha256(data).hexdigest(),
            "inputs": inputs,
            "outputs": [
                {"name": "face_out", "shape": ["N", 3, SIZE, SIZE], "role": "face"},
                {"name": "mask_out", "shape": ["N", 1, SIZE, SIZE], "role": "mask"},
            ],
        },
        "crop": {"size": SIZE, "template": "ffhq"},
    }
    (out / "manifest.json").write_text(json.dumps(manifest))
    return vouch(out)
