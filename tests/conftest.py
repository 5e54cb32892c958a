"""Every test gets its own agecast state folder (links, secret, cast, vouches): nothing a test
does reaches the state of the user running the suite, and no test sees another's."""

from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def agecast_state_dir(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> Path:
    state = tmp_path_factory.mktemp("agecast-state")
    monkeypatch.setenv("AGECAST_STATE_DIR", str(state))
    return state
