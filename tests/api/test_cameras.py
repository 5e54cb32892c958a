"""Several cameras on one server: named config entries, per-camera sockets, status and control."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import av
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from agecast.errors import SettingsError, SourceError
from agecast.live.service import live_services
from agecast.media.protocol import HEADER_SIZE, Flags, PictureHeader
from agecast.settings import Settings, camera_entries
from tests.sources.media import UdpSender, free_udp_port

from .conftest import Running, running_server

A_SOURCE, B_SOURCE = "testpattern:320x240@30", "testpattern:256x192@30"
A_SIZE, B_SIZE = (640, 240), (512, 192)  # raw | aged side by side


def _until(check: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()):
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)
    return value


@pytest.fixture(scope="module")
def two(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("cameras")
    with running_server(
        tmp, cameras=[f"A={A_SOURCE}", f"B={B_SOURCE}"], identity="testpattern",
        state_dir=tmp / "state", takes_dir=tmp / "takes", min_free_gb=0.1,
    ) as srv:  # fmt: skip
        _until(lambda: all(s.built.pipeline.frames_out > 3 for s in srv.services), "B's frames")
        yield srv


# --- config --------------------------------------------------------------------------------


def test_camera_entries_named_unnamed_and_uris_with_their_own_equals_signs() -> None:
    udp = "udp://127.0.0.1:5000?pkt_size=1316"
    assert camera_entries(["A=rtsp://cam-a/live?x=1", udp, "testpattern", f"B-2={udp}"]) == [
        ("A", "rtsp://cam-a/live?x=1"),
        ("cam2", udp),  # the text before "=" has a ":": a URI, not a name
        ("cam3", "testpattern"),
        ("B-2", udp),
    ]
    # not a name: too long, or characters a name may not have; the whole entry is the URI
    assert camera_entries(["x" * 17 + "=demo", "a b=demo"]) == [
        ("cam1", "x" * 17 + "=demo"),
        ("cam2", "a b=demo"),
    ]


def test_duplicate_camera_names_are_a_clear_settings_error() -> None:
    with pytest.raises(SettingsError, match=r"camera name 'A' is used twice .*own name"):
        Settings.load(cameras=["A=demo", "A=testpattern"])
    # an unnamed entry is called after its position, and may collide with a given name
    with pytest.raises(SettingsError, match="camera name 'cam2' is used twice"):
        Settings.load(cameras=["cam2=demo", "testpattern"])


def test_camera_names_from_a_toml_config(tmp_path: Path) -> None:
    config = tmp_path / "agecast.toml"
    config.write_text('cameras = ["A=rtsp://10.0.0.5/a?tcp=1", "udp://239.0.0.1:5000"]\n')
    settings = Settings.load(config)
    assert camera_entries(settings.cameras) == [
        ("A", "rtsp://10.0.0.5/a?tcp=1"),
        ("cam2", "udp://239.0.0.1:5000"),
    ]


def test_a_camera_whose_source_cannot_open_is_named(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match=r"^camera B: unknown source scheme 'bogus'"):
        live_services(Settings.load(cameras=["A=testpattern:64x64@30", "B=bogus://x"]))
    missing = tmp_path / "missing.mp4"
    settings = Settings.load(
        cameras=["A=testpattern:64x64@30", f"B={missing}"], identity="testpattern"
    )
    services = live_services(settings)
    try:
        assert [s.name for s in services] == ["A", "B"]
        assert services[0].built.backend is services[1].built.backend  # one shared backend
        with pytest.raises(SourceError, match=rf"^camera B: video file {missing} not found"):
            services[1].start()
    finally:
        for service in services:
            service.stop()


# --- status and metrics ----------------------------------------------------------------------


def test_status_lists_every_camera_and_picks_one(two: Running) -> None:
    http = two.client("viewer")
    status = http.get("/api/status").json()
    assert status["camera"] == "A" and status["source"]["uri"] == A_SOURCE
    assert (status["width"], status["height"]) == A_SIZE
    cameras = {c["name"]: c for c in status["cameras"]}
    assert list(cameras) == ["A", "B"]
    assert cameras["A"]["source"] == A_SOURCE and cameras["B"]["source"] == B_SOURCE
    for entry in cameras.values():
        assert entry["state"] == "live" and entry["identity"] == "testpattern"
        assert entry["fps_out"] > 0 and entry["frames_out"] > 3
        assert set(entry["frame_to_output_ms"]) == {"p50", "p95"}
        assert entry["frame_to_output_ms"]["p50"] > 0
        assert isinstance(entry["viewers"], int) and isinstance(entry["dropped"], dict)
    assert (cameras["B"]["width"], cameras["B"]["height"]) == B_SIZE
    b = http.get("/api/status", params={"camera": "B"}).json()
    assert b["camera"] == "B" and b["source"]["uri"] == B_SOURCE
    assert (b["width"], b["height"]) == B_SIZE
    assert [c["name"] for c in b["cameras"]] == ["A", "B"]


def test_metrics_label_each_camera(two: Running) -> None:
    text = two.client("viewer").get("/metrics").text
    assert 'agecast_frames_out_total{camera="A"}' in text
    assert 'agecast_frames_out_total{camera="B"}' in text
    assert 'agecast_stage_ms{camera="B",stage="detect",quantile="p50"}' in text
    assert text.count("# TYPE agecast_frames_out_total counter") == 1  # one family, two samples


# --- sockets -------------------------------------------------------------------------------


async def _hello_and_pictures(
    url: str, count: int, headers: dict[str, str]
) -> tuple[dict[str, Any], list[tuple[PictureHeader, bytes]]]:
    async with connect(url, max_size=None, compression=None, additional_headers=headers) as ws:
        hello = json.loads(await asyncio.wait_for(ws.recv(), 10))
        pictures: list[tuple[PictureHeader, bytes]] = []
        while len(pictures) < count:
            message = await asyncio.wait_for(ws.recv(), 10)
            if isinstance(message, bytes):
                pictures.append((PictureHeader.unpack(message), message[HEADER_SIZE:]))
        return hello, pictures


def test_monitor_socket_of_camera_b_gets_b_pictures(two: Running) -> None:
    hello, pictures = asyncio.run(
        _hello_and_pictures(f"{two.ws}/ws/monitor?camera=B", 8, two.ws_headers("viewer"))
    )
    assert hello["camera"] == "B" and hello["cameras"] == ["A", "B"]
    assert (hello["width"], hello["height"]) == B_SIZE
    assert Flags.KEY in pictures[0][0].flags
    assert {(h.width, h.height) for h, _ in pictures} == {B_SIZE}
    decoder = av.CodecContext.create("h264", "r")
    frames = [f for _, data in pictures for p in decoder.parse(data) for f in decoder.decode(p)]
    assert frames and {(f.width, f.height) for f in frames} == {B_SIZE}
    # without ?camera= a viewer watches the first camera, as with one camera
    hello, pictures = asyncio.run(
        _hello_and_pictures(f"{two.ws}/ws/monitor", 2, two.ws_headers("viewer"))
    )
    assert hello["camera"] == "A" and {(h.width, h.height) for h, _ in pictures} == {A_SIZE}


async def _refused(url: str, headers: dict[str, str]) -> tuple[dict[str, Any], int, str]:
    async with connect(url, compression=None, additional_headers=headers) as ws:
        error = json.loads(await asyncio.wait_for(ws.recv(), 10))
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    return error, closed.value.rcvd.code, closed.value.rcvd.reason


def test_unknown_camera_is_a_404_or_a_close_naming_the_cameras(two: Running) -> None:
    operator = two.client("operator")
    r = operator.get("/api/status", params={"camera": "C"})
    assert r.status_code == 404 and r.json()["detail"].startswith("no camera 'C' here")
    assert "A, B" in r.json()["detail"]
    r = operator.post("/api/control", json={"blend": 0.5, "camera": "C"})
    assert r.status_code == 404 and "A, B" in r.json()["detail"]
    r = operator.post("/api/takes/record?camera=C", json={"scene": "1", "take": "1"})
    assert r.status_code == 404 and "A, B" in r.json()["detail"]
    for path in ("/ws/monitor?camera=C", "/ws/control?camera=C"):
        error, code, reason = asyncio.run(_refused(two.ws + path, two.ws_headers("operator")))
        assert error["type"] == "error" and error["fatal"] is True
        assert "no camera 'C'" in error["error"] and "A, B" in error["error"]
        assert code == 4404 and "A, B" in reason


def _look(two: Running, camera: str) -> dict[str, Any]:
    status = two.client("viewer").get("/api/status", params={"camera": camera}).json()
    return dict(status["look"])


async def _control(url: str, values: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    async with connect(url, compression=None, additional_headers=headers) as ws:
        await ws.send(json.dumps({"type": "set", "values": values}))
        return dict(json.loads(await asyncio.wait_for(ws.recv(), 10)))


def test_control_of_camera_b_changes_b_only(two: Running) -> None:
    operator = two.client("operator")
    try:
        r = operator.post("/api/control", json={"blend": 0.3, "camera": "B"})
        assert r.status_code == 200, r.text
        assert r.json()["camera"] == "B" and r.json()["look"]["blend"] == 0.3
        assert _look(two, "B")["blend"] == 0.3 and _look(two, "A")["blend"] == 1.0
        ack = asyncio.run(
            _control(f"{two.ws}/ws/control?camera=B", {"bypass": True}, two.ws_headers())
        )
        assert ack["type"] == "ack" and ack["camera"] == "B"
        assert ack["status"]["look"]["bypass"] is True
        assert _look(two, "B")["bypass"] is True and _look(two, "A")["bypass"] is False
        # without a camera, control acts on the first, as with one camera
        assert operator.post("/api/control", json={"blend": 0.8}).json()["camera"] == "A"
        assert _look(two, "A")["blend"] == 0.8 and _look(two, "B")["blend"] == 0.3
    finally:
        operator.post("/api/control", json={"blend": 1.0, "bypass": False, "camera": "B"})
        operator.post("/api/control", json={"blend": 1.0, "bypass": False, "camera": "A"})


def test_a_take_records_the_chosen_camera(two: Running) -> None:
    operator = two.client("operator")
    started = operator.post("/api/takes/record?camera=B", json={"scene": "5", "take": "1"})
    assert started.status_code == 200, started.text
    assert started.json()["id"] == "5_1_B"  # labelled with the camera it records
    b = two.services[1]
    _until(lambda: (b.status()["recording"] or {}).get("frames", 0) >= 3, "recorded frames")
    status = operator.get("/api/status").json()
    recording = {c["name"]: c["recording"] for c in status["cameras"]}
    assert recording == {"A": None, "B": "5_1_B"}
    stopped = operator.post("/api/takes/stop")  # no camera: the one that records
    assert stopped.status_code == 200, stopped.text
    take = stopped.json()
    assert take["id"] == "5_1_B" and take["source"] == B_SOURCE and take["frames"] >= 3
    assert (take["width"], take["height"]) == (B_SIZE[0] // 2, B_SIZE[1])
    # a take labelled with a camera's name records that camera
    started = operator.post("/api/takes/record", json={"scene": "5", "take": "2", "camera": "A"})
    assert started.status_code == 200 and started.json()["source"] == A_SOURCE
    assert operator.post("/api/takes/stop?camera=A").status_code == 200


# --- a camera that fails -------------------------------------------------------------------


def test_a_camera_that_loses_its_source_does_not_stop_the_others(tmp_path: Path) -> None:
    sender = UdpSender(free_udp_port()).start()
    try:
        with running_server(
            tmp_path, cameras=[f"A={A_SOURCE}", f"B={sender.url}"], identity="testpattern",
            state_dir=tmp_path / "state",
        ) as srv:  # fmt: skip
            a, b = srv.services
            _until(lambda: b.built.pipeline.frames_out > 3, "frames from B's stream")
            sender.stop()
            http = srv.client("viewer")

            def b_lost() -> bool:
                cameras = http.get("/api/status").json()["cameras"]
                return bool(cameras[1]["state"] == "no signal")

            _until(b_lost, "B to read no signal")
            before = a.built.pipeline.frames_out
            _until(lambda: a.built.pipeline.frames_out > before + 10, "A's frames after B's loss")
            status = http.get("/api/status").json()
            assert status["camera"] == "A" and status["source"]["state"] == "live"
            assert http.get("/api/status?camera=B").json()["fx"] == "no signal"
            _, pictures = asyncio.run(
                _hello_and_pictures(f"{srv.ws}/ws/monitor?camera=A", 3, srv.ws_headers("viewer"))
            )
            assert {(h.width, h.height) for h, _ in pictures} == {A_SIZE}
    finally:
        sender.stop()
    assert sender.error is None
