"""Attack 3: the camera's address carries a password; a viewer reads it in /api/status and
the takes list, and anyone with the logs reads it there."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from agecast.redact import SourceURI
from agecast.settings import Settings
from agecast.sources import SourceState, open_source
from tests.api.conftest import Running, free_port, running_server

PASSWORD = "hunter2-on-set"


@pytest.fixture(scope="module")
def camera_with_password(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    # nothing listens there: the monitor shows "no signal" and keeps retrying (and logging)
    source = f"http://admin:{PASSWORD}@127.0.0.1:{free_port()}/feed?password={PASSWORD}"
    tmp = tmp_path_factory.mktemp("pw")
    with running_server(
        tmp, wait_frames=0, source=source, identity="testpattern", state_dir=tmp / "state"
    ) as srv:
        yield srv


def test_status_and_metrics_do_not_show_the_password(camera_with_password: Running) -> None:
    with camera_with_password.client("viewer") as viewer:
        status = viewer.get("/api/status")
        assert status.status_code == 200
        assert status.json()["source"]["uri"].startswith("http://admin:***@127.0.0.1")
        for path in ("/api/status", "/metrics", "/api/takes"):
            assert PASSWORD not in viewer.get(path).text, path


def test_a_take_and_its_files_do_not_keep_the_password(
    camera_with_password: Running, tmp_path: Path
) -> None:
    with camera_with_password.client("operator") as operator:
        started = operator.post("/api/takes/record", json={"scene": "pw", "take": "1"})
        assert started.status_code == 200, started.text
        operator.post("/api/takes/stop")
        listed = operator.get("/api/takes")
    assert listed.status_code == 200 and "admin:***@" in listed.text
    assert PASSWORD not in listed.text
    takes = camera_with_password.service.settings.resolved_takes_dir
    for path in takes.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl"):
            assert PASSWORD not in path.read_text(), path


def test_logs_and_errors_do_not_show_the_password(
    camera_with_password: Running, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    address = camera_with_password.service.settings.source
    assert isinstance(address, SourceURI) and PASSWORD in address.reveal()
    source = open_source(address)  # a second connection to the same camera: its attempts,
    source.open()  # errors and warnings are logged while it retries
    try:
        time.sleep(1.0)
        assert source.state == SourceState.NO_SIGNAL
    finally:
        source.close()
    assert "no signal" in caplog.text and "admin:***@127.0.0.1" in caplog.text
    assert PASSWORD not in caplog.text and PASSWORD not in repr(source)


def test_settings_print_the_address_without_its_password() -> None:
    settings = Settings.load(source=f"rtsp://admin:{PASSWORD}@cam/1", cameras=[])
    assert PASSWORD not in settings.model_dump_json() and PASSWORD not in repr(settings)
