"""Shared helpers for the takes tests: small generated sources, decoding, PSNR."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import av
import numpy as np

from agecast.settings import Settings

REPO = Path(__file__).resolve().parents[2]
SOURCE = "testpattern:320x240@30"


def take_settings(tmp: Path, **flags: Any) -> Settings:
    """Settings writing takes and state under ``tmp``; the testpattern identity by default."""
    values: dict[str, Any] = {
        "source": SOURCE,
        "identity": "testpattern",
        "takes_dir": tmp / "takes",
        "state_dir": tmp / "state",
        "min_free_gb": 0.01,
        **flags,
    }
    return Settings.load(**values)


def decode(path: Path) -> list[np.ndarray]:
    """Every picture of a video file as HWC uint8 RGB."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return 99.0 if mse == 0 else 10 * np.log10(255.0**2 / mse)


def cli(*args: str, env: dict[str, str] | None = None, **kwargs: Any) -> subprocess.Popen[bytes]:
    """``agecast ARGS`` in a subprocess (this interpreter, this checkout), ``env`` added."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "server"), **(env or {})}
    env.pop("AGECAST_CONFIG", None)
    return subprocess.Popen(
        [sys.executable, "-m", "agecast.cli", *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        **kwargs,
    )
