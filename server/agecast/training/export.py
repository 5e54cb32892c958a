"""``agecast export``: a trained run → an identity package the live path loads.

The package holds ``manifest.json``, ``model.onnx`` (encoder + inter + src decoder: footage crop
and age in, face and mask out) and ``preview.png``. Before the manifest is written the package
is loaded through the same runtime the live path uses (onnxruntime, the manifest's age mapping
and normalisation) and compared with the torch model on held-out crops at several ages; the
largest difference is printed and stored in the manifest. ``--format dfm`` also writes a
DeepFaceLive-compatible ``.dfm`` beside it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from PIL import Image

from agecast import __version__
from agecast.errors import TrainError
from agecast.identities.package import check_contract, read_package
from agecast.identities.runtime import IdentityModel
from agecast.inference import get_backend
from agecast.manifest import (
    MANIFEST_NAME,
    ColorMatch,
    ConsentRecord,
    Manifest,
    Purpose,
)
from agecast.nets.df import FAMILY, SwapNet
from agecast.nets.reage import FAMILY as REAGE_FAMILY
from agecast.training.data import load_faces
from agecast.training.faceset import Faceset
from agecast.training.train import RunRecord, load_checkpoint

log = logging.getLogger(__name__)

PARITY_LIMIT = 2e-3  # on the 0–1 pixel scale: far below one 8-bit level (0.0039)


@dataclass(frozen=True, slots=True)
class ExportReport:
    package: Path
    parity_max_abs_diff: float
    parity_crops: int
    model_bytes: int
    dfm: Path | None = None


def write_onnx(
    net: torch.nn.Module,
    args: tuple[torch.Tensor, ...],
    path: Path,
    inputs: list[str],
    outputs: list[str],
) -> bytes:
    """``net`` to ONNX at ``path`` (opset 17, every tensor's first axis the batch); its bytes."""
    dynamic = {name: {0: "N"} for name in [*inputs, *outputs]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            net,
            args,
            str(path),
            input_names=inputs,
            output_names=outputs,
            dynamic_axes=dynamic,
            opset_version=17,
            dynamo=False,
        )
    return path.read_bytes()


def _write_onnx(net: SwapNet, path: Path) -> bytes:
    r = net.config.resolution
    args: tuple[torch.Tensor, ...] = (torch.rand(1, 3, r, r),)
    if net.config.age:
        args = (*args, torch.rand(1, 1))
    inputs = ["face", "age"] if net.config.age else ["face"]
    return write_onnx(net, args, path, inputs, ["face_out", "mask_out"])


def _held_out(record: RunRecord, resolution: int) -> torch.Tensor:
    """The run's held-out footage crops (N,3,R,R), falling back to the first faces."""
    try:
        faceset = Faceset.load(Path(record.dst))
    except Exception as exc:
        raise TrainError(
            f"export checks the model on the run's held-out faces from {record.dst}, which "
            f"cannot be read ({exc}); restore the faceset or retrain"
        ) from exc
    faces = load_faces(faceset, resolution)
    idx = [i for i, f in enumerate(faces.files) if f in set(record.held_out)] or [0]
    return faces.subset(idx[:16]).images


@dataclass(frozen=True, slots=True)
class ExportMeta:
    """What the person exporting says of the identity: its manifest's who and what."""

    identity_id: str
    actor: str
    display_name: str | None = None
    purpose: Purpose = "likeness"
    target_age: int | None = None
    consent: ConsentRecord | None = None
    source_footage: str = ""
    notes: str = ""
    command: str = ""  # the CLI line that asked for it (after the training command)
    color_transfer: ColorMatch | None = None

    @property
    def name(self) -> str:
        """What the crew sees: the display name, else the id."""
        return self.display_name or self.identity_id

    def provenance(self, record: RunRecord, trained_by: str) -> dict[str, Any]:
        """The manifest's provenance: the run (``trained_by``, steps, time, device), the
        training and export commands, the footage, the notes."""
        return {
            "trained_by": f"agecast {__version__} {trained_by} ({record.step} steps, "
            f"{record.seconds / 60:.0f} min on {record.device})",
            "command": f"{record.command}\n{self.command}",
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "source_footage": self.source_footage,
            "notes": self.notes,
        }

    def fields(self) -> dict[str, Any]:
        """The manifest fields every family writes alike."""
        return {
            "schema": 1,
            "id": self.identity_id,
            "display_name": self.name,
            "actor": self.actor,
            "purpose": self.purpose,
            "target_age": self.target_age,
            "consent": self.consent.model_dump(mode="json") if self.consent else None,
        }


def _manifest(record: RunRecord, net: SwapNet, onnx_sha: str, meta: ExportMeta) -> dict[str, Any]:
    r = net.config.resolution
    inputs: list[dict[str, Any]] = [{"name": "face", "shape": ["N", 3, r, r], "role": "face"}]
    age_range: list[int] | None = None
    if net.config.age:
        if record.age_range is None:
            raise TrainError("the model takes an age but its run records no age range")
        lo, hi = record.age_range
        if lo != int(lo) or hi != int(hi):
            raise TrainError(f"age range {lo}–{hi}: give faceset ages in whole years")
        age_range = [int(lo), int(hi)]
        inputs.append({"name": "age", "shape": ["N", 1], "role": "age"})
    manifest: dict[str, Any] = {
        **meta.fields(),
        "age_range": age_range,
        "family": FAMILY,
        "family_config": net.config.to_dict(),
        "model": {
            "file": "model.onnx",
            "sha256": onnx_sha,
            "inputs": inputs,
            "outputs": [
                {"name": "face_out", "shape": ["N", 3, r, r], "role": "face"},
                {"name": "mask_out", "shape": ["N", 1, r, r], "role": "mask"},
            ],
        },
        "crop": {"size": r, "template": record.template},
        "color_transfer": meta.color_transfer,
        "provenance": meta.provenance(record, "train"),
        "preview": "preview.png",
    }
    return manifest


def finish_package(
    run: Path, out: Path, manifest: dict[str, Any], worst: float, crops: int, preview: np.ndarray
) -> None:
    """Every family's last step: refuse a model onnxruntime and torch disagree on (by ``worst``
    over ``crops`` held-out crops), then write the preview and the manifest with those figures,
    and read the package back."""
    if not worst <= PARITY_LIMIT:
        raise TrainError(
            f"onnxruntime and torch disagree by {worst:.2e} on held-out crops (limit "
            f"{PARITY_LIMIT:.0e}): the exported model is not the trained one; report this"
        )
    Image.fromarray(preview).save(out / "preview.png", optimize=True)
    manifest["provenance"]["parity_max_abs_diff"] = float(f"{worst:.3g}")
    manifest["provenance"]["parity_crops"] = crops
    (out / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2) + "\n")
    read_package(out)  # the written package reads back
    log.info(
        "exported %s → %s: onnxruntime vs torch max |diff| %.2e over %d held-out crops",
        run,
        out,
        worst,
        crops,
    )


def export_run(
    run: Path, out: Path, meta: ExportMeta, *, fmt: Literal["onnx", "dfm"] = "onnx"
) -> ExportReport:
    """Export ``run`` as a package in ``out``, described by ``meta``."""
    record = RunRecord.load(run)
    if out.exists() and any(out.iterdir()):
        raise TrainError(f"{out} exists and is not empty: export to a new folder")
    if record.family == REAGE_FAMILY:
        from agecast.training.reage_export import export_reage

        if fmt != "onnx":
            raise TrainError(f"--format {fmt}: an {REAGE_FAMILY} identity exports as onnx only")
        return export_reage(record, run, out, meta)
    full, _ = load_checkpoint(run, "cpu")
    net = SwapNet(full).eval()
    out.mkdir(parents=True, exist_ok=True)
    data = _write_onnx(net, out / "model.onnx")
    manifest = _manifest(record, net, hashlib.sha256(data).hexdigest(), meta)
    Manifest.model_validate(manifest)  # fail before anything else is written
    crops = _held_out(record, net.config.resolution)
    worst = _parity(out, manifest, net, crops)
    finish_package(run, out, manifest, worst, int(crops.shape[0]), _preview(net, crops[:1]))
    dfm: Path | None = None
    if fmt == "dfm":
        from agecast.identities.dfm import write_dfm

        dfm = out / f"{meta.identity_id}.dfm"
        write_dfm(out, dfm)
    return ExportReport(out, worst, int(crops.shape[0]), len(data), dfm)


def _ages(net: SwapNet) -> list[float | None]:
    return [0.0, 0.5, 1.0] if net.config.age else [None]


@torch.no_grad()
def _preview(net: SwapNet, crop: torch.Tensor) -> np.ndarray:
    tiles = [crop[0]]
    for a in _ages(net):
        age = None if a is None else torch.full((1, 1), a)
        tiles.append(net(crop, age)[0][0])
    grid = torch.cat(tiles, dim=2)
    return (grid.permute(1, 2, 0).clamp(0, 1).numpy() * 255).round().astype(np.uint8)


@torch.no_grad()
def _parity(out: Path, manifest: dict[str, Any], net: SwapNet, crops: torch.Tensor) -> float:
    """Largest |runtime - torch| over faces and masks at the youngest, middle and oldest age,
    through the live runtime (manifest age mapping, normalisation, onnxruntime)."""
    (out / MANIFEST_NAME).write_text(json.dumps(manifest))
    package = read_package(out)
    # Not load_model: a likeness exported before its consent is recorded is still checked.
    model = get_backend("onnxruntime").load(package.model_path, label="export parity")
    check_contract(package, model)
    identity = IdentityModel(package, model)
    try:
        worst = 0.0
        for a in _ages(net):
            years = None
            age_t = None
            if a is not None:
                lo, hi = manifest["age_range"]
                years = lo + a * (hi - lo)
                age_t = torch.full((crops.shape[0], 1), a)
            face, mask = net(crops, age_t)
            got = identity.infer(crops, years)
            worst = max(worst, float((got.faces - face).abs().max()))
            if got.masks is not None:
                worst = max(worst, float((got.masks - mask).abs().max()))
        return worst if math.isfinite(worst) else math.inf
    finally:
        identity.close()
