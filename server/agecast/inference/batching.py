"""Faces of several cameras in one inference call: a model shared by the cameras' threads.

Each camera's pipeline runs its identity model from its own device thread. On a GPU a small
model at batch 1 is bound by launches and synchronisation more than by arithmetic, so running
the faces of N cameras as one batch may cost little more than one camera's. A
:class:`BatchingBackend` wraps the cameras' shared backend: every load of the same identity
returns one :class:`BatchingModel`, and calls that arrive within ``window_s`` of the first (or
as soon as every camera has called) run as one batch, each caller getting its own rows back.
Waiting for the others costs the first caller up to ``window_s``: whether batching pays is
measured (``bench --cameras N --batch-faces``), not assumed.

Only identity models are shared (labels starting ``identity ``): their every input is batched
along the first axis. A call whose inputs do not all share its face count runs alone.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from agecast.inference.base import Backend, Model

if TYPE_CHECKING:
    import torch

log = logging.getLogger(__name__)

SHARED_PREFIX = "identity "


@dataclass
class _Call:
    feeds: Mapping[str, torch.Tensor]
    done: threading.Event = field(default_factory=threading.Event)
    result: dict[str, torch.Tensor] | None = None
    error: BaseException | None = None

    @property
    def rows(self) -> int | None:
        """The face count, when every input has it as its first axis (else None)."""
        sizes = {t.shape[0] if t.ndim else None for t in self.feeds.values()}
        return sizes.pop() if len(sizes) == 1 else None


class BatchingModel(Model):
    """``model`` shared by ``callers`` threads; concurrent calls run as one batch."""

    def __init__(self, model: Model, *, callers: int, window_s: float) -> None:
        self.model = model
        self.inputs = model.inputs
        self.outputs = model.outputs
        self.callers = callers
        self.window_s = window_s
        self.users = 0
        self.batches: list[int] = []  # calls per model run, for the bench
        self._pending: list[_Call] = []
        self._arrived = threading.Condition()
        self._run_lock = threading.Lock()  # one model run at a time (CUDA graphs' buffers)

    def _run(self, feeds: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        call = _Call(feeds)
        if call.rows is None:
            with self._run_lock:
                return self.model.run(feeds)
        with self._arrived:
            self._pending.append(call)
            lead = len(self._pending) == 1
            self._arrived.notify_all()
        if lead:
            self._lead()
        call.done.wait()
        if call.error is not None:
            raise call.error
        assert call.result is not None
        return call.result

    def _lead(self) -> None:
        """As the first caller: wait for the others (up to the window), then run them all."""
        deadline = time.monotonic() + self.window_s
        with self._arrived:
            while len(self._pending) < self.callers:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._arrived.wait(left)
            batch, self._pending = self._pending, []
        try:
            with self._run_lock:
                self._run_batch(batch)
        except BaseException as exc:
            for call in batch:
                call.error = exc
        finally:
            for call in batch:
                call.done.set()

    def _run_batch(self, batch: list[_Call]) -> None:
        import torch

        self.batches.append(len(batch))
        if len(batch) == 1:
            batch[0].result = self.model.run(batch[0].feeds)
            return
        names = list(batch[0].feeds)
        joined = {name: torch.cat([c.feeds[name] for c in batch]) for name in names}
        out = self.model.run(joined)
        rows = [c.rows or 0 for c in batch]
        parts = {name: torch.split(t, rows) for name, t in out.items()}
        for i, call in enumerate(batch):
            call.result = {name: parts[name][i] for name in out}

    def close(self) -> None:
        """One user fewer; the model is closed with the last."""
        self.users -= 1
        if self.users <= 0:
            self.model.close()


class BatchingBackend(Backend):
    """``backend`` for ``callers`` cameras: each identity is loaded once and shared, batching
    the cameras' faces (:class:`BatchingModel`); every other model as ``backend`` loads it."""

    name: ClassVar[str] = "batching"

    def __init__(self, backend: Backend, *, callers: int, window_s: float = 0.002) -> None:
        self.inner = backend
        self.callers = callers
        self.window_s = window_s
        self.shared: dict[str, BatchingModel] = {}
        self._lock = threading.Lock()
        self.why = backend.why

    @property
    def wrapped_name(self) -> str:
        return self.inner.name

    @classmethod
    def probe(cls) -> str | None:
        return None

    def load(self, model: Path | bytes, *, label: str) -> Model:
        if not label.startswith(SHARED_PREFIX):
            return self.inner.load(model, label=label)
        with self._lock:
            shared = self.shared.get(label)
            if shared is None:
                shared = BatchingModel(
                    self.inner.load(model, label=label),
                    callers=self.callers,
                    window_s=self.window_s,
                )
                self.shared[label] = shared
                log.info(
                    "%s: one model for %d cameras, their faces batched (window %.1f ms)",
                    label,
                    self.callers,
                    self.window_s * 1e3,
                )
            shared.users += 1
            return shared
