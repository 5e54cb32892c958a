"""File sources: every frame in order, looping, pacing, corrupt files and clear errors."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from agecast.errors import SourceError
from agecast.frames import Frame
from agecast.sources import SourceState, open_source
from tests.sources.media import pattern_frame, write_clip

W, H = 160, 96


def brightness(image: torch.Tensor) -> float:
    """Mean of the right-most 8 columns, which the moving white bar never reaches."""
    return float(image[:, -8:].float().mean())


def expected_brightness(index: int) -> float:
    return float(pattern_frame(index, W, H)[:, -8:].mean())


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    return write_clip(tmp_path / "take.mp4", frames=30, width=W, height=H, fps=30)


def read_all(uri: str, *, live: bool) -> list[Frame]:
    with open_source(uri, live=live) as source:
        frames: list[Frame] = []
        while (frame := source.read()) is not None:
            frames.append(frame)
        assert source.state is SourceState.ENDED
        assert source.read() is None
    return frames


def test_render_mode_reads_every_frame_in_order(clip: Path) -> None:
    frames = read_all(str(clip), live=False)
    assert [f.index for f in frames] == list(range(30))
    pts = [f.pts_s for f in frames if f.pts_s is not None]
    assert len(pts) == 30
    assert pts == sorted(pts) and len(set(pts)) == 30
    assert pts[10] == pytest.approx(10 / 30, abs=0.002)
    for frame in frames:
        assert frame.image.dtype == torch.uint8 and frame.image.is_contiguous()
        assert tuple(frame.image.shape) == (H, W, 3)
        assert not frame.image.is_cuda
    # The pictures are the ones written, in their order.
    for frame in frames[::7]:
        assert brightness(frame.image) == pytest.approx(expected_brightness(frame.index), abs=4)
    captures = [f.capture_ns for f in frames]
    assert captures == sorted(captures)
    assert abs(frames[-1].wall_ns - time.time_ns()) < 5e9


def test_fps_comes_from_the_file(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "take25.mkv", frames=5, fps=25)
    with open_source(str(path), live=False) as source:
        assert source.fps == pytest.approx(25.0)
        assert source.state is SourceState.LIVE


def test_file_uri_and_context_manager(clip: Path) -> None:
    frames = read_all(clip.as_uri(), live=False)
    assert len(frames) == 30


def test_loop_restarts_and_keeps_counting(clip: Path) -> None:
    with open_source(str(clip), live=False, loop=True) as source:
        frames = [source.read() for _ in range(75)]
    assert all(f is not None for f in frames)
    assert [f.index for f in frames if f] == list(range(75))
    second_pass = frames[30]
    assert second_pass is not None and second_pass.pts_s == pytest.approx(0.0, abs=0.002)
    assert brightness(second_pass.image) == pytest.approx(expected_brightness(0), abs=4)


def test_live_is_paced_at_native_rate(clip: Path) -> None:
    with open_source(str(clip), live=True) as source:
        started = time.monotonic()
        for _ in range(16):
            assert source.read() is not None
        elapsed = time.monotonic() - started
    # 15 frame periods at 30 fps = 0.5 s; bounds are loose on purpose.
    assert 0.4 < elapsed < 1.5


def test_render_mode_is_not_paced(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "slow.mp4", frames=20, fps=5)  # 4 s of video
    started = time.monotonic()
    frames = read_all(str(path), live=False)
    assert len(frames) == 20
    assert time.monotonic() - started < 2.0


def test_late_consumer_does_not_get_a_burst(clip: Path) -> None:
    with open_source(str(clip), live=True) as source:
        source.read()
        time.sleep(0.3)  # about nine frames late
        started = time.monotonic()
        for _ in range(4):
            assert source.read() is not None
        # The schedule re-anchors: the first frame comes at once, the next three a period apart.
        assert time.monotonic() - started > 0.07


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-take.mp4"
    source = open_source(str(missing))
    with pytest.raises(SourceError, match=r"no-such-take\.mp4.*not found"):
        source.open()


def test_text_file_renamed_mp4_is_not_a_video(tmp_path: Path) -> None:
    fake = tmp_path / "notes.mp4"
    fake.write_text("call sheet: scene 12, take 3\n" * 50)
    with pytest.raises(SourceError, match=r"notes\.mp4.*not a video"):
        open_source(str(fake)).open()


def test_folder_is_not_a_video(tmp_path: Path) -> None:
    with pytest.raises(SourceError, match="folder"):
        open_source(str(tmp_path)).open()


def test_read_before_open_is_an_error(clip: Path) -> None:
    with pytest.raises(SourceError, match="open"):
        open_source(str(clip)).read()


def test_corrupt_bytes_mid_file_are_skipped(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "damaged.ts", frames=60, width=W, height=H)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4000] = bytes((i * 37) % 251 for i in range(4000))
    path.write_bytes(bytes(data))
    frames = read_all(str(path), live=False)
    assert 30 <= len(frames) < 60 + 5
    assert [f.index for f in frames] == list(range(len(frames)))


def test_undecodable_packet_is_logged_and_skipped(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = write_clip(tmp_path / "mj.mkv", frames=30, codec="mjpeg", pix_fmt="yuvj420p")
    data = bytearray(path.read_bytes())
    starts = [i for i in range(len(data) - 1) if data[i] == 0xFF and data[i + 1] == 0xD8]
    assert len(starts) == 30  # one JPEG per frame
    # Wipe most of frame 15's JPEG (its container framing stays): the decoder rejects it.
    first, stop = starts[15], starts[15] + (starts[16] - starts[15]) * 4 // 5
    data[first:stop] = bytes(stop - first)
    path.write_bytes(bytes(data))
    with caplog.at_level("WARNING", logger="agecast.sources"):
        frames = read_all(str(path), live=False)
    assert len(frames) == 29
    assert [f.index for f in frames] == list(range(29))
    assert any("undecodable" in r.getMessage() for r in caplog.records)


def test_truncated_file_ends_cleanly(tmp_path: Path) -> None:
    path = write_clip(tmp_path / "cut.mkv", frames=60, width=W, height=H)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    frames = read_all(str(path), live=False)
    assert 10 <= len(frames) < 60


def test_close_from_another_thread_unblocks_a_paced_read() -> None:
    source = open_source("testpattern:64x64@0.5", live=True)  # a frame every 2 s
    source.open()
    assert source.read() is not None
    closed_at: list[float] = []

    def close_soon() -> None:
        time.sleep(0.2)
        closed_at.append(time.monotonic())
        source.close()

    threading.Thread(target=close_soon).start()
    assert source.read() is None
    assert time.monotonic() - closed_at[0] < 0.5
    assert source.state is SourceState.ENDED
    assert source.read() is None
