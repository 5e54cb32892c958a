"""RGB pictures into PyAV frames without holding the GIL.

``av.VideoFrame.from_ndarray`` copies a 720p picture in about 1 ms with the GIL held, and a
thread looping on it starves every other Python thread for several milliseconds at a time
(measured: a 1 ms sleeper woke up to 14 ms late, p95, beside a loop of 720p ``from_ndarray``).
The live pipeline's capture, device and encode threads all need the GIL, so every encoder
fills a blank frame with ``numpy.copyto`` instead, which copies with the GIL released (0.2 ms
for 720p, the sleeper undisturbed). Converting to YUV (``reformat``) and encoding release the GIL
on their own.

A recorder keeps pictures in the 4:2:0 the source decoded (:class:`Yuv420Patcher`): the raw take
is then exactly the decoded source, and the aged take converts only the box its faces changed
(:func:`changed_boxes`) instead of the whole picture (about 2 ms of CPU per 720p picture each).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence

import av
import numpy as np
from av.video.reformatter import VideoReformatter


def _plane_rows(plane: av.video.plane.VideoPlane, height: int, width: int) -> np.ndarray:
    """A writable (height, width) view of a plane's bytes, without its row padding."""
    rows = np.frombuffer(memoryview(plane), np.uint8, count=height * plane.line_size)
    return rows.reshape(height, plane.line_size)[:, :width]


def even_size(array: np.ndarray) -> tuple[int, int]:
    """(height, width) cut to even numbers: 4:2:0 needs them."""
    return array.shape[0] - array.shape[0] % 2, array.shape[1] - array.shape[1] % 2


def rgb_frame(array: np.ndarray) -> av.VideoFrame:
    """A new ``rgb24`` frame holding ``array`` (HWC uint8 RGB) cut to even sizes."""
    if array.ndim != 3 or array.shape[2] != 3 or array.dtype != np.uint8:
        raise ValueError(f"expected an HxWx3 uint8 RGB picture, got {array.shape} {array.dtype}")
    height, width = even_size(array)
    frame = av.VideoFrame(width, height, "rgb24")
    target = _plane_rows(frame.planes[0], height, width * 3).reshape(height, width, 3)
    np.copyto(target, array[:height, :width])
    return frame


def rgb_array(frame: av.VideoFrame) -> np.ndarray:
    """HWC uint8 RGB of a decoded frame: a view of the converted picture, copied only if padded.

    ``to_ndarray`` copies with the GIL held; ``reformat`` converts without it, and the view keeps
    the converted frame alive for as long as the array lives.
    """
    converted = frame if frame.format.name == "rgb24" else frame.reformat(format="rgb24")
    plane = converted.planes[0]
    height, width = converted.height, converted.width
    picture = _plane_rows(plane, height, width * 3).reshape(height, width, 3)
    if plane.line_size == width * 3:
        return picture
    out = np.empty((height, width, 3), np.uint8)
    np.copyto(out, picture)
    return out


# 4:2:0 pictures straight from the source ------------------------------------------------------
# Colour spaces PyAV's RGB conversion uses by default (BT.601, limited range): a decoded picture
# tagged so (or untagged) converts to the same RGB the pipeline saw, and back.
_BT601_SPACES = {2, 5, 6}  # unspecified, BT470BG, SMPTE170M
_LIMITED_RANGES = {0, 1}  # unspecified, MPEG


# PyAV converts RGB→YUV with BT.601 coefficients: every H.264 stream we write says so in its
# x264 parameters, or players assume BT.709.
BT601_X264 = "colorprim=smpte170m:transfer=smpte170m:colormatrix=smpte170m"


def is_bt601_yuv420(frame: object, height: int, width: int) -> bool:
    """Whether ``frame`` is an even-sized BT.601 limited-range 4:2:0 picture of this size."""
    return (
        isinstance(frame, av.VideoFrame)
        and frame.format.name == "yuv420p"
        and (frame.height, frame.width) == (height, width)
        and height % 2 == 0
        and width % 2 == 0
        and frame.colorspace in _BT601_SPACES
        and frame.color_range in _LIMITED_RANGES
    )


Box = tuple[int, int, int, int]  # y0, y1, x0, x1
ROW_GAP = 16  # changed rows this far apart are boxed apart (a face and a corner mark)


def _row_words(picture: np.ndarray) -> tuple[np.ndarray, int]:
    """(rows × words, bytes per word): each row of an HWC uint8 picture as 8-byte words where
    its rows allow (a view, also of one side of a wider canvas), else as bytes."""
    height = picture.shape[0]
    rows = picture.reshape(height, -1)  # a view while each row is contiguous
    if rows.shape[1] % 8 == 0 and rows.strides[1] == 1 and rows.strides[0] % 8 == 0:
        with contextlib.suppress(ValueError):  # a misaligned buffer stays in bytes
            return rows.view(np.uint64), 8
    return rows, 1


def changed_boxes(before: np.ndarray, after: np.ndarray) -> list[Box]:
    """Boxes ``(y0, y1, x0, x1)`` holding every pixel that differs between two HWC uint8
    pictures of one size, on even coordinates (4:2:0 chroma pairs): one per band of changed
    rows, so a face and a mark far from it make two small boxes, not one large. Empty when the
    pictures are equal. About 0.3 ms for 720p (eight bytes compared at a time)."""
    height, width, channels = before.shape
    (a, unit), (b, unit_b) = _row_words(before), _row_words(after)
    if unit != unit_b:
        a, b, unit = before.reshape(height, -1), after.reshape(height, -1), 1
    diff = a != b
    rows = np.flatnonzero(diff.any(axis=1))
    boxes: list[Box] = []
    if rows.size == 0:
        return boxes
    breaks = np.flatnonzero(np.diff(rows) > ROW_GAP)
    for first, last in zip(
        np.concatenate(([0], breaks + 1)), np.concatenate((breaks, [rows.size - 1])), strict=True
    ):
        y0, y1 = int(rows[first]), int(rows[last]) + 1
        cols = np.flatnonzero(diff[y0:y1].any(axis=0))
        x0 = int(cols[0]) * unit // channels
        x1 = -(-(int(cols[-1]) + 1) * unit // channels)
        y0, x0 = y0 - y0 % 2, x0 - x0 % 2
        boxes.append((y0, min(height, y1 + y1 % 2), x0, min(width, x1 + x1 % 2)))
    return boxes


def _grown(box: Box, height: int, width: int) -> Box:
    """``box`` grown to whole :data:`PATCH_QUANTUM` steps (kept inside the picture), so a face
    that moves a little keeps its size and its converter."""
    y0, y1, x0, x1 = box
    rows = min(height, -(-(y1 - y0) // PATCH_QUANTUM) * PATCH_QUANTUM)
    cols = min(width, -(-(x1 - x0) // PATCH_QUANTUM) * PATCH_QUANTUM)
    y0, x0 = min(y0, height - rows), min(x0, width - cols)
    return y0, y0 + rows, x0, x0 + cols


PATCH_QUANTUM = 32


class Yuv420Patcher:
    """Builds 4:2:0 pictures from a source's decoded one: :meth:`frame` copies it and converts
    an RGB picture's pixels over it inside a few boxes. Outside them the source's own samples
    are kept, so nothing there is converted twice.

    Setting up a converter for a new size costs more than converting a face (0.4 ms against
    0.2 ms for 200×200), so each box grows to whole 32-pixel steps and keeps its converter from
    frame to frame.
    """

    def __init__(self) -> None:
        self._converters: list[VideoReformatter] = []

    def frame(
        self, base: av.VideoFrame, picture: np.ndarray | None = None, boxes: Sequence[Box] = ()
    ) -> av.VideoFrame:
        """A new 4:2:0 frame: ``base`` with ``picture`` (HWC RGB, base's size) in ``boxes``."""
        height, width = base.height, base.width
        out = av.VideoFrame(width, height, "yuv420p")
        sizes = ((height, width), (height // 2, width // 2), (height // 2, width // 2))
        targets = []
        for src, dst, (rows, cols) in zip(base.planes, out.planes, sizes, strict=True):
            target = _plane_rows(dst, rows, cols)
            np.copyto(target, _plane_rows(src, rows, cols))
            targets.append(target)
        if picture is None:
            return out
        while len(self._converters) < len(boxes):
            self._converters.append(VideoReformatter())
        for box, converter in zip(boxes, self._converters, strict=False):
            y0, y1, x0, x1 = _grown(box, height, width)
            patch = converter.reformat(rgb_frame(picture[y0:y1, x0:x1]), format="yuv420p")
            rows, cols = y1 - y0, x1 - x0
            np.copyto(targets[0][y0:y1, x0:x1], _plane_rows(patch.planes[0], rows, cols))
            for i in (1, 2):
                chroma = _plane_rows(patch.planes[i], rows // 2, cols // 2)
                np.copyto(targets[i][y0 // 2 : y1 // 2, x0 // 2 : x1 // 2], chroma)
        return out
