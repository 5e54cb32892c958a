"""A model that raises on a live server: the aged side shows the raw frame flagged FX ERROR on
that very frame, the error is counted in status, and frames keep flowing."""

from __future__ import annotations

import io
import logging
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from agecast.frames import FxState
from agecast.identities.runtime import SwapResult
from agecast.media.protocol import Flags
from tests.api.conftest import Running

from .conftest import status
from .viewers import watch_sync

EVERY = 4  # the model raises on every 4th call


def changed_pixels(jpeg: bytes) -> int:
    """Pixels that clearly differ between the raw (left) and aged (right) halves."""
    picture = np.asarray(Image.open(io.BytesIO(jpeg)).convert("RGB")).astype(np.int16)
    half = picture.shape[1] // 2
    return int((np.abs(picture[:, :half] - picture[:, half:]).sum(axis=2) > 60).sum())


@pytest.mark.timeout(90)
def test_a_model_raising_every_nth_frame(
    server: Running, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    identity = server.service.built.fx.identity
    real_infer = identity.infer
    calls = {"n": 0}

    def flaky(crops: torch.Tensor, *args: Any, **kwargs: Any) -> SwapResult:
        calls["n"] += 1
        if calls["n"] % EVERY == 0:
            raise RuntimeError("CUDA error: an illegal memory access was encountered (simulated)")
        return real_infer(crops, *args, **kwargs)

    with server.client("viewer") as client:
        before = status(client)
        with caplog.at_level(logging.ERROR, logger="agecast.pipeline.fx"):
            monkeypatch.setattr(identity, "infer", flaky)
            _, pictures = watch_sync(
                f"{server.ws}/ws/monitor?codec=jpeg", server.ws_headers("viewer"), seconds=3.0
            )
            during = status(client)
            monkeypatch.setattr(identity, "infer", real_infer)
        _, after_pictures = watch_sync(
            f"{server.ws}/ws/monitor?codec=jpeg", server.ws_headers("viewer"), seconds=1.0
        )
        after = status(client)

    errors = during["fx_errors"] - before["fx_errors"]
    assert errors >= 5 and calls["n"] >= EVERY * 5
    assert errors == pytest.approx(calls["n"] / EVERY, abs=1)
    assert during["frames_out"] - before["frames_out"] >= 30  # frames kept flowing
    assert during["error"] is None and during["source"]["state"] == "live"

    flagged = [p for p in pictures if Flags.FX_ERROR in p[0].flags]
    clean = [p for p in pictures if Flags.FX_ERROR not in p[0].flags]
    assert len(flagged) >= 3 and len(clean) >= 3 * len(flagged) // 2
    assert all(h.fx is FxState.ERROR for h, _ in flagged)
    assert all(h.fx is not FxState.ERROR for h, _ in clean)
    # on a failed frame the aged half is the raw picture; on the others the face is replaced
    assert max(changed_pixels(data) for _, data in flagged) < 20
    assert min(changed_pixels(data) for h, data in clean if h.fx is FxState.ON) > 200

    # logged once per burst: here each failure is a burst of one frame
    logged = sum("FX failed" in r.getMessage() for r in caplog.records)
    assert 1 <= logged <= errors

    assert (
        after["fx_errors"] == during["fx_errors"] or after["fx_errors"] - during["fx_errors"] <= 1
    )  # the model was fixed: no more errors
    assert not any(Flags.FX_ERROR in h.flags for h, _ in after_pictures[5:])
