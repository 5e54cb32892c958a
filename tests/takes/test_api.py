"""Takes and presets over HTTP and /ws/control, on a real server (127.0.0.1)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect

from agecast.takes import recorder as recorder_module
from agecast.takes.store import TakeStore

from ..api.conftest import Running, running_server
from .conftest import SOURCE, decode, psnr


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("takes-api")
    with running_server(
        tmp, source=SOURCE, identity="testpattern", state_dir=tmp / "state",
        takes_dir=tmp / "takes", min_free_gb=0.5,
    ) as srv:  # fmt: skip
        yield srv


def _until(check: Callable[[], Any], timeout: float = 30.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _recorded_frames(server: Running) -> int:
    recording = server.service.status()["recording"]
    return int(recording["frames"]) if recording else 0


def _audit(server: Running) -> list[dict[str, Any]]:
    path = server.service.settings.state_dir / "audit.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_record_stop_list_show_and_render_over_http(server: Running) -> None:
    operator, viewer = server.client("operator"), server.client("viewer")
    assert viewer.post("/api/takes/record", json={"scene": "api", "take": "1"}).status_code == 403
    started = operator.post("/api/takes/record", json={"scene": "api", "take": "1"})
    assert started.status_code == 200, started.text
    assert started.json()["id"] == "api_1" and started.json()["recording"]["recording"] is True
    again = operator.post("/api/takes/record", json={"scene": "api", "take": "2"})
    assert again.status_code == 409 and "already recording take api_1" in again.json()["detail"]
    _until(lambda: _recorded_frames(server) >= 20, what="20 recorded frames")
    assert operator.post("/api/control", json={"blend": 0.5}).status_code == 200
    _until(lambda: _recorded_frames(server) >= 40, what="40 recorded frames")
    stopped = operator.post("/api/takes/stop")
    assert stopped.status_code == 200 and stopped.json()["status"] == "complete"
    assert stopped.json()["frames"] >= 40 and stopped.json()["versions"] == ["v1"]
    assert operator.post("/api/takes/stop").status_code == 409  # nothing recording

    dup = operator.post("/api/takes/record", json={"scene": "api", "take": "1"})
    assert dup.status_code == 409
    assert "never overwritten — use take 2" in dup.json()["detail"]
    bad = operator.post("/api/takes/record", json={"scene": "../x", "take": "1"})
    assert bad.status_code == 422 and "scene" in bad.json()["detail"]

    listed = viewer.get("/api/takes").json()
    assert [t["id"] for t in listed["takes"]] == ["api_1"]
    take = TakeStore(server.service.settings.resolved_takes_dir).get("api_1")
    sets = [r for r in take.read_sidecar("v1") if r["type"] == "set"]
    assert any(r["values"].get("blend") == 0.5 and r["i"] >= 20 for r in sets), sets

    assert viewer.post("/api/takes/api_1/render", json={}).status_code == 403
    assert operator.post("/api/takes/nope/render", json={}).status_code == 404
    bad_render = operator.post("/api/takes/api_1/render", json={"settings": {"layout": "raw"}})
    assert bad_render.status_code == 422
    job = operator.post("/api/takes/api_1/render", json={"settings": {"blend": 0.3}})
    assert job.status_code == 202, job.text
    job_id = job.json()["id"]
    done = _until(
        lambda: (r := viewer.get(f"/api/renders/{job_id}").json())["state"] != "running" and r,
        timeout=120, what="the re-render",
    )  # fmt: skip
    assert done["state"] == "complete" and done["version"] == "v2", done
    assert done["done"] == done["total"] == stopped.json()["frames"]
    shown = viewer.get("/api/takes/api_1").json()
    assert shown["versions"] == ["v1", "v2"]
    assert shown["renders"]["v2"]["settings"] == {"blend": 0.3}
    assert len(decode(take.aged_path("v2"))) == stopped.json()["frames"]
    # unchanged settings: the blend change recorded mid-take is made again at its frame
    same = operator.post("/api/takes/api_1/render", json={}).json()["id"]
    _until(lambda: viewer.get(f"/api/renders/{same}").json()["state"] != "running", 120)
    assert viewer.get(f"/api/renders/{same}").json()["version"] == "v3"
    recorded = [(r["i"], r["values"]["blend"]) for r in sets if "blend" in r["values"]]
    replayed = [
        (r["i"], r["values"]["blend"])
        for r in take.read_sidecar("v3")
        if r["type"] == "set" and "blend" in r["values"]
    ]
    assert replayed == recorded
    v1, v3 = decode(take.aged_path("v1")), decode(take.aged_path("v3"))
    # frames the live path dropped hold an earlier aged picture in v1; a re-render makes them
    own = [not r.get("held") for r in take.read_sidecar("v1") if r["type"] == "frame"]
    assert sum(own) >= 10
    pairs = [(a, b) for a, b, fresh in zip(v1, v3, own, strict=True) if fresh]
    assert min(psnr(a, b) for a, b in pairs) > 40.0
    events = [e["event"] for e in _audit(server)]
    for event in ("take_started", "take_stopped", "render_started", "render_finished"):
        assert event in events


def test_presets_saved_applied_and_stored_with_takes(server: Running) -> None:
    operator, viewer = server.client("operator"), server.client("viewer")
    body = {"name": "young", "blend": 0.6, "color_transfer": "none"}
    assert viewer.post("/api/presets", json=body).status_code == 403
    saved = operator.post("/api/presets", json=body)
    assert saved.status_code == 200 and saved.json()["blend"] == 0.6
    live = operator.post("/api/presets", json={"name": "as-live"})  # no values: what runs now
    assert live.json()["identity"] == "testpattern"
    bad = operator.post("/api/presets", json={"name": "../x", "blend": 0.5})
    assert bad.status_code == 422 and "preset name" in bad.json()["detail"]
    assert {p["name"] for p in viewer.get("/api/presets").json()["presets"]} == {"young", "as-live"}

    applied = operator.post("/api/presets/young/apply")
    assert applied.status_code == 200 and applied.json()["look"]["blend"] == 0.6
    assert applied.json()["preset"] == "young"
    started = operator.post(
        "/api/takes/record", json={"scene": "preset", "take": "1", "camera": "B"}
    )
    assert started.status_code == 200 and started.json()["preset"] == "young"
    _until(lambda: _recorded_frames(server) >= 10, what="10 recorded frames")
    assert operator.post("/api/presets/as-live/apply").status_code == 200
    _until(lambda: _recorded_frames(server) >= 25, what="25 recorded frames")
    operator.post("/api/takes/stop")
    take = TakeStore(server.service.settings.resolved_takes_dir).get("preset_1_B")
    records = take.read_sidecar("v1")
    assert records[0]["settings"]["preset"] == "young" and records[0]["settings"]["blend"] == 0.6
    sets = [r for r in records if r["type"] == "set"]
    assert any(r["values"].get("preset") == "as-live" for r in sets)
    as_live = live.json()["blend"]  # the live look when it was saved
    assert as_live != 0.6 and any(r["values"].get("blend") == as_live for r in sets)

    assert operator.post("/api/presets/nope/apply").status_code == 404
    assert operator.delete("/api/presets/young").status_code == 200
    assert operator.delete("/api/presets/young").status_code == 404
    events = [e["event"] for e in _audit(server)]
    assert "preset_applied" in events and "preset_saved" in events


async def _control(server: Running, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    async with connect(
        f"{server.ws}/ws/control", additional_headers=server.ws_headers(), compression=None
    ) as ws:
        replies = []
        for message in messages:
            await ws.send(json.dumps(message))
            replies.append(json.loads(await asyncio.wait_for(ws.recv(), 30)))
        return replies


async def _pictures(server: Running, count: int) -> int:
    async with connect(
        f"{server.ws}/ws/monitor", max_size=None, compression=None,
        additional_headers=server.ws_headers("viewer"),
    ) as ws:  # fmt: skip
        got = 0
        while got < count:
            if isinstance(await asyncio.wait_for(ws.recv(), 10), bytes):
                got += 1
        return got


def test_a_full_disk_stops_the_take_and_the_monitor_keeps_streaming(
    server: Running, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []

    def filling_up(path: Path) -> int:
        calls.append(path)  # plenty at the start and for a second, then almost nothing
        return 100 * 1024**3 if len(calls) <= 2 else 1024**2

    monkeypatch.setattr(recorder_module, "disk_free", filling_up)
    replies = asyncio.run(_control(server, [{"type": "record", "scene": "full", "take": "1"}]))
    assert replies[0]["type"] == "take_started" and replies[0]["take"]["id"] == "full_1"
    recording = _until(  # stopped, and its files written and closed (take.json last)
        lambda: (r := server.service.status()["recording"])["finished"] and r,
        what="the take to stop",
    )
    assert recording["status"].startswith("stopped: disk full (0.00 GB free")
    assert "the live monitor keeps running" in recording["message"].lower()
    take = TakeStore(server.service.settings.resolved_takes_dir).get("full_1")
    assert take.info.status == recording["status"] and take.info.frames == recording["frames"]
    assert len(decode(take.raw_path)) == take.info.frames >= 10  # what was written plays
    assert asyncio.run(_pictures(server, 15)) == 15  # the monitor streams on
    assert server.service.built.pipeline.running
    replies = asyncio.run(_control(server, [{"type": "stop"}, {"type": "record", "take": "x"}]))
    assert replies[0]["type"] == "error" and "not recording" in replies[0]["error"]
    assert replies[1]["type"] == "error" and "scene" in replies[1]["error"]
    # refused up front when there is too little space
    monkeypatch.setattr(recorder_module, "disk_free", lambda path: 1024**2)
    refused = server.client().post("/api/takes/record", json={"scene": "full", "take": "2"})
    assert refused.status_code == 507 and "GB free" in refused.json()["detail"]
    assert not (take.path.parent / "full_2").exists()
