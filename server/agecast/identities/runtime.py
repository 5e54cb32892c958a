"""Running an identity model on aligned crops: normalise, batch, run, denormalise."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from agecast.faces.align import template_points
from agecast.faces.regions import REGIONS, region_maps, target_age_map
from agecast.identities.package import IdentityPackage, load_model
from agecast.inference.base import Backend, Model
from agecast.manifest import Manifest, Normalisation

if TYPE_CHECKING:
    from agecast.identities.vouch import Vouches

AGE_MAP_SCALE = 100.0  # age maps hold years / 100 (agecast-reage)


@dataclass(frozen=True, slots=True)
class SwapResult:
    """Per face: replaced crop (N,3,S,S, 0–1 RGB), the model's mask (N,1,S,S) if it has one,
    and for a re-ageing model the RGB delta (N,3,S,S) it adds to the plate."""

    faces: torch.Tensor
    masks: torch.Tensor | None
    deltas: torch.Tensor | None = None


class IdentityModel:
    """A loaded identity: turns aligned 0–1 RGB crops into replaced crops (+ mask)."""

    def __init__(self, package: IdentityPackage, model: Model) -> None:
        self.package = package
        self.manifest: Manifest = package.manifest
        self.model = model
        decl = self.manifest.model
        face_in = decl.tensor("inputs", "face")
        face_out = decl.tensor("outputs", "face")
        assert face_in is not None and face_out is not None  # guaranteed by the manifest schema
        self._face_in = face_in.name
        self._face_out = face_out.name
        mask_out = decl.tensor("outputs", "mask")
        self._mask_out = mask_out.name if mask_out else None
        delta_out = decl.tensor("outputs", "delta")
        self._delta_out = delta_out.name if delta_out else None
        age_map_in = decl.tensor("inputs", "age_map")
        self._age_map_in = age_map_in.name if age_map_in else None
        batch = model.input_spec(self._face_in).shape[0]
        # A model with a fixed batch of 1 runs once per face; a dynamic one takes all at once.
        self._max_batch = batch if isinstance(batch, int) and batch > 0 else 64
        # An extra input with a fixed leading size (a DFM's morph_value:0 is (1,)) is not per
        # face: it is fed as declared, and the model then runs one face at a time.
        self._fixed = {
            s.name
            for s in model.inputs
            if s.name != self._face_in
            and s.shape
            and isinstance(s.shape[0], int)
            and s.shape[0] > 0
        }
        if self._fixed:
            self._max_batch = 1
        age_in = decl.tensor("inputs", "age")
        self._age_in = age_in.name if age_in is not None and age_in.value is None else None
        self._age_control = self.manifest.age_control
        declared = {t.name: t for t in decl.inputs}
        self._extra: dict[str, torch.Tensor] = {}
        for spec in model.inputs:
            if spec.name in (self._face_in, self._age_in, self._age_map_in):
                continue
            shape = [d if isinstance(d, int) and d > 0 else 1 for d in spec.shape]
            if not shape:
                shape = [1]
            d = declared.get(spec.name)
            if d is not None and d.value is not None:
                value = torch.tensor(d.value, dtype=torch.float32).reshape(1, *shape[1:])
            elif d is not None and d.role == "morph":
                value = torch.ones(shape)  # a DFM's morph factor: the full swap unless given
            else:
                value = torch.zeros(shape)
            self._extra[spec.name] = value
        self._age_shape = next(
            (
                [d if isinstance(d, int) and d > 0 else 1 for d in s.shape]
                for s in model.inputs
                if s.name == self._age_in
            ),
            [1, 1],
        )

    @classmethod
    def load(
        cls, package: IdentityPackage, backend: Backend, vouches: Vouches | None = None
    ) -> IdentityModel:
        """Load ``package`` to run (consent or a vouch checked: ``package.load_model``)."""
        return cls(package, load_model(package, backend, vouches=vouches))

    @property
    def crop_size(self) -> int:
        return self.manifest.crop.size

    @property
    def age_control(self) -> tuple[int, int, int] | None:
        """(youngest, oldest, default) years when this identity takes a continuous age."""
        return self._age_control

    def age_value(self, age: float | None) -> float:
        """The model's 0–1 age input for ``age`` years (None: the identity's default age),
        clamped to the ages it was trained on."""
        if self._age_control is None:
            return 0.0
        lo, hi, default = self._age_control
        years = default if age is None else min(max(float(age), lo), hi)
        return (years - lo) / (hi - lo)

    @property
    def local_ages(self) -> bool:
        """Regions (forehead, eyes, mouth, hair) can be given their own age offset."""
        return self._age_map_in is not None

    def age_maps(
        self,
        n: int,
        age: float | None,
        offsets: tuple[float, ...] | None,
        landmarks: torch.Tensor | None,
        device: torch.device,
    ) -> torch.Tensor:
        """(N,2,S,S) current and target age maps (years / 100) for a re-ageing model.

        ``landmarks`` (N,5,2) are the faces' points in crop pixels (the template's without them);
        ``offsets`` add years per region (``agecast.faces.regions.REGIONS``); every pixel's target
        stays within the ages the identity was trained on."""
        control = self._age_control
        assert control is not None and self.manifest.plate_age is not None
        lo, hi, default = control
        size = self.crop_size
        if landmarks is None:
            points = template_points(self.manifest.crop.template, size)
            landmarks = points.expand(n, 5, 2)
        regions = torch.stack([region_maps(p, size) for p in landmarks.to(device)])
        years = default if age is None else float(age)
        extra = torch.tensor(
            [list(offsets or (0.0,) * len(REGIONS))] * n, dtype=torch.float32, device=device
        )
        target = target_age_map(torch.full((n,), years, device=device), extra, regions)
        current = torch.full_like(target, float(self.manifest.plate_age))
        return torch.cat([current, target.clamp(lo, hi)], 1) / AGE_MAP_SCALE

    def infer(
        self,
        crops: torch.Tensor,
        age: float | None = None,
        offsets: tuple[float, ...] | None = None,
        landmarks: torch.Tensor | None = None,
    ) -> SwapResult:
        """``crops``: (N,3,S,S) float 0–1 RGB on any device; results on the same device.
        ``age``: target age in years for identities with an age control (ignored otherwise);
        ``offsets`` (years per region) and ``landmarks`` (N,5,2 in crop pixels) for identities
        that take age maps."""
        faces: list[torch.Tensor] = []
        masks: list[torch.Tensor] = []
        deltas: list[torch.Tensor] = []
        for start in range(0, crops.shape[0], self._max_batch):
            chunk = crops[start : start + self._max_batch]
            n = chunk.shape[0]
            feeds = {self._face_in: _to_model(chunk, self.manifest.normalisation)}
            if self._age_map_in is not None:
                points = None if landmarks is None else landmarks[start : start + n]
                feeds[self._age_map_in] = self.age_maps(n, age, offsets, points, chunk.device)
            feeds.update(
                {
                    k: t if k in self._fixed else t.expand(n, *t.shape[1:])
                    for k, t in self._extra.items()
                }
            )
            if self._age_in is not None:
                shape = (
                    self._age_shape if self._age_in in self._fixed else [n, *self._age_shape[1:]]
                )
                feeds[self._age_in] = torch.full(shape, self.age_value(age))
            out = self.model.run(feeds)
            faces.append(_from_model(out[self._face_out], self.manifest.normalisation))
            if self._mask_out:
                mask = out[self._mask_out].float()
                if mask.ndim == 4 and mask.shape[-1] == 1 and mask.shape[1] != 1:
                    mask = mask.permute(0, 3, 1, 2)
                masks.append(mask.clamp(0, 1))
            if self._delta_out:
                deltas.append(out[self._delta_out].float())
        device = crops.device
        return SwapResult(
            torch.cat(faces).to(device),
            torch.cat(masks).to(device) if masks else None,
            torch.cat(deltas).to(device) if deltas else None,
        )

    def close(self) -> None:
        self.model.close()


def _to_model(crops: torch.Tensor, norm: Normalisation) -> torch.Tensor:
    x = crops
    if norm.channels == "BGR":
        x = x.flip(1)
    mean = torch.tensor(norm.mean, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(norm.std, device=x.device).view(1, 3, 1, 1)
    x = (x - mean) / std
    if norm.layout == "NHWC":
        x = x.permute(0, 2, 3, 1)
    return x.contiguous()


def _from_model(y: torch.Tensor, norm: Normalisation) -> torch.Tensor:
    y = y.float()
    if norm.layout == "NHWC":
        y = y.permute(0, 3, 1, 2)
    mean = torch.tensor(norm.output_mean or norm.mean, device=y.device).view(1, 3, 1, 1)
    std = torch.tensor(norm.output_std or norm.std, device=y.device).view(1, 3, 1, 1)
    y = y * std + mean
    if norm.channels == "BGR":
        y = y.flip(1)
    return y.clamp(0, 1)
