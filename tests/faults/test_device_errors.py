"""A failure in the device thread outside the face stages (which fail open themselves) costs
that frame, flagged FX ERROR, not the device thread: the monitor keeps moving."""

from __future__ import annotations

import logging
import time

import pytest
import torch

from agecast.pipeline import runner
from agecast.pipeline.build import build
from agecast.pipeline.fx import FxState
from agecast.settings import Layout, Settings

from .conftest import poll


def test_a_compose_failure_costs_one_frame(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real = runner.layout_canvas
    calls = {"n": 0}

    def fails_once(raw: torch.Tensor, layout: Layout) -> tuple[torch.Tensor, torch.Tensor | None]:
        calls["n"] += 1
        if calls["n"] == 5:
            raise RuntimeError("CUDA error: out of memory (simulated)")
        return real(raw, layout)

    monkeypatch.setattr(runner, "layout_canvas", fails_once)
    built = build(Settings.load(source="testpattern:320x180@30", identity="testpattern"))
    pipeline = built.pipeline
    seen: list[runner.Output] = []
    with caplog.at_level(logging.INFO, logger="agecast.pipeline.runner"):
        pipeline.start()
        try:
            deadline = time.monotonic() + 10
            for output in pipeline.outputs(poll_s=0.2):
                if output is not None:
                    seen.append(output)
                if len(seen) >= 20 or time.monotonic() > deadline:
                    break
            assert poll(lambda: pipeline.frames_out >= 30, 10.0) is not None
            stats = pipeline.stats()
        finally:
            built.close()
    assert stats["device_errors"] == 1 and stats["watchdog"]["alive"]  # the thread lived on
    assert stats["fx"]["error"] >= 1
    failed = [o for o in seen if o.fx is FxState.ERROR]
    assert len(failed) <= 1  # the one failed frame, if the consumer caught it
    for output in failed:
        assert "out of memory" in (output.error or "")
        assert torch.equal(output.aged, output.raw)
    messages = [r.getMessage() for r in caplog.records]
    assert sum("failed outside the face stages" in m for m in messages) == 1
    assert sum("device thread recovered" in m for m in messages) == 1
