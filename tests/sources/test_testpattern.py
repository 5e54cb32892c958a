"""``testpattern:WxH@FPS``: sizes parse, frames move, the counter counts, pacing holds."""

from __future__ import annotations

import itertools
import time

import numpy as np
import pytest

from agecast.errors import SourceError
from agecast.sources import SourceState, open_source
from agecast.sources.testpattern import COUNTER_BITS, TestPatternSource, parse_testpattern


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("testpattern", (1280, 720, 30.0)),
        ("testpattern:640x360", (640, 360, 30.0)),
        ("testpattern:1920x1080@60", (1920, 1080, 60.0)),
        ("testpattern:@25", (1280, 720, 25.0)),
        ("testpattern:320x240@29.97", (320, 240, 29.97)),
    ],
)
def test_sizes_parse(uri: str, expected: tuple[int, int, float]) -> None:
    assert parse_testpattern(uri) == expected
    source = open_source(uri)
    assert isinstance(source, TestPatternSource)
    assert (source.width, source.height, source.fps) == expected


@pytest.mark.parametrize(
    "uri", ["testpattern:abc", "testpattern:10x10", "testpattern:640x360@0", "testpattern:64x"]
)
def test_bad_patterns_are_refused(uri: str) -> None:
    with pytest.raises(SourceError, match="test pattern"):
        open_source(uri)


def read_counter(image: np.ndarray) -> int:
    """Read the binary cells back from the counter band."""
    h, w = image.shape[:2]
    top = int(h * 0.78)
    band = h - top
    cell = w // (COUNTER_BITS + 2)
    x0 = (w - cell * COUNTER_BITS) // 2
    row = image[top + band // 4, x0 : x0 + cell * COUNTER_BITS, 0]
    bits = row.reshape(COUNTER_BITS, cell)[:, cell // 3] > 128
    return int("".join("1" if b else "0" for b in bits), 2)


def test_frames_move_and_count() -> None:
    with open_source("testpattern:640x360@30", live=False) as source:
        assert source.state is SourceState.LIVE
        frames = [source.read() for _ in range(61)]
    images = [f.image.numpy() for f in frames if f is not None]
    assert len(images) == 61
    assert images[0].shape == (360, 640, 3)
    for a, b in itertools.pairwise(images):
        assert not np.array_equal(a, b)
    assert [read_counter(im) for im in images[:3]] == [0, 1, 2]
    assert read_counter(images[60]) == 60
    # The face travels: the upper (bars) region changes a lot over two seconds.
    bars_change = np.abs(images[0][:200].astype(int) - images[60][:200].astype(int)).mean()
    assert bars_change > 5
    assert frames[30] is not None and frames[30].pts_s == pytest.approx(1.0)


def test_render_mode_is_fast_and_endless() -> None:
    with open_source("testpattern:1280x720@30", live=False) as source:
        started = time.monotonic()
        frames = [source.read() for _ in range(150)]  # five seconds of pattern
        elapsed = time.monotonic() - started
    assert all(f is not None for f in frames)
    assert [f.index for f in frames if f] == list(range(150))
    assert elapsed < 3.0


def test_live_is_paced() -> None:
    with open_source("testpattern:320x180@20", live=True) as source:
        started = time.monotonic()
        for _ in range(11):
            assert source.read() is not None
        elapsed = time.monotonic() - started
    assert 0.35 < elapsed < 1.5  # ten periods at 20 fps = 0.5 s
