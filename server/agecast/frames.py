"""The frame record that travels through every stage."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

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
