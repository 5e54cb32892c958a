"""A real tritonserver (from the nvidia-pytriton wheel) serving a repository written by
``agecast triton repo --platform python`` — the Python backend running each identity's ONNX
with onnxruntime, as the bundled server has no ONNX Runtime backend. agecast talks to it with
tritonclient exactly as it talks to a production Triton.

Where the server cannot start here (no wheel, no stub for this Python, no libpython) the tests
that need it are skipped, saying why; with REQUIRE_TRITON_TESTS set (CI) that is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from agecast.errors import BackendUnavailable
from agecast.identities import resolve
from agecast.settings import REPO_MODELS_DIR

IDENTITIES = ("testpattern", "demo-aged")


def _skip(reason: str) -> None:
    if os.environ.get("REQUIRE_TRITON_TESTS"):
        pytest.fail(f"Triton tests required but cannot run: {reason}")
    pytest.skip(reason)


def write_repo(out: Path, names: tuple[str, ...] = IDENTITIES) -> Path:
    from agecast.triton.repository import RepoOptions, write_repository

    packages = [resolve(n, [REPO_MODELS_DIR]) for n in names]
    write_repository(out, packages, RepoOptions(platform="python", kind="cpu", max_batch=8))
    return out


def start_server(repository: Path, log_file: Path, port: int | None = None):  # type: ignore[no-untyped-def]
    """A started LocalTriton, or the test skipped saying why it cannot start here."""
    try:
        from agecast.triton.local import LocalTriton

        server = LocalTriton(repository, port=port, log_file=log_file)
    except (BackendUnavailable, ImportError) as exc:
        _skip(f"no tritonserver here: {exc}")
        raise
    try:
        server.start()
    except BackendUnavailable as exc:
        server.close()
        _skip(f"tritonserver does not start here: {exc}")
    return server


@pytest.fixture(scope="session")
def triton_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_repo(tmp_path_factory.mktemp("triton") / "repo")


@pytest.fixture(scope="session")
def triton(triton_repo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """One server for the tests that do not stop it."""
    log_file = tmp_path_factory.mktemp("triton-log") / "tritonserver.log"
    server = start_server(triton_repo, log_file)
    yield server
    server.close()
