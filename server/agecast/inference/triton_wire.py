"""How an identity's tensors travel between an agecast node and Triton: "the wire".

A 256² face crop is 786 kB as float32; a face and a mask back are another 1 MB. Every byte is
copied several times per frame on the way (into shared memory or a gRPC message, into the
server, out again) and, between hosts, crosses the network 30 times a second per camera. The
pictures behind them are 8-bit, so the ``compact`` wire carries them as 8-bit codes:

- the face crop in and the face out (role ``face``), and the mask out (role ``mask``): ``uint8``
  codes of the model's own value range, per channel: code 0 is the value of a 0 pixel after the
  identity's normalisation, code 255 that of a 1 pixel (what the node clamps to anyway), so
  one code is 1/255 of a pixel's range, what an 8-bit picture can show;
- every other large float tensor (a re-ageing model's delta and age maps): ``float16``;
- small ones (an age, a morph factor, a source embedding) and non-float ones: as the model
  declares them.

``float32`` is the wire of the model itself (nothing converted: the pixels equal in-process
ones bit for bit where the server runs the same onnxruntime).

The repository writer (``agecast triton repo``) wraps the identity's ONNX so that it takes and
gives the wire's tensors (the conversion runs inside the server, next to the model) and writes
the wire into the model's ``config.pbtxt`` (parameter ``agecast_wire``, per version); the
backend reads it when it connects and converts on its side. No heavy imports here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from agecast.errors import BackendError
from agecast.inference.base import TensorSpec
from agecast.manifest import Manifest

WireKind = Literal["compact", "float32"]
WIRE_KINDS: tuple[str, ...] = ("compact", "float32")
WIRE_PARAMETER = "agecast_wire"  # config.pbtxt parameter: {"VERSION": {tensor: {…}}}
# a float tensor smaller than this (per sample) stays float32: converting it saves nothing
HALF_MIN_ELEMENTS = 4096
# ONNX Round (and Clip's bounds as inputs) came in opset 11: older models get float16 instead
UINT8_MIN_OPSET = 11
# roles of pictures and maps (an age, a morph factor or a source embedding is a value, not these)
_HALF_ROLES = frozenset({"face", "mask", "age_map", "delta", "other"})


@dataclass(frozen=True, slots=True)
class WireTensor:
    """One tensor on the wire: ``float16``, or ``uint8`` codes where value = code × step + lo
    (one lo and step per channel along ``axis``, or one for the whole tensor)."""

    dtype: Literal["uint8", "float16"]
    lo: tuple[float, ...] = ()
    step: tuple[float, ...] = ()
    axis: int = 1

    def to_json(self) -> dict[str, object]:
        if self.dtype == "float16":
            return {"dtype": "float16"}
        return {"dtype": "uint8", "lo": list(self.lo), "step": list(self.step), "axis": self.axis}

    @classmethod
    def from_json(cls, name: str, value: object) -> WireTensor:
        if not isinstance(value, dict) or value.get("dtype") not in ("uint8", "float16"):
            raise BackendError(f"wire of {name}: {value!r} is neither uint8 nor float16")
        if value["dtype"] == "float16":
            return cls("float16")
        try:
            lo = tuple(float(x) for x in value["lo"])
            step = tuple(float(x) for x in value["step"])
            axis = int(value["axis"])
        except (KeyError, TypeError, ValueError) as exc:
            raise BackendError(f"wire of {name}: {value!r} lacks lo, step or axis") from exc
        if not lo or len(lo) != len(step) or not all(s > 0 and math.isfinite(s) for s in step):
            raise BackendError(f"wire of {name}: lo {lo} and step {step} do not pair up")
        return cls("uint8", lo, step, axis)

    def broadcast_shape(self, rank: int) -> list[int]:
        """The shape lo and step take to broadcast over a tensor of ``rank`` dimensions."""
        shape = [1] * rank
        if len(self.lo) > 1:
            shape[self.axis] = len(self.lo)
        return shape


Wire = dict[str, WireTensor]


def _channel_range(mean: Sequence[float], std: Sequence[float]) -> tuple[list[float], list[float]]:
    """Per channel, the model values of a 0 and a 1 pixel ((x - mean) / std), low first."""
    ends = [((0 - m) / s, (1 - m) / s) for m, s in zip(mean, std, strict=True)]
    return [min(a, b) for a, b in ends], [max(a, b) for a, b in ends]


def _codes(lo: Sequence[float], hi: Sequence[float], axis: int) -> WireTensor:
    steps = tuple((high - low) / 255.0 for low, high in zip(lo, hi, strict=True))
    return WireTensor("uint8", tuple(lo), steps, axis)


def _per_sample(spec: TensorSpec) -> int:
    """Elements per sample (a dynamic dimension counts as large)."""
    count = 1
    for d in spec.shape[1:]:
        count *= d if isinstance(d, int) and d > 0 else HALF_MIN_ELEMENTS
    return count


def plan_wire(
    manifest: Manifest,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    kind: WireKind,
    opset: int,
) -> Wire:
    """The compact wire of an identity's model (empty for ``float32``): which of its tensors
    travel as 8-bit codes or half floats, from the roles and normalisation its manifest
    declares."""
    if kind == "float32":
        return {}
    norm = manifest.normalisation
    roles = {t.name: t.role for t in (*manifest.model.inputs, *manifest.model.outputs)}
    axis = 1 if norm.layout == "NCHW" else 3
    wire: Wire = {}
    for spec, is_input in [*((s, True) for s in inputs), *((s, False) for s in outputs)]:
        if spec.dtype != "float32":
            continue
        role = roles.get(spec.name, "other")
        rank = len(spec.shape)
        codes = opset >= UINT8_MIN_OPSET and rank == 4
        if codes and role == "face" and spec.shape[axis] == 3:
            mean, std = (norm.mean, norm.std)
            if not is_input:
                mean, std = (norm.output_mean or norm.mean, norm.output_std or norm.std)
            lo, hi = _channel_range(mean, std)
            wire[spec.name] = _codes(lo, hi, axis)
        elif codes and role == "mask" and not is_input:
            wire[spec.name] = _codes([0.0], [1.0], 1)
        elif role in _HALF_ROLES and _per_sample(spec) >= HALF_MIN_ELEMENTS:
            wire[spec.name] = WireTensor("float16")
    return wire


def wire_dtype(spec: TensorSpec, wire: Mapping[str, WireTensor]) -> str:
    """The dtype ``spec`` travels as."""
    entry = wire.get(spec.name)
    return entry.dtype if entry is not None else spec.dtype


def wire_specs(specs: Sequence[TensorSpec], wire: Mapping[str, WireTensor]) -> list[TensorSpec]:
    """``specs`` as they travel (what Triton's config declares)."""
    return [TensorSpec(s.name, s.shape, wire_dtype(s, wire)) for s in specs]


def wire_to_json(wire: Mapping[str, WireTensor]) -> dict[str, object]:
    return {name: entry.to_json() for name, entry in sorted(wire.items())}


def wire_from_json(value: object, where: str) -> Wire:
    if not isinstance(value, dict):
        raise BackendError(f"{where}: the wire is {value!r}, not an object of tensors")
    return {str(name): WireTensor.from_json(str(name), v) for name, v in value.items()}


def wire_parameter(by_version: Mapping[int, Mapping[str, WireTensor]]) -> str:
    """The ``agecast_wire`` parameter's text: every version's wire."""
    return json.dumps(
        {str(v): wire_to_json(w) for v, w in sorted(by_version.items())},
        separators=(",", ":"),
        sort_keys=True,
    )


def version_wire(parameter: str | None, version: int, model: str) -> Wire:
    """The wire of ``version`` from a model config's ``agecast_wire`` text (none: float32, as
    a repository written before the wire existed)."""
    if not parameter:
        return {}
    try:
        data = json.loads(parameter)
    except ValueError as exc:
        raise BackendError(f"Triton's {model}: its {WIRE_PARAMETER} is not JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise BackendError(f"Triton's {model}: its {WIRE_PARAMETER} is not an object")
    return wire_from_json(data.get(str(version), {}), f"Triton's {model} version {version}")
