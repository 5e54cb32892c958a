"""The identity manifest: what a package promises about its model.

A package is a folder holding ``manifest.json``, the model file it names and optionally a
preview image. Every field is checked when the package loads; an error names the file and
the field.

A likeness carries the actor's consent record. Its shape is checked when the manifest is read;
whether it lets the identity run today is checked when the model is loaded (``check_consent``),
so a package with lapsed consent can still be listed and inspected.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

MANIFEST_NAME = "manifest.json"
SCHEMA_VERSION = 1

MAX_DIM = 16384
MAX_ELEMENTS = 1 << 27  # 512 MB of float32: far above any face model's tensor

# face: the aligned crop in / the replaced crop out; mask: where the output applies; age: a
# target age (0–1 over age_range); age_map: per-pixel current and target ages (N,2,S,S, years /
# 100; agecast-reage); delta: an RGB change to add to the plate (agecast-reage); morph: a DFM's
# morph factor; embedding: a source face embedding (inswapper).
TensorRole = Literal["face", "mask", "age", "age_map", "delta", "morph", "embedding", "other"]
# likeness: an actor's face for production (needs consent); demo: the shipped demonstration
# identity (a procedural transform of a public-domain photo, never a production likeness);
# tooling: test patterns for placement and latency checks.
Purpose = Literal["likeness", "demo", "tooling"]
# The colour match an identity is made for (see Manifest.color_transfer).
ColorMatch = Literal["rct", "rct-lab", "none"]


# The alignment templates a manifest may name (torch-free: ``agecast identity list`` reads
# manifests and nothing heavier). Their points are in :data:`agecast.faces.align.TEMPLATES`,
# which checks it has these.
TEMPLATE_NAMES = (
    "arcface_112",
    "arcface_128",
    "ffhq",
    "dfl_full_face",
    "dfl_whole_face",
    "dfl_head",
)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TensorDecl(_Strict):
    """One model input or output. ``shape`` uses -1 (or a name) for a dynamic axis.

    ``value`` fixes an input to a constant fed on every call (a source embedding computed at
    import, a DFM morph factor), flattened; it must fill the input's shape without the batch.
    """

    name: str
    shape: list[int | str] = Field(max_length=8)
    dtype: Literal["float32", "float16", "uint8"] = "float32"
    role: TensorRole = "other"
    value: list[float] | None = None

    @field_validator("shape")
    @classmethod
    def _sane_shape(cls, v: list[int | str]) -> list[int | str]:
        # buffers are made from declared shapes: a shape of a trillion numbers is refused here,
        # not discovered as an out-of-memory error while the monitor runs
        elements = 1
        for dim in v:
            if isinstance(dim, int):  # 0 or less: dynamic
                if dim > MAX_DIM:
                    raise ValueError(f"dimension {dim}: at most {MAX_DIM} (or -1 for dynamic)")
                elements *= max(dim, 1)
        if elements > MAX_ELEMENTS:
            raise ValueError(f"{elements} numbers per tensor; at most {MAX_ELEMENTS}")
        return v


SHA256 = r"^[0-9a-f]{64}$"


def _plain(name: str) -> str:
    if not name or "/" in name or "\\" in name or name.startswith(".") or len(name) > 255:
        raise ValueError(f"{name!r} must be a file name inside the package folder")
    return name


class ModelDecl(_Strict):
    file: str = "model.onnx"
    sha256: str = Field(pattern=SHA256)
    # every other file the model reads (ONNX external weights): name → sha256, so the package
    # is checked whole, not just model.onnx
    files: dict[str, str] = Field(default_factory=dict, max_length=1000)
    inputs: list[TensorDecl] = Field(min_length=1)
    outputs: list[TensorDecl] = Field(min_length=1)

    @field_validator("file")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        return _plain(v)

    @field_validator("files")
    @classmethod
    def _plain_hashed(cls, v: dict[str, str]) -> dict[str, str]:
        for name, digest in v.items():
            _plain(name)
            if not re.fullmatch(SHA256, digest):
                raise ValueError(f"files.{name}: a sha256 is 64 lowercase hex digits")
        return v

    @model_validator(mode="after")
    def _has_face(self) -> ModelDecl:
        if not any(t.role == "face" for t in self.inputs):
            raise ValueError("inputs need one tensor with role 'face'")
        if not any(t.role == "face" for t in self.outputs):
            raise ValueError("outputs need one tensor with role 'face'")
        for t in self.inputs:
            if t.value is None:
                continue
            fixed = [d for d in t.shape[1:] if isinstance(d, int) and d > 0]
            need = 1
            for d in fixed:
                need *= d
            if len(fixed) == len(t.shape) - 1 and len(t.value) != need:
                raise ValueError(
                    f"input {t.name!r}: value has {len(t.value)} numbers, shape {t.shape} "
                    f"needs {need} per item"
                )
        return self

    def tensor(self, side: Literal["inputs", "outputs"], role: TensorRole) -> TensorDecl | None:
        return next((t for t in getattr(self, side) if t.role == role), None)

    @property
    def local_ages(self) -> bool:
        """The model takes per-pixel age maps, so regions can be given their own age."""
        return self.tensor("inputs", "age_map") is not None


class CropDecl(_Strict):
    """Aligned crop the model expects: size in pixels and a 5-point template."""

    size: int = Field(ge=32, le=1024)
    template: str | list[tuple[float, float]] = "ffhq"

    @field_validator("template")
    @classmethod
    def _five_points(cls, v: str | list[tuple[float, float]]) -> str | list[tuple[float, float]]:
        if isinstance(v, list) and len(v) != 5:
            raise ValueError("a template given as points needs exactly 5 (x, y) pairs in 0–1")
        if isinstance(v, str) and v not in TEMPLATE_NAMES:
            raise ValueError(
                f"unknown template {v!r}; use one of {', '.join(sorted(TEMPLATE_NAMES))}"
            )
        return v


class Normalisation(_Strict):
    """How 0–1 RGB crops map to model tensors: (x - mean) / std, channel order, layout."""

    layout: Literal["NCHW", "NHWC"] = "NCHW"
    channels: Literal["RGB", "BGR"] = "RGB"
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    output_mean: tuple[float, float, float] | None = None
    output_std: tuple[float, float, float] | None = None

    @field_validator("std", "output_std")
    @classmethod
    def _nonzero(cls, v: tuple[float, float, float] | None) -> tuple[float, float, float] | None:
        if v is not None and any(s == 0 for s in v):
            raise ValueError("std must not be 0")
        return v


class Provenance(_Strict):
    trained_by: str = ""
    command: str = ""
    created: str = ""
    source_footage: str = ""
    notes: str = ""
    # export check: largest |onnxruntime - torch| over held-out crops (0–1 pixel scale)
    parity_max_abs_diff: float | None = None
    parity_crops: int | None = None


class ConsentRecord(_Strict):
    """The actor's consent to run their likeness: who granted it, for what, and when."""

    actor: str = Field(min_length=1)
    granted_by: str = Field(min_length=1)
    production: str = Field(min_length=1)
    purposes: list[str] = Field(min_length=1)
    valid_from: date
    valid_until: date
    reference: str | None = None
    notes: str | None = None

    @field_validator("actor", "granted_by", "production")
    @classmethod
    def _not_blank(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("must not be blank")
        return v

    @field_validator("purposes")
    @classmethod
    def _named_purposes(cls, v: list[str]) -> list[str]:
        if any(not p.strip() for p in v):
            raise ValueError("each purpose must be named, e.g. 'on-set monitoring'")
        return v

    @field_validator("valid_until")
    @classmethod
    def _not_before_start(cls, v: date, info: ValidationInfo) -> date:
        start = info.data.get("valid_from")  # absent when valid_from itself failed
        if start is not None and v < start:
            raise ValueError(f"{v} is before valid_from {start}; check both dates")
        return v


class Manifest(_Strict):
    schema_version: int = Field(SCHEMA_VERSION, alias="schema")
    id: str
    display_name: str
    actor: str
    purpose: Purpose = "likeness"
    target_age: int | None = Field(None, ge=0, le=130)
    age_range: tuple[int, int] | None = None
    # the actor's age in the footage the model runs on (a re-ageing model's "current age")
    plate_age: int | None = Field(None, ge=0, le=130)
    # the mouth interior (teeth, tongue) between the lips: kept as the plate, or the model's
    mouth: Literal["plate", "model"] = "plate"
    family: str
    # the family's own description of the network (e.g. agecast-df's ModelConfig), so a native
    # backend can rebuild it from the ONNX file's weights
    family_config: dict[str, int | float | bool | str] | None = None
    model: ModelDecl
    crop: CropDecl
    normalisation: Normalisation = Normalisation()
    # The colour match this identity is made for, used when the operator leaves colour transfer
    # on auto: none for a model trained on the plate's own light, or whose colour changes (grey
    # hair, skin tone) are the effect; rct when its faces come from other footage.
    color_transfer: ColorMatch | None = None
    provenance: Provenance = Provenance()
    consent: ConsentRecord | None = None
    preview: str | None = None

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _age_range_for_age_input(self) -> Manifest:
        age_in = self.model.tensor("inputs", "age") or self.model.tensor("inputs", "age_map")
        if self.model.tensor("inputs", "age_map") is not None and self.plate_age is None:
            raise ValueError(
                "model input takes age maps: set plate_age (the actor's age in the footage)"
            )
        if age_in is not None and age_in.value is None:
            if self.age_range is None:
                raise ValueError(
                    f"model input {age_in.name!r} takes an age: set age_range [youngest, oldest]"
                )
            lo, hi = self.age_range
            if hi <= lo:
                raise ValueError(f"age_range {list(self.age_range)}: oldest must exceed youngest")
            if self.target_age is not None and not lo <= self.target_age <= hi:
                raise ValueError(f"target_age {self.target_age} is outside age_range")
        return self

    @property
    def age_control(self) -> tuple[int, int, int] | None:
        """(youngest, oldest, default) when the model takes a continuous age, else None."""
        age_in = self.model.tensor("inputs", "age") or self.model.tensor("inputs", "age_map")
        if age_in is None or age_in.value is not None or self.age_range is None:
            return None
        lo, hi = self.age_range
        return lo, hi, self.target_age if self.target_age is not None else hi

    @field_validator("id")
    @classmethod
    def _slug(cls, v: str) -> str:
        if not re.fullmatch(r"[a-z0-9][a-z0-9._-]{0,63}", v):
            raise ValueError("use lowercase letters, digits, '.', '_' or '-' (max 64)")
        return v

    @field_validator("schema_version")
    @classmethod
    def _known_schema(cls, v: int) -> int:
        if v != SCHEMA_VERSION:
            raise ValueError(f"this agecast reads schema {SCHEMA_VERSION}; upgrade agecast")
        return v

    @property
    def age_label(self) -> str:
        control = self.age_control
        if control is not None:
            return f"ages {control[0]}–{control[1]} (default {control[2]})"
        if self.target_age is not None:
            return f"age {self.target_age}"
        if self.age_range is not None:
            return f"ages {self.age_range[0]}–{self.age_range[1]}"
        return "no age"
