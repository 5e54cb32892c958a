"""A real server on 127.0.0.1 to attack the way someone on the set LAN would."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.conftest import Running, running_server
from tests.identities.conftest import make_package  # noqa: F401 - a fixture for these tests


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("attack")
    with running_server(
        tmp, source="testpattern:640x360@30", identity="testpattern", state_dir=tmp / "state"
    ) as srv:
        yield srv
