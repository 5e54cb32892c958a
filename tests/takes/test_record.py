"""Recording takes: frames as the source drew them, timecode, crash safety, a full disk."""

from __future__ import annotations

import json
import resource
import signal
import time
from pathlib import Path

import av
import numpy as np

from agecast.sources.testpattern import TestPatternSource
from agecast.takes.recorder import record, tc_frames, timecode
from agecast.takes.store import TakeStore

from .conftest import SOURCE, cli, decode, psnr, take_settings


def luma(picture: np.ndarray) -> np.ndarray:
    return picture.astype(np.float64) @ np.array([0.299, 0.587, 0.114])


def _assert_changed_only_about_the_face(changed: np.ndarray, frame: dict) -> None:
    """``changed`` (a per-pixel mask) covers the recorded face and hardly anything else."""
    x0, y0, x1, y1 = (round(v) for v in frame["faces"][0]["box"])
    assert changed[max(0, y0) : y1, max(0, x0) : x1].mean() > 0.05
    outside = changed.copy()
    outside[max(0, y0 - 40) : y1 + 40, max(0, x0 - 40) : x1 + 40] = False
    outside[:40, -80:] = False  # the visible "AI" mark, top right
    assert outside.mean() < 0.002


def _frames(records: list[dict]) -> list[dict]:
    return [r for r in records if r["type"] == "frame"]


def test_recorded_raw_is_the_source_frame_for_frame(tmp_path: Path) -> None:
    settings = take_settings(tmp_path, take_raw_444=True)  # the test pattern is drawn in RGB
    info = record(settings, "s1", "1", seconds=1.0)
    take = TakeStore(settings.resolved_takes_dir).get(info.id)
    records = take.read_sidecar("v1")
    frames = _frames(records)
    raw, aged = decode(take.raw_path), decode(take.aged_path("v1"))
    assert info.status == "complete" and (info.width, info.height) == (320, 240)
    assert len(raw) == len(aged) == len(frames) == info.frames >= 20
    assert [r["i"] for r in frames] == list(range(info.frames))
    start = records[0]
    assert start["type"] == "start" and start["identity"]["id"] == "testpattern"
    assert start["settings"]["blend"] == 1.0 and start["settings"]["source"] == SOURCE
    assert len(start["identity"]["sha256"]) == 64

    pattern = TestPatternSource(SOURCE, 320, 240, 30.0, live=False)
    pattern.open()
    same = [psnr(raw[i], pattern.draw(r["src"])) for i, r in enumerate(frames)]
    shifted = [psnr(raw[i], pattern.draw(r["src"] + 1)) for i, r in enumerate(frames)]
    assert min(same) > 45.0, same  # qp 0 4:4:4: only the RGB→YUV rounding loses
    assert all(s > t + 3 for s, t in zip(same, shifted, strict=True))  # indices line up

    # the aged picture differs from the raw one where the recorded face is, and only about there
    on = next(i for i, r in enumerate(frames) if r["fx"] == "on" and r["faces"])
    changed = np.abs(luma(aged[on]) - luma(raw[on])) > 30  # aged is 4:2:0: compare luma
    _assert_changed_only_about_the_face(changed, frames[on])


def test_default_raw_keeps_the_luma_exactly(tmp_path: Path) -> None:
    """4:2:0 (the default) halves the chroma resolution, and only that: luma is kept."""
    settings = take_settings(tmp_path)
    info = record(settings, "s1", "1", seconds=0.5)
    take = TakeStore(settings.resolved_takes_dir).get(info.id)
    frames = _frames(take.read_sidecar("v1"))
    pattern = TestPatternSource(SOURCE, 320, 240, 30.0, live=False)
    pattern.open()
    for picture, r in zip(decode(take.raw_path), frames, strict=True):
        source = pattern.draw(r["src"])
        error = luma(picture) - luma(source)
        assert 10 * np.log10(255.0**2 / float(np.mean(error**2))) > 45.0


def _camera_file(path: Path, frames: int, timecode: str | None = None) -> Path:
    """An H.264 file of the test pattern, as a camera's card would hold."""
    pattern = TestPatternSource(SOURCE, 320, 240, 30.0, live=False)
    pattern.open()
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 320, 240, "yuv420p"
        if timecode:
            stream.metadata["timecode"] = timecode
        for n in range(frames):
            frame = av.VideoFrame.from_ndarray(pattern.draw(n), format="rgb24")
            frame.pts = n
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _yuv420(path: Path) -> list[np.ndarray]:
    """Every picture's 4:2:0 samples as decoded: Y rows, then U and V (PyAV's layout)."""
    with av.open(str(path)) as container:
        return [f.to_ndarray(format="yuv420p") for f in container.decode(video=0)]


def test_raw_from_a_compressed_file_is_the_decoded_source_bit_exact(tmp_path: Path) -> None:
    clip = _camera_file(tmp_path / "camera.mp4", 30)
    settings = take_settings(tmp_path, source=str(clip))
    info = record(settings, "yuv", "1", seconds=0.7)
    take = TakeStore(settings.resolved_takes_dir).get(info.id)
    frames = _frames(take.read_sidecar("v1"))
    source, raw, aged = (_yuv420(p) for p in (clip, take.raw_path, take.aged_path("v1")))
    assert len(raw) == len(aged) == len(frames) == info.frames >= 15
    for i, r in enumerate(frames):  # the decoded source itself: nothing converted and back
        np.testing.assert_array_equal(raw[i], source[r["src"]])

    # aged: the faces changed, the rest is the source (through crf 12)
    on = next(i for i, r in enumerate(frames) if r["fx"] == "on" and r["faces"])
    changed = np.abs(aged[on][:240].astype(int) - raw[on][:240].astype(int)) > 12
    _assert_changed_only_about_the_face(changed, frames[on])


def test_timecode_comes_from_a_file_source(tmp_path: Path) -> None:
    clip = _camera_file(tmp_path / "camera.mp4", 45, "01:02:03:04")
    settings = take_settings(tmp_path, source=str(clip))
    info = record(settings, "tc", "1", seconds=0.5)
    take = TakeStore(settings.resolved_takes_dir).get(info.id)
    frames = _frames(take.read_sidecar("v1"))
    base = tc_frames("01:02:03:04", 30.0)
    assert info.timecode_start == timecode(base + frames[0]["src"], 30.0)
    assert [r["tc"] for r in frames] == [timecode(base + r["src"], 30.0) for r in frames]
    with av.open(str(take.raw_path)) as container:
        assert container.streams.video[0].metadata["timecode"] == info.timecode_start


def _wait_for(predicate: object, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def _recorded_frames(path: Path) -> int:
    try:
        return int(json.loads(path.read_text())["frames"])
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def test_sigkill_mid_take_leaves_files_that_play(tmp_path: Path) -> None:
    takes = tmp_path / "takes"
    proc = cli(
        "record", "--source", SOURCE, "--identity", "testpattern", "--takes-dir", str(takes),
        "--seconds", "120", "--scene", "kill", "--take", "1",
        env={"AGECAST_STATE_DIR": str(tmp_path / "state"), "AGECAST_MIN_FREE_GB": "0.01"},
    )  # fmt: skip
    info_path = takes / "kill_1" / "take.json"
    try:
        _wait_for(lambda: _recorded_frames(info_path) >= 75, 90, "2.5 s of recorded frames")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    take = TakeStore(takes).get("kill_1")
    info = take.info
    assert info.status == "interrupted"  # take.json said recording; its process is gone
    raw, aged = decode(take.raw_path), decode(take.aged_path("v1"))
    # take.json is at most a second stale and the files lose at most the fragment (1 s) open
    assert len(raw) >= info.frames - 33, (len(raw), info.frames)
    assert len(aged) >= info.frames - 33, (len(aged), info.frames)
    assert len(raw) >= 45 and raw[0].shape == (240, 320, 3)
    sidecar = _frames(take.read_sidecar("v1"))
    assert len(sidecar) >= len(raw) - 33


def _limit_file_size() -> None:
    limit = 1_000_000  # above the identity's model, copied privately when it loads
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG


def test_a_write_that_fails_stops_the_take_cleanly(tmp_path: Path) -> None:
    """A real write failure (the file-size limit, like a full disk) ends the take, says why."""
    takes = tmp_path / "takes"
    proc = cli(
        "record", "--source", SOURCE, "--identity", "testpattern", "--takes-dir", str(takes),
        "--seconds", "30", "--scene", "full", "--take", "1",
        env={"AGECAST_STATE_DIR": str(tmp_path / "state"), "AGECAST_MIN_FREE_GB": "0.01"},
        preexec_fn=_limit_file_size,
    )  # fmt: skip
    out, err = proc.communicate(timeout=120)
    text = err.decode()
    assert proc.returncode == 1, text
    take = TakeStore(takes).get("full_1")
    info = take.info
    assert info.status.startswith("stopped: disk full"), info.status
    assert "File too large" in info.status
    assert "stopped: disk full" in text and "full_1" in out.decode()
    assert 0 < info.frames < 30 * 30
    assert len(decode(take.raw_path)) >= info.frames - 33
