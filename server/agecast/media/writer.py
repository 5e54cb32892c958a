"""H.264 MP4 writer through PyAV (libx264), colour-tagged BT.601 to match PyAV's RGB→YUV."""

from __future__ import annotations

import logging
from fractions import Fraction
from pathlib import Path

import av
import torch

from agecast.errors import AgecastError
from agecast.media.avframe import BT601_X264, rgb_frame

log = logging.getLogger(__name__)


class Mp4Writer:
    """Writes HWC uint8 RGB pictures; the first picture fixes the size."""

    def __init__(self, path: Path, fps: float, *, crf: int = 18, preset: str = "veryfast") -> None:
        self.path = path
        self.rate = Fraction(fps).limit_denominator(1001)
        self.crf = crf
        self.preset = preset
        self.frames = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        path.parent.mkdir(parents=True, exist_ok=True)

    def _open(self, width: int, height: int) -> av.VideoStream:
        try:
            self._container = av.open(str(self.path), mode="w")
        except (OSError, av.FFmpegError) as exc:
            raise AgecastError(f"cannot write {self.path}: {exc}") from exc
        stream = self._container.add_stream("libx264", rate=self.rate)
        stream.width, stream.height = width, height
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(self.crf), "preset": self.preset, "x264-params": BT601_X264}
        return stream

    def write(self, picture: torch.Tensor) -> None:
        frame = rgb_frame(picture.cpu().numpy())  # cut to even sizes: yuv420p needs them
        if self._stream is None:
            self._stream = self._open(frame.width, frame.height)
        frame.pts = self.frames
        frame.time_base = 1 / self.rate
        assert self._container is not None
        self._container.mux(self._stream.encode(frame))
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        assert self._stream is not None
        self._container.mux(self._stream.encode(None))
        self._container.close()
        self._container = None
        log.debug("wrote %d frame(s) to %s", self.frames, self.path)
