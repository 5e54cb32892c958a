"""A live agecast server with --backend triton: /api/status and /metrics show the identity's
link to Triton per camera, and a Triton that goes away shows there (raw frames, counted)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.api.conftest import running_server
from tests.triton.conftest import start_server

pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed")


def test_status_and_metrics_show_the_triton_link_and_its_failures(
    triton_repo: Path, tmp_path: Path
) -> None:
    triton = start_server(triton_repo, tmp_path / "triton.log")
    try:
        with running_server(
            tmp_path,
            backend="triton",
            triton_url=triton.url,
            triton_timeout_ms=2000,
            identity="testpattern",
            source="testpattern:640x360@15",
            threads=1,
        ) as server, server.client() as client:  # fmt: skip
            link = client.get("/api/status").json()["triton"]
            assert link["model"] == "agecast_testpattern" and link["connected"]
            # the compact wire: the crop in, the face and mask out as 8-bit codes
            assert link["wire"] == {"aged": "uint8", "face": "uint8", "mask": "uint8"}
            metrics = client.get("/metrics").text
            assert "agecast_triton_connected 1" in metrics
            triton.kill()
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                link = client.get("/api/status").json()["triton"]
                if link["failures"] and not link["connected"]:
                    break
                time.sleep(0.2)
            assert link["failures"] >= 1 and not link["connected"]
            metrics = client.get("/metrics").text
            assert "agecast_triton_connected 0" in metrics
            assert 'agecast_triton_calls_total{result="failed"}' in metrics
    finally:
        triton.close()
