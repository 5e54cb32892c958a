"""GET /api/identities: what the page's identity picker offers, and which one runs."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator

import pytest

from agecast.settings import REPO_MODELS_DIR

from .conftest import Running, running_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("identities")
    # A likeness with no consent record: listed (so the operator sees why), not runnable.
    blocked = tmp / "ids" / "no-consent"
    shutil.copytree(REPO_MODELS_DIR / "testpattern", blocked)
    manifest = json.loads((blocked / "manifest.json").read_text())
    manifest.update(id="no-consent", display_name="No consent", purpose="likeness")
    manifest.pop("consent", None)
    (blocked / "manifest.json").write_text(json.dumps(manifest))
    with running_server(
        tmp,
        source="testpattern:320x180@30",
        identity="testpattern",
        identities_dir=[REPO_MODELS_DIR, tmp / "ids"],
    ) as srv:
        yield srv


def test_lists_installed_identities_and_the_one_running(server: Running) -> None:
    body = server.client("viewer").get("/api/identities").json()
    assert body["active"] == "testpattern"
    found = {i["id"]: i for i in body["identities"]}
    assert {"testpattern", "demo-aged", "no-consent"} <= set(found)
    assert found["testpattern"]["runnable"] and found["testpattern"]["problem"] is None
    assert found["demo-aged"]["display_name"].startswith("Demo")
    blocked = found["no-consent"]
    assert blocked["runnable"] is False and "consent" in blocked["problem"]


def test_switching_shows_in_the_list(server: Running) -> None:
    http = server.client("operator")
    assert http.post("/api/control", json={"identity": "demo-aged"}).status_code == 200
    try:
        assert http.get("/api/identities").json()["active"] == "demo-aged"
    finally:
        http.post("/api/control", json={"identity": "testpattern"})
    assert http.get("/api/identities").json()["active"] == "testpattern"


def test_needs_a_session_and_a_known_camera(server: Running) -> None:
    import httpx

    assert httpx.get(f"{server.base}/api/identities").status_code == 401
    assert server.client("viewer").get("/api/identities?camera=Z").status_code == 404
