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


@pytest.fixture(scope="session")
def ndi_lan(tmp_path_factory: pytest.TempPathFactory) -> None:
    """NDI on this machine only: senders found on 127.0.0.1 (the test box has no multicast
    for mDNS). Set once, before the NDI runtime first starts in this process."""
    from agecast.media import ndi

    ndi.configure(["127.0.0.1"], tmp_path_factory.mktemp("ndi-config"))  # before NDI starts
    why = ndi.missing()
    if why is not None:
        pytest.skip(why)
