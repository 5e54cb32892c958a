"""Fixtures for the quality tests: generated clips in a private cache folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def clip_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A cache folder for the generated clips, shared by the quality tests."""
    folder = tmp_path_factory.mktemp("quality-cache")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AGECAST_CACHE_DIR", str(folder))
        yield folder
