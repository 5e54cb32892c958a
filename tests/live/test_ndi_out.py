"""A camera's NDI outputs, picked up by a receiver built with the same library on this machine:
the aged, raw and side-by-side sources carry the live pictures (the face changed on aged,
nothing else), frame for frame, with status per output."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from agecast.live.service import LiveService
from agecast.media import ndi
from agecast.settings import Settings
from agecast.sources.testpattern import read_counter

pytestmark = pytest.mark.usefixtures("ndi_lan")

W, H = 320, 240


@pytest.fixture
def service(tmp_path: Path) -> Iterator[LiveService]:
    settings = Settings.load(
        source=f"testpattern:{W}x{H}@30",
        identity="testpattern",
        state_dir=tmp_path / "state",
        ndi_out="aged,raw,side-by-side",
        ndi_name=f"agecast-{uuid.uuid4().hex[:6]}",
    )
    live = LiveService(settings)
    live.start()
    yield live
    live.stop()


def _receive(name: str, count: int) -> list[tuple[int, np.ndarray, float]]:
    """(frame number the picture shows, picture, timecode) of ``count`` pictures."""
    rx = ndi.NdiReceiver(name, open_timeout_s=10, read_timeout_s=5)
    try:
        got = []
        for _ in range(count):
            picture = rx.next()
            got.append((read_counter(picture.rgb[:, -W:]), picture.rgb, picture.timecode_s))
        return got
    finally:
        rx.close()


def test_each_output_carries_the_live_pictures(service: LiveService) -> None:
    prefix = f"{service.settings.ndi_name} cam1"
    aged = _receive(f"{prefix} aged", 15)
    raw = _receive(f"{prefix} raw", 15)
    sbs = _receive(f"{prefix} side-by-side", 5)
    assert {p.shape for _, p, _ in aged + raw} == {(H, W, 3)}
    assert {p.shape for _, p, _ in sbs} == {(H, 2 * W, 3)}
    assert len({n for n, _, _ in aged}) > 5, "the aged source did not move"

    # the same frame on both sides: the face changed, the frame counter band did not
    raw_by_frame = {n: p for n, p, _ in raw}
    aged_again = _receive(f"{prefix} aged", 30)
    pairs = [(p, raw_by_frame[n]) for n, p, _ in aged_again if n in raw_by_frame]
    if not pairs:  # the two receivers ran one after the other: take both sides of one sbs
        pairs = [(p[:, W:], p[:, :W]) for _, p, _ in sbs]
    for aged_picture, raw_picture in pairs:
        diff = np.abs(aged_picture.astype(int) - raw_picture.astype(int)).max(axis=2)
        band = int(H * 0.78)
        assert (diff[:band] > 40).mean() > 0.002, "no face changed on the aged output"
        assert np.median(diff[band:]) <= 4, "the aged output changed the frame counter band"


def test_outputs_are_frame_locked(service: LiveService) -> None:
    """Every output of a frame carries the same NDI timecode; side-by-side is one frame."""
    prefix = f"{service.settings.ndi_name} cam1"
    kinds = ("raw", "aged", "side-by-side")
    with ThreadPoolExecutor(len(kinds)) as pool:  # three receivers at once, as a cart has
        received = pool.map(lambda k: _receive(f"{prefix} {k}", 45), kinds)
        got = dict(zip(kinds, received, strict=True))
    for _, picture, _ in got["side-by-side"]:
        assert read_counter(picture[:, :W]) == read_counter(picture[:, W:])
    by_frame = {k: {n: tc for n, _, tc in got[k]} for k in kinds}
    common = set(by_frame["raw"]) & set(by_frame["aged"]) & set(by_frame["side-by-side"])
    assert len(common) >= 5, "the three receivers saw too few of the same frames"
    for n in common:
        assert len({by_frame[k][n] for k in kinds}) == 1, f"frame {n}: timecodes differ"
    raw = by_frame["raw"]
    assert len(set(raw.values())) == len(raw)  # one timecode per frame
    # the frame's capture time: NDI's timecode is POSIX time here
    assert abs(max(raw.values()) - time.time()) < 5


def test_status_counts_receivers_pictures_and_drops(service: LiveService) -> None:
    name = f"{service.settings.ndi_name} cam1 aged"
    rx = ndi.NdiReceiver(name, open_timeout_s=10, read_timeout_s=5)
    try:
        for _ in range(5):
            rx.next()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            ndi_status = service.status()["ndi"]
            aged = next(o for o in ndi_status["outputs"] if o["kind"] == "aged")
            if aged["receivers"] >= 1:
                break
            time.sleep(0.1)
    finally:
        rx.close()
    assert aged["name"] == name and aged["receivers"] >= 1 and aged["sent"] >= 5
    assert {o["kind"] for o in ndi_status["outputs"]} == {"aged", "raw", "side-by-side"}
    assert isinstance(ndi_status["dropped"], int)
    assert service.status()["fps_out"] > 0  # the live path kept running
    from agecast.api.metrics import render_metrics

    metrics = render_metrics([service.status()])
    assert re.search(r'^agecast_ndi_sent_total\{output="aged"\} [1-9]', metrics, re.M)
    assert re.search(r'^agecast_ndi_receivers\{output="raw"\} \d', metrics, re.M)
    assert re.search(r"^agecast_ndi_dropped_total \d+$", metrics, re.M)


def test_an_output_nobody_receives_costs_nothing(service: LiveService) -> None:
    """NDI compresses whatever it is given: a frame goes out only to an output with a
    receiver; the others count it as unwatched."""
    time.sleep(1.0)
    before = {o["kind"]: o for o in service.status()["ndi"]["outputs"]}
    assert all(o["sent"] == 0 and o["unwatched"] > 0 for o in before.values()), before
    _receive(f"{service.settings.ndi_name} cam1 aged", 10)
    after = {o["kind"]: o for o in service.status()["ndi"]["outputs"]}
    assert after["aged"]["sent"] >= 10
    assert service.status()["ndi"]["fps"] > 0  # sent in the last second
    assert after["raw"]["sent"] == 0 and after["raw"]["unwatched"] > before["raw"]["unwatched"]


def test_the_outputs_are_settings_like_any_other() -> None:
    from agecast.errors import SettingsError

    assert Settings.load(ndi_out="aged,side-by-side").ndi_out == ["aged", "side-by-side"]
    assert Settings.load(ndi_out='["raw"]', ndi_extra_ips="10.0.0.5,10.0.0.6").ndi_extra_ips == [
        "10.0.0.5",
        "10.0.0.6",
    ]
    with pytest.raises(SettingsError, match="ndi_out"):
        Settings.load(ndi_out="aged,program")


def test_without_the_ndi_runtime_the_monitor_runs_and_says_why(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "cyndilib", None)  # `import cyndilib` fails, as uninstalled
    ndi._runtime.cache_clear()
    try:
        settings = Settings.load(
            source=f"testpattern:{W}x{H}@30",
            identity="testpattern",
            state_dir=tmp_path / "state",
            ndi_out="aged",
        )
        live = LiveService(settings)
        live.start()
        try:
            deadline = time.monotonic() + 10
            while live.status()["frames_out"] < 5 and time.monotonic() < deadline:
                time.sleep(0.1)
            status = live.status()
        finally:
            live.stop()
    finally:
        ndi._runtime.cache_clear()
    assert status["frames_out"] >= 5 and status["ndi"] is None
    assert status["ndi_error"] is not None and "pip install cyndilib" in status["ndi_error"]
