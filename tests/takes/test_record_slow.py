"""A take recorded while the live pipeline cannot keep up: every source frame is in raw.mp4 at
the source's own time, and the aged take says which frames it holds."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest

from agecast.frames import Frame
from agecast.live.service import LiveService
from agecast.takes.recorder import tc_frames, timecode
from agecast.takes.store import TakeStore

from .conftest import take_settings
from .test_record import _camera_file, _yuv420

SLOW_S = 0.1  # a frame in the device thread takes ≥ 0.1 s: 10 fps against a 30 fps source


def _stamps(path: Path) -> tuple[list[float], str]:
    """Each picture's time (s) in decode order, and the stream's timecode tag."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        times = [float(f.pts * f.time_base) for f in container.decode(stream)]
        return times, str(stream.metadata.get("timecode"))


@pytest.fixture
def slow_service(tmp_path: Path) -> Any:
    clip = _camera_file(tmp_path / "camera.mp4", 240, "10:00:00:00")
    service = LiveService(take_settings(tmp_path, source=str(clip)))
    fx = service.built.fx
    process = fx.process

    def slow(frame: Frame, canvas: Any = None) -> Any:
        time.sleep(SLOW_S)  # a model three times too slow for the camera
        return process(frame, canvas)

    fx.process = slow  # type: ignore[method-assign]
    service.start()
    try:
        yield service, clip
    finally:
        service.stop()


def test_a_take_keeps_every_source_frame_when_the_pipeline_runs_at_a_third(
    slow_service: Any, tmp_path: Path
) -> None:
    service, clip = slow_service
    time.sleep(0.5)  # the monitor is running (and dropping) before the take starts
    service.start_recording("slow", "1")
    time.sleep(3.0)
    live = service.status()["recording"]
    assert live["recording"] and live["seconds"] >= 2.9 and live["captured"] >= 80
    info = service.stop_recording()
    after = service.status()["recording"]
    assert service.status()["fps_out"] < 15  # the live path really ran slow

    take = TakeStore(tmp_path / "takes").get(info.id)
    records = take.read_sidecar("v1")
    frames = [r for r in records if r["type"] == "frame"]
    end = records[-1]
    raw_times, raw_tc = _stamps(take.raw_path)
    aged_times, aged_tc = _stamps(take.aged_path("v1"))

    # every source frame, in order, none lost
    n = len(frames)
    assert info.status == "complete" and info.frames == n == len(raw_times) == len(aged_times)
    first = frames[0]["src"]
    assert [r["src"] for r in frames] == list(range(first, first + n))
    assert info.dropped_frames == 0 and after["dropped"] == 0
    source = _yuv420(clip)
    for r, picture in zip(frames, _yuv420(take.raw_path), strict=True):
        np.testing.assert_array_equal(picture, source[r["src"]])

    # at the source's own timestamps: 1/30 s apart, in raw and aged alike
    steps = np.diff(raw_times)
    np.testing.assert_allclose(steps, 1 / 30, atol=1e-4)
    assert aged_times == raw_times
    # as long as the take ran, within one frame
    assert abs(info.seconds - after["seconds"]) <= 1 / 30 + 1e-3, (info.seconds, after)

    # the file's timecode is the sidecar's, frame for frame
    assert raw_tc == aged_tc == info.timecode_start == frames[0]["tc"]
    start = tc_frames(info.timecode_start, 30.0)
    assert [r["tc"] for r in frames] == [timecode(start + round(t * 30), 30.0) for t in raw_times]
    assert info.timecode_start == timecode(tc_frames("10:00:00:00", 30.0) + first, 30.0)

    # the aged take: about a third its own pictures, the rest held, each listed
    held = [r["i"] for r in frames if r.get("held")]
    assert end["type"] == "end" and end["held"] == held and info.held_frames == len(held)
    assert info.aged_frames == n - len(held) and 0.15 * n < info.aged_frames < 0.6 * n
    assert all(r["faces"] is not None for r in frames if not r.get("held"))
    shown = [r["shows"] for r in frames if r.get("held") and r["shows"] is not None]
    assert all(not frames[s].get("held") for s in shown)

    # the status the page reads after STOP
    assert not after["recording"] and after["finished"] and after["status"] == "complete"
    assert after["frames"] == n and after["held"] == len(held) and after["next_take"] == "2"
    assert after["written_s"] == round(info.seconds, 2)
