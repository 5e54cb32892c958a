"""Export of an ``agecast-reage`` run: ONNX (face + age maps in; face, delta and mask out),
manifest and preview, checked through the live runtime against torch before it is written."""

from __future__ import annotations

import hashlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from agecast.errors import TrainError
from agecast.faces.regions import REGIONS
from agecast.identities.package import check_contract, read_package
from agecast.identities.runtime import IdentityModel
from agecast.inference import get_backend
from agecast.manifest import MANIFEST_NAME, Manifest
from agecast.nets.reage import FAMILY, ReageNet
from agecast.training.export import (
    ExportMeta,
    ExportReport,
    _held_out,
    finish_package,
    write_onnx,
)
from agecast.training.reage_train import load_reage_checkpoint
from agecast.training.train import RunRecord

log = logging.getLogger(__name__)


def _write_onnx(net: ReageNet, path: Path) -> bytes:
    r = net.config.resolution
    args = (torch.rand(1, 3, r, r), torch.full((1, 2, r, r), 0.5))
    return write_onnx(net, args, path, ["face", "age_maps"], ["face_out", "delta_out", "mask_out"])


def _manifest(record: RunRecord, net: ReageNet, sha: str, meta: ExportMeta) -> dict[str, Any]:
    r = net.config.resolution
    assert record.age_range is not None
    lo, hi = record.age_range
    if lo != int(lo) or hi != int(hi):
        raise TrainError(f"age range {lo}–{hi}: give faceset ages in whole years")
    return {
        **meta.fields(),
        "age_range": [int(lo), int(hi)],
        "plate_age": int(lo),
        "mouth": "plate",
        "family": FAMILY,
        "family_config": net.config.to_dict(),
        "model": {
            "file": "model.onnx",
            "sha256": sha,
            "inputs": [
                {"name": "face", "shape": ["N", 3, r, r], "role": "face"},
                {"name": "age_maps", "shape": ["N", 2, r, r], "role": "age_map"},
            ],
            "outputs": [
                {"name": "face_out", "shape": ["N", 3, r, r], "role": "face"},
                {"name": "delta_out", "shape": ["N", 3, r, r], "role": "delta"},
                {"name": "mask_out", "shape": ["N", 1, r, r], "role": "mask"},
            ],
        },
        "crop": {"size": r, "template": record.template},
        "color_transfer": "none",  # the delta is relative to the plate's own light
        "provenance": meta.provenance(record, f"train --family {FAMILY}"),
        "preview": "preview.png",
    }


def export_reage(record: RunRecord, run: Path, out: Path, meta: ExportMeta) -> ExportReport:
    net, _ = load_reage_checkpoint(run, "cpu")
    net.eval()
    out.mkdir(parents=True, exist_ok=True)
    data = _write_onnx(net, out / "model.onnx")
    manifest = _manifest(record, net, hashlib.sha256(data).hexdigest(), meta)
    Manifest.model_validate(manifest)  # fail before anything else is written
    crops = _held_out(record, net.config.resolution)
    worst, preview = _parity(out, manifest, net, crops)
    finish_package(run, out, manifest, worst, int(crops.shape[0]), preview)
    return ExportReport(out, worst, int(crops.shape[0]), len(data))


@torch.no_grad()
def _parity(
    out: Path, manifest: dict[str, Any], net: ReageNet, crops: torch.Tensor
) -> tuple[float, np.ndarray]:
    """Largest |runtime - torch| over face, delta and mask at the youngest, middle and oldest
    age and with a local offset, through the live runtime; and the preview (plate | middle |
    oldest) from the same run."""
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    package = read_package(out)
    model = get_backend("onnxruntime").load(package.model_path, label="export parity")
    check_contract(package, model)
    identity = IdentityModel(package, model)
    lo, hi = manifest["age_range"]
    eyes = tuple(float(lo - hi) if r == "eyes" else 0.0 for r in REGIONS)
    tiles = [crops[0]]
    try:
        worst = 0.0
        n = crops.shape[0]
        for years, offsets in ((lo, None), ((lo + hi) / 2, None), (hi, None), (hi, eyes)):
            maps = identity.age_maps(n, years, offsets, None, crops.device)
            face, delta, mask = net(crops, maps)
            got = identity.infer(crops, years, offsets)
            assert got.masks is not None and got.deltas is not None
            worst = max(
                worst,
                float((got.faces - face).abs().max()),
                float((got.deltas - delta).abs().max()),
                float((got.masks - mask).abs().max()),
            )
            if offsets is None and years != lo:
                tiles.append(face[0])
        grid = torch.cat(tiles, dim=2)
        preview = (grid.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        return (worst if math.isfinite(worst) else math.inf), preview
    finally:
        identity.close()
