"""The frame record that travels through every stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from enum import StrEnum

import torch


@dataclass(frozen=True, slots=True)
class Frame:
    """One picture from a source.

    ``image`` is HWC uint8 RGB on the pipeline's device. ``capture_ns`` is ``time.monotonic_ns()``
    when the source delivered the frame (latency is measured from it); ``wall_ns`` is
    ``time.time_ns()`` at the same moment (for timecode and the browser's clock). ``yuv`` is the
    source's decoded picture before RGB conversion, when it decodes one: the recorder keeps it
    as the raw take instead of converting ``image`` back.
    """

    index: int
    image: torch.Tensor
    capture_ns: int
    wall_ns: int
    pts_s: float | None = None
    yuv: object | None = None  # the decoded 4:2:0 picture (an av.VideoFrame) where there is one
    replayed: Replayed | None = None  # a re-render's frame: what the take recorded for it

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True, slots=True)
class Replayed:
    """What a take recorded at one of its frames, for a re-render to do again: its faces
    (None: none were recorded, find them), the look changes and the identity switched to there
    (those the re-render overrides left out)."""

    faces: list[FaceBox] | None
    look: dict[str, object]
    identity: str | None = None


class FxState(StrEnum):
    """What the FX did with a picture, in the one set of names the status, the wire header and
    the page use (``monitor_ui/protocol.js`` ``FX_STATES``, ``overlay.js`` ``FX_TEXT``). The
    order is the wire: a state's :attr:`code` is its place here, the header's fx byte."""

    ON = "on"  # a face was replaced
    NO_FACE = "no face"  # running, nothing to replace in this frame
    BYPASS = "bypass"  # the operator switched FX off
    ERROR = "error"  # a stage failed; the aged side shows the raw frame
    NO_SIGNAL = "no signal"  # no pictures from the source: the live service says so, FX never

    @property
    def code(self) -> int:
        """The byte the monitor wire header carries for this state."""
        return _FX_WIRE.index(self)

    @classmethod
    def from_code(cls, code: int) -> FxState:
        """The state a wire header's fx byte names; ValueError for a byte no state has."""
        if not 0 <= code < len(_FX_WIRE):
            raise ValueError(f"fx state {code} is not one of 0–{len(_FX_WIRE) - 1}")
        return _FX_WIRE[code]


_FX_WIRE = tuple(FxState)
FX_RESULTS = tuple(s for s in FxState if s is not FxState.NO_SIGNAL)  # what FX gives a frame


def stamp_now() -> tuple[int, int]:
    """(monotonic ns, wall-clock ns) taken together."""
    return time.monotonic_ns(), time.time_ns()


@dataclass(slots=True)
class FaceBox:
    """A detected face in frame pixels: box (x1, y1, x2, y2), score, landmarks5 (5×2)."""

    box: torch.Tensor
    score: float
    landmarks5: torch.Tensor
    track_id: int = -1
    extras: dict[str, object] = field(default_factory=dict)

    @property
    def area(self) -> float:
        x1, y1, x2, y2 = (float(v) for v in self.box)
        return max(0.0, x2 - x1) * max(0.0, y2 - y1)
