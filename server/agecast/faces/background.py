"""Running the face detector on its own thread, one frame at a time.

The device thread hands a frame over and keeps going (it follows faces by optical flow
meanwhile); the detections come back a frame or two later, tagged with the frame they belong
to, and the tracker corrects its tracks with them. Detection then costs the per-frame path
nothing but the hand-over.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass

import torch

from agecast.faces.detector import FaceDetector
from agecast.frames import FaceBox

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Detected:
    frame: int  # the tracker's frame number the detections belong to
    image: torch.Tensor
    faces: list[FaceBox]


class BackgroundDetector:
    """One job at a time: :meth:`submit` when :attr:`idle`, :meth:`poll` for the result.

    The detector is only ever used by this thread while a job runs; :meth:`wait` lets the
    owner take it back (for a synchronous detection) without two threads sharing it.
    """

    def __init__(self, detector: FaceDetector) -> None:
        self.detector = detector
        self._cond = threading.Condition()
        self._job: tuple[int, torch.Tensor] | None = None
        self._result: Detected | None = None
        self._busy = False
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="agecast-detect", daemon=True)
        self._thread.start()

    @property
    def idle(self) -> bool:
        with self._cond:
            return not self._busy

    def submit(self, frame: int, image: torch.Tensor) -> None:
        with self._cond:
            if self._busy:
                raise RuntimeError("detector busy: submit only when idle")
            self._job = (frame, image)
            self._busy = True
            self._cond.notify_all()

    def poll(self) -> Detected | None:
        """The finished result, once (None if none is ready)."""
        with self._cond:
            result, self._result = self._result, None
            return result

    def wait(self) -> Detected | None:
        """Block until no job is running; returns its result if it was not polled yet."""
        with self._cond:
            self._cond.wait_for(lambda: not self._busy or self._closed)
            result, self._result = self._result, None
            return result

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        # a detection still inside onnxruntime while the process exits aborts it (SIGABRT)
        if self._thread is not threading.current_thread():
            self._thread.join(timeout=2.0)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._closed)
                if self._closed:
                    return
                assert self._job is not None
                frame, image = self._job
                self._job = None
            try:
                faces = self.detector.detect(image)
            except Exception:  # the device thread falls back to detecting itself
                log.exception("background face detection failed on frame %d", frame)
                faces = []
            with self._cond:
                self._result = Detected(frame, image, faces)
                self._busy = False
                self._cond.notify_all()
