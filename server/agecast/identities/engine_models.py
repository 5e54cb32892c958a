"""What ``agecast engines build`` makes TensorRT plans for: the installed identities' models and
the bundled face detector, as the backend receives them."""

from __future__ import annotations

from pathlib import Path

from agecast.faces.onnx_fixups import folded_model_bytes
from agecast.faces.yunet import YUNET_SHA256, read_verified, yunet_model_path
from agecast.identities.package import discover, resolve
from agecast.inference.engines import EngineModel


def installed_models(identities_dirs: list[Path], identity: str | None = None) -> list[EngineModel]:
    """The installed identities' ONNX (one, if ``identity`` names it) and the bundled detector's,
    as the backend receives them (the detector after its DequantizeLinear folding)."""
    packages = [resolve(identity, identities_dirs)] if identity else discover(identities_dirs)
    models = [
        EngineModel.of(f"identity {p.manifest.id}", p.model_path.read_bytes())
        for p in packages
        if p.model_path.is_file()
    ]
    if identity is None:
        path = yunet_model_path()
        if path.is_file():
            data, _ = folded_model_bytes(read_verified(path, YUNET_SHA256))
            models.append(EngineModel.of(f"YuNet ({path.name})", data))
    return models
