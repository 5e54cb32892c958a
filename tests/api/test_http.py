import httpx
import pytest

from .conftest import Running

STATUS_FIELDS = {
    "source", "identity", "fx", "look", "layout", "fps_in", "fps_out", "dropped", "stages_ms",
    "server_latency_ms", "glass_to_glass_ms", "viewers", "width", "height", "codec",
}  # fmt: skip


def test_health_status_metrics_and_docs(server: Running) -> None:
    assert httpx.get(f"{server.base}/api/health").json()["ok"] is True  # open to all
    http = server.client("viewer")
    status = http.get("/api/status").json()
    assert set(status) >= STATUS_FIELDS
    assert status["identity"]["id"] == "testpattern"
    assert status["source"]["state"] == "live"
    metrics = http.get("/metrics")
    assert metrics.headers["content-type"].startswith("text/plain")
    assert (
        "agecast_frames_in_total" in metrics.text
        and 'agecast_stage_ms{stage="detect"' in metrics.text
    )
    schema = http.get("/openapi.json").json()
    assert "/api/control" in schema["paths"]


def test_control_changes_settings_and_rejects_bad_values(server: Running) -> None:
    http = server.client("operator")
    r = http.post("/api/control", json={"blend": 0.4, "color_transfer": "none"})
    assert r.status_code == 200
    assert r.json()["look"]["blend"] == 0.4 and r.json()["look"]["color_transfer"] == "none"
    assert http.get("/api/status").json()["look"]["blend"] == 0.4
    for bad in ({"blend": 3}, {"layout": "upside-down"}, {"colour": "red"}, {"bypass": "maybe"}):
        r = http.post("/api/control", json=bad)
        assert r.status_code == 422, bad
    r = http.post("/api/control", json={"identity": "nobody"})
    assert r.status_code == 422 and "nobody" in r.json()["detail"]
    r = http.post(
        "/api/control",
        content=b"{not json",
        headers={"content-type": "application/json"},
    )
    assert r.status_code == 422
    http.post("/api/control", json={"blend": 1.0, "color_transfer": "rct"})
    assert http.get("/api/health").status_code == 200


def test_age_control(server: Running) -> None:
    http = server.client("operator")
    status = http.post("/api/control", json={"age": 61}).json()
    assert status["look"]["age"] == 61
    assert status["identity"]["age_control"] is None  # testpattern takes no age: no slider
    assert http.post("/api/control", json={"age": 200}).status_code == 422
    assert http.post("/api/control", json={"color_transfer": "auto"}).status_code == 200
    http.post("/api/control", json={"age": None, "color_transfer": "rct"})


@pytest.mark.parametrize("path", ["/", "/ui/monitor.js", "/ui/style.css"])
def test_monitor_page_is_served(server: Running, path: str) -> None:
    r = server.client("viewer").get(path)
    assert r.status_code == 200 and len(r.content) > 100
