"""PyAV frame helpers: exact pixels both ways, odd sizes cut, padded rows handled."""

from __future__ import annotations

import av
import numpy as np
import pytest

from agecast.media.avframe import (
    Yuv420Patcher,
    changed_boxes,
    is_bt601_yuv420,
    rgb_array,
    rgb_frame,
)


def _picture(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(height * width).integers(0, 256, (height, width, 3), np.uint8)


@pytest.mark.parametrize(("height", "width"), [(72, 128), (71, 127), (36, 50)])
def test_rgb_frame_holds_the_picture_cut_to_even_sizes(height: int, width: int) -> None:
    picture = _picture(height, width)
    frame = rgb_frame(picture)
    even_h, even_w = height - height % 2, width - width % 2
    assert (frame.height, frame.width) == (even_h, even_w)
    np.testing.assert_array_equal(frame.to_ndarray(format="rgb24"), picture[:even_h, :even_w])


def test_rgb_frame_refuses_what_is_not_rgb() -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        rgb_frame(np.zeros((8, 8, 4), np.uint8))
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        rgb_frame(np.zeros((8, 8, 3), np.float32))


@pytest.mark.parametrize(("height", "width"), [(72, 128), (36, 50), (10, 18)])
def test_rgb_array_matches_pyav_to_ndarray(height: int, width: int) -> None:
    yuv = rgb_frame(_picture(height, width)).reformat(format="yuv420p")
    expected = yuv.to_ndarray(format="rgb24")
    got = rgb_array(yuv)
    assert got.shape == (height, width, 3)
    np.testing.assert_array_equal(got, expected)
    rgb = av.VideoFrame.from_ndarray(expected, format="rgb24")  # already RGB: no conversion
    np.testing.assert_array_equal(rgb_array(rgb), expected)


def test_rgb_array_outlives_its_frame() -> None:
    picture = _picture(36, 50)
    array = rgb_array(rgb_frame(picture).reformat(format="yuv420p"))
    reference = array.copy()
    del picture
    _ = [rgb_frame(_picture(36, 50)) for _ in range(20)]  # reuse freed memory if it were freed
    np.testing.assert_array_equal(array, reference)


def _brute_box(a: np.ndarray, b: np.ndarray) -> tuple[int, int, int, int] | None:
    ys, xs = np.nonzero((a != b).any(axis=2))
    if ys.size == 0:
        return None
    return int(ys.min()), int(ys.max()) + 1, int(xs.min()), int(xs.max()) + 1


@pytest.mark.parametrize(("height", "width"), [(72, 128), (36, 50), (31, 45)])
def test_changed_boxes_hold_every_change_on_even_coordinates(height: int, width: int) -> None:
    rng = np.random.default_rng(7)
    before = _picture(height, width)
    assert changed_boxes(before, before.copy()) == []
    for _ in range(30):
        after = before.copy()
        y0, x0 = rng.integers(0, height), rng.integers(0, width)
        y1, x1 = rng.integers(y0 + 1, min(height, y0 + 16) + 1), rng.integers(x0 + 1, width + 1)
        after[y0:y1, x0:x1, rng.integers(0, 3)] ^= 1
        boxes = changed_boxes(before, after)
        assert len(boxes) == 1
        by0, by1, bx0, bx1 = boxes[0]
        assert by0 % 2 == 0 and bx0 % 2 == 0
        assert by1 % 2 == 0 or by1 == height
        assert bx1 % 2 == 0 or bx1 == width
        ty0, ty1, tx0, tx1 = _brute_box(before, after)  # type: ignore[misc]
        assert by0 <= ty0 and ty1 <= by1 and bx0 <= tx0 and tx1 <= bx1
        # no wider than the change rounded out to chroma pairs (and to 8-byte words in x)
        assert ty0 - by0 <= 1 and by1 - ty1 <= 1
        assert tx0 - bx0 <= 4 and bx1 - tx1 <= 4


def test_changed_boxes_keep_far_apart_changes_apart_also_in_a_canvas_half() -> None:
    canvas = np.zeros((120, 320, 3), np.uint8)  # a side-by-side canvas: rows not contiguous
    before, after = canvas[:, :160].copy(), canvas[:, 160:]
    after[60:90, 40:80] = 200  # the face
    after[2:10, 140:158] = 255  # a mark in the top right corner
    assert not after.flags.c_contiguous
    assert changed_boxes(before, after) == [(2, 10, 138, 160), (60, 90, 40, 80)]  # 8-byte words
    # one byte per word when the rows do not split into words: the same boxes
    assert changed_boxes(before[:, :157], np.ascontiguousarray(after[:, :157])) == [
        (2, 10, 140, 157),
        (60, 90, 40, 80),
    ]


def test_is_bt601_yuv420_accepts_only_what_the_pipeline_converts_back_exactly() -> None:
    yuv = rgb_frame(_picture(36, 50)).reformat(format="yuv420p")
    assert is_bt601_yuv420(yuv, 36, 50)
    assert not is_bt601_yuv420(yuv, 36, 52)  # another size
    assert not is_bt601_yuv420(np.zeros((36, 50, 3), np.uint8), 36, 50)  # not a frame
    assert not is_bt601_yuv420(yuv.reformat(format="yuv444p"), 36, 50)
    yuv.colorspace = 1  # BT.709: PyAV's default RGB conversion would not give it back
    assert not is_bt601_yuv420(yuv, 36, 50)
    yuv.colorspace = 6
    yuv.color_range = 2  # full range (JPEG)
    assert not is_bt601_yuv420(yuv, 36, 50)


def _planes(frame: av.VideoFrame) -> list[np.ndarray]:
    h, w = frame.height, frame.width
    return [
        np.frombuffer(memoryview(p), np.uint8, count=rows * p.line_size)
        .reshape(rows, p.line_size)[:, :cols]
        .copy()
        for p, (rows, cols) in zip(
            frame.planes, [(h, w), (h // 2, w // 2), (h // 2, w // 2)], strict=True
        )
    ]


def test_patcher_keeps_the_source_outside_the_boxes_and_converts_inside() -> None:
    height, width = 72, 128
    source = rgb_frame(_picture(height, width)).reformat(format="yuv420p")
    raw = rgb_array(source)
    patcher = Yuv420Patcher()
    copy = patcher.frame(source)
    for got, want in zip(_planes(copy), _planes(source), strict=True):
        np.testing.assert_array_equal(got, want)

    aged = raw.copy()
    aged[16:48, 32:96] = (250, 30, 30)  # a red "face", 32×64: converted as it is
    boxes = changed_boxes(raw, aged)
    assert boxes == [(16, 48, 32, 96)]
    patched = patcher.frame(source, aged, boxes)
    inside = np.zeros((height, width), bool)
    inside[16:48, 32:96] = True
    for i, (got, want) in enumerate(zip(_planes(patched), _planes(source), strict=True)):
        keep = inside if i == 0 else inside[::2, ::2]
        np.testing.assert_array_equal(got[~keep], want[~keep])  # the decoded source, untouched
    expected = rgb_frame(aged[16:48, 32:96]).reformat(format="yuv420p")
    for got, want in zip(_planes(patched), _planes(expected), strict=True):
        scale = 1 if got.shape[0] == height else 2
        np.testing.assert_array_equal(
            got[16 // scale : 48 // scale, 32 // scale : 96 // scale], want
        )


def test_patcher_grows_small_boxes_inside_the_picture() -> None:
    height, width = 72, 128
    ramp = np.linspace(0, 255, width, dtype=np.float32)
    smooth = np.stack([np.tile(ramp, (height, 1))] * 3, axis=2).astype(np.uint8)
    source = rgb_frame(smooth).reformat(format="yuv420p")
    raw = rgb_array(source)
    patcher = Yuv420Patcher()
    for y0, x0 in [(66, 122), (0, 0), (30, 60), (66, 122)]:  # corners: grown inwards
        aged = raw.copy()
        aged[y0 : y0 + 6, x0 : x0 + 6] = (250, 30, 30)
        shown = rgb_array(patcher.frame(source, aged, changed_boxes(raw, aged))).astype(int)
        assert np.abs(shown[y0 + 2 : y0 + 4, x0 + 2 : x0 + 4] - [250, 30, 30]).max() <= 8
        far = np.ones((height, width), bool)
        far[max(0, y0 - 2) : y0 + 8, max(0, x0 - 2) : x0 + 8] = False
        assert np.abs(shown - raw.astype(int))[far].max() <= 3  # the rest as it was
