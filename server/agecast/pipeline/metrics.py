"""Per-stage timings and latency samples, summarised as percentiles."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable

import numpy as np

_KEEP = 20_000  # samples per series (≈ 11 minutes at 30 fps)


def percentiles(samples: Iterable[float]) -> dict[str, float]:
    values = np.fromiter(samples, dtype=np.float64)
    if values.size == 0:
        return {"count": 0, "mean": 0.0, "p50": 0.0, "p95": 0.0, "p99": 0.0, "max": 0.0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "count": int(values.size),
        "mean": round(float(values.mean()), 3),
        "p50": round(float(p50), 3),
        "p95": round(float(p95), 3),
        "p99": round(float(p99), 3),
        "max": round(float(values.max()), 3),
    }


class Timings:
    """Thread-safe named series of millisecond samples (the newest ``_KEEP`` of each)."""

    def __init__(self) -> None:
        self._series: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def add(self, name: str, ms: float) -> None:
        with self._lock:
            series = self._series.get(name)
            if series is None:
                series = self._series[name] = deque(maxlen=_KEEP)
            series.append(ms)

    def add_all(self, values: dict[str, float]) -> None:
        for name, ms in values.items():
            self.add(name, ms)

    def summary(self) -> dict[str, dict[str, float]]:
        with self._lock:
            snapshot = {name: list(series) for name, series in self._series.items()}
        return {name: percentiles(values) for name, values in snapshot.items()}

    def clear(self) -> None:
        with self._lock:
            self._series.clear()
