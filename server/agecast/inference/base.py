"""The backend interface every inference engine implements.

A :class:`Backend` knows how to turn an ONNX model into a runnable :class:`Model`. A model
declares its input/output :class:`TensorSpec` and runs on torch tensors, so the pipeline never
touches a backend's own array type.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from agecast.errors import BackendError

if TYPE_CHECKING:  # the interface names torch types; importing it is the backends' business
    import torch

Dim = int | str | None


@dataclass(frozen=True, slots=True)
class TensorSpec:
    """Name, shape (an int per static dimension, a str or None where dynamic) and dtype."""

    name: str
    shape: tuple[Dim, ...]
    dtype: str = "float32"

    def accepts(self, tensor: torch.Tensor) -> str | None:
        """Why ``tensor`` does not fit this spec, or None when it does."""
        if tensor.ndim != len(self.shape):
            return f"{self.name}: rank {tensor.ndim}, model expects {len(self.shape)} {self.shape}"
        for axis, (want, got) in enumerate(zip(self.shape, tensor.shape, strict=True)):
            if isinstance(want, int) and want > 0 and want != got:
                return (
                    f"{self.name}: axis {axis} is {got}, model expects {want} (shape {self.shape})"
                )
        dtype = str(tensor.dtype).removeprefix("torch.")
        if dtype != self.dtype:
            return f"{self.name}: dtype {dtype}, model expects {self.dtype}"
        return None


class Model(ABC):
    """A loaded model: declared tensors, ``run`` on torch tensors, ``close``."""

    inputs: Sequence[TensorSpec]
    outputs: Sequence[TensorSpec]

    @abstractmethod
    def _run(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Run without checks (the public :meth:`run` checks first)."""

    def run(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Check ``feeds`` against the declared inputs, then run; returns outputs by name."""
        expected = {spec.name for spec in self.inputs}
        if set(feeds) != expected:
            raise BackendError(
                f"model inputs are {sorted(expected)}, got {sorted(feeds)}: feed each input by name"
            )
        for spec in self.inputs:
            problem = spec.accepts(feeds[spec.name])
            if problem:
                raise BackendError(f"bad input {problem}")
        return self._run(feeds)

    def close(self) -> None:  # noqa: B027 - optional for backends with nothing to free
        """Free what the model holds (sessions, device memory)."""

    def input_spec(self, name: str) -> TensorSpec:
        for spec in self.inputs:
            if spec.name == name:
                return spec
        raise BackendError(f"model has no input {name!r}; inputs: {[s.name for s in self.inputs]}")


class Backend(ABC):
    """An inference engine kind. ``load`` turns ONNX (path or bytes) into a :class:`Model`."""

    name: ClassVar[str]
    device: ClassVar[str] = "cpu"
    why: str = "named by the backend setting"  # why this backend runs (the startup line says)

    @classmethod
    @abstractmethod
    def probe(cls) -> str | None:
        """None when this backend can run here, else why not (shown to the operator)."""

    @abstractmethod
    def load(self, model: Path | bytes, *, label: str) -> Model:
        """Load ``model``; ``label`` names it in errors and logs."""
