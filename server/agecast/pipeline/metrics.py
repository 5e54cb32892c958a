"""Per-stage timings and latency samples, summarised as percentiles."""

from __future__ import annotations

import threading
import time
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
    """Thread-safe named series of millisecond samples (the newest ``_KEEP`` of each).

    ``cache_s``: a summary (≈ 25 ms for 15 full series on a 2-core box) is reused for this long,
    for a live status that several viewers ask for every second.
    """

    def __init__(self, cache_s: float = 0.0) -> None:
        self._series: dict[str, deque[float]] = {}
        self._lock = threading.Lock()
        self.cache_s = cache_s
        self._summary: tuple[float, dict[str, dict[str, float]]] | None = None

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
        cached = self._summary
        now = time.monotonic()
        if cached is not None and now - cached[0] < self.cache_s:
            return cached[1]
        with self._lock:
            snapshot = {name: list(series) for name, series in self._series.items()}
        summary = {name: percentiles(values) for name, values in snapshot.items()}
        self._summary = (now, summary)
        return summary

    def clear(self) -> None:
        with self._lock:
            self._series.clear()
            self._summary = None
