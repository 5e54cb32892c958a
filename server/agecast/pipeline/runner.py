"""The running pipeline: a capture thread, a device thread, one-slot hand-offs between them.

capture (source.read) ─slot─▶ device thread (faces → infer → paste back → compose) ─slot─▶ consumer

In ``live`` mode the slots keep only the newest frame and count what they drop; in ``render``
mode they are lossless and every frame goes through. The consumer (encoder, file writer, bench)
takes :class:`Output` records from :attr:`Pipeline.out`.

A watchdog thread watches the device thread's heartbeat (:mod:`agecast.pipeline.watchdog`) and
``stats()["watchdog"]`` says whether a frame is stuck in it, where and for how long. A failure
outside the face stages (which fail open themselves) costs that frame, not the device thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import torch

from agecast.compose.layout import layout_canvas
from agecast.compose.lut import InputTransform
from agecast.compose.marks import Marker
from agecast.errors import AgecastError
from agecast.frames import FX_RESULTS, FaceBox, Frame, FxState
from agecast.identities.runtime import IdentityModel
from agecast.pipeline.fx import FaceFX, Look
from agecast.pipeline.metrics import Timings, percentiles
from agecast.pipeline.slot import Slot, SlotClosed
from agecast.pipeline.transfer import Copies, Uploader
from agecast.pipeline.watchdog import WATCHDOG_S, Watchdog
from agecast.settings import Layout
from agecast.sources import Source

log = logging.getLogger(__name__)


@dataclass(slots=True)
class Output:
    """One composed picture and everything the monitor needs to show and measure it."""

    index: int
    capture_ns: int
    wall_ns: int
    picture: torch.Tensor
    raw: torch.Tensor
    aged: torch.Tensor
    layout: Layout
    fx: FxState
    faces: int
    error: str | None
    ready_ns: int
    # what made the aged picture: the look and identity used and the faces replaced
    look: Look | None = None
    identity: IdentityModel | None = None
    face_boxes: list[FaceBox] = field(default_factory=list)
    pts_s: float | None = None
    raw_yuv: object | None = None  # the source's decoded picture of ``raw`` (Frame.yuv)

    @property
    def latency_ms(self) -> float:
        return (self.ready_ns - self.capture_ns) / 1e6


class Pipeline:
    def __init__(
        self,
        source: Source,
        fx: FaceFX,
        *,
        layout: Layout = "side-by-side",
        mode: Literal["live", "render"] = "live",
        device: torch.device | None = None,
        limit: int | None = None,
        watchdog_s: float = WATCHDOG_S,
        transform: InputTransform | None = None,
    ) -> None:
        """``limit``: stop reading the source after this many frames (None: until it ends);
        ``watchdog_s``: a frame in the device thread for longer than this is reported stalled;
        ``transform``: the camera's input transform (log → Rec.709), applied to each picture
        on the device before anything else sees it."""
        self.source = source
        self.fx = fx
        self.layout: Layout = layout
        self.mode = mode
        self.device = device or torch.device("cpu")
        slot_mode: Literal["latest", "lossless"] = "latest" if mode == "live" else "lossless"
        self._in: Slot[Frame] = Slot("capture→device", slot_mode)
        self.out: Slot[Output] = Slot("device→output", slot_mode)
        self.timings = Timings()
        self.copies = Copies()  # host↔device copies of pictures, for bench
        self.upload = Uploader(self.device, self.copies)
        self.transform = transform
        self.limit = limit
        self._marker = Marker()  # the device thread's own
        self.frames_in = 0
        self.frames_out = 0
        self.fx_counts: dict[str, int] = {state.value: 0 for state in FX_RESULTS}
        self.error: AgecastError | None = None
        self.watchdog = Watchdog("device thread", watchdog_s)
        self.device_errors = 0  # frames lost to a failure outside the face stages
        self._error_burst = 0
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watcher: threading.Thread | None = None
        self._started_ns = 0
        self._last_in_ns = 0
        self._last_out_ns = 0
        # Called on the device thread with each frame just before its face stages (the quality
        # command notes which frame its measuring tap is on).
        self.before_frame: Callable[[Frame], None] | None = None
        # Called on the capture thread with every frame the source delivers, before the live
        # hand-off may drop it (a take's recorder keeps them all); it must not block.
        self.tap: Callable[[Frame], object] | None = None
        # Called on the device thread before it takes the next frame: a take's recorder that
        # is falling behind waits here a little, so a saturated box gives the take the CPU and
        # the live path (which drops by design) the frames that are left.
        self.pause: Callable[[], object] | None = None

    # lifecycle -------------------------------------------------------------------------------
    def start(self) -> None:
        self.source.open()
        self._started_ns = time.monotonic_ns()
        self._threads = [
            threading.Thread(target=self._capture_loop, name="agecast-capture", daemon=True),
            threading.Thread(target=self._device_loop, name="agecast-device", daemon=True),
        ]
        for thread in self._threads:
            thread.start()
        self._watcher = threading.Thread(
            target=self.watchdog.watch,
            args=(self._stop, self._threads[1].is_alive),
            name="agecast-watchdog",
            daemon=True,
        )
        self._watcher.start()

    def stop(self) -> None:
        self._stop.set()
        self.source.close()
        self._in.close()
        self.out.close()
        for thread in self._threads:
            thread.join(timeout=5)
        if self._watcher is not None:
            self._watcher.join(timeout=1)

    def outputs(self, poll_s: float = 0.5) -> Iterator[Output | None]:
        """Outputs as they come, and None after ``poll_s`` without one (so a consumer can look
        at its clock); ends when the pipeline closes."""
        while True:
            try:
                yield self.out.get(timeout=poll_s)
            except SlotClosed:
                return

    def _device_alive(self) -> bool:
        return len(self._threads) > 1 and self._threads[1].is_alive()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    # threads ---------------------------------------------------------------------------------
    def _capture_loop(self) -> None:
        try:
            while not self._stop.is_set() and (self.limit is None or self.frames_in < self.limit):
                frame = self.source.read()
                if frame is None:
                    break
                self.frames_in += 1
                self._last_in_ns = frame.capture_ns
                tap = self.tap
                if tap is not None:
                    tap(frame)
                self._in.put(frame)
        except SlotClosed:
            pass
        except AgecastError as exc:
            log.error("source %s failed: %s", self.source.uri, exc)
            self.error = exc
        finally:
            self._in.close()

    def _device_loop(self) -> None:
        watchdog = self.watchdog
        try:
            while True:
                watchdog.idle()
                pause = self.pause
                if pause is not None:
                    pause()
                frame = self._in.get(timeout=0.5)
                if frame is None:
                    continue
                watchdog.begin(frame.index, "to device")
                output: Output | None
                try:
                    output = self._process(frame)
                except Exception as exc:  # the face stages fail open; this is everything else
                    output = self._failed(frame, exc)
                finally:
                    watchdog.end()
                if output is not None:
                    self.out.put(output)
        except SlotClosed:
            pass
        finally:
            self.out.close()

    def _failed(self, frame: Frame, exc: Exception) -> Output | None:
        """Count and log (once per burst) a frame the device thread could not finish; the raw
        frame flagged FX ERROR in its place where even that can be made."""
        self.device_errors += 1
        self._error_burst += 1
        if self._error_burst == 1:
            log.error("frame %d failed outside the face stages: %s", frame.index, exc, exc_info=exc)
        try:
            picture, _ = layout_canvas(frame.image, self.layout)
        except Exception:
            return None
        self.fx_counts[FxState.ERROR.value] += 1
        self.frames_out += 1
        self._last_out_ns = ready_ns = time.monotonic_ns()
        error = f"{type(exc).__name__}: {exc}"
        return Output(
            frame.index, frame.capture_ns, frame.wall_ns, picture, frame.image, frame.image,
            self.layout, FxState.ERROR, 0, error, ready_ns, self.fx.look, self.fx.identity,
            pts_s=frame.pts_s, raw_yuv=frame.yuv,
        )  # fmt: skip

    def _process(self, frame: Frame) -> Output:
        picked_ns = time.monotonic_ns()
        frame = replace(frame, image=self.upload(frame.image))  # once, pinned on CUDA
        if self.transform is not None:
            t0 = time.perf_counter_ns()
            frame = replace(frame, image=self.transform.apply(frame.image))
            self.timings.add("input_transform", (time.perf_counter_ns() - t0) / 1e6)
        self.watchdog.stage("compose")
        t0 = time.perf_counter_ns()
        layout = self.layout
        picture, canvas = layout_canvas(frame.image, layout)
        compose_ms = (time.perf_counter_ns() - t0) / 1e6
        self.watchdog.stage("fx")  # faces → align → infer → paste back
        if self.before_frame is not None:
            self.before_frame(frame)
        processed = self.fx.process(frame, canvas)
        self.watchdog.stage("mark")
        t0 = time.perf_counter_ns()
        if canvas is not None and processed.fx is FxState.ON and self.fx.look.ai_mark:
            self._marker.burn(canvas, "AI", "top-right")
        timings = dict(processed.timings)
        timings["compose"] = compose_ms + (time.perf_counter_ns() - t0) / 1e6
        timings["processing"] = sum(timings.values())
        timings["processing_excl_infer"] = timings["processing"] - timings.get("infer", 0.0)
        timings["wait"] = (picked_ns - frame.capture_ns) / 1e6
        ready_ns = time.monotonic_ns()
        timings["total"] = (ready_ns - frame.capture_ns) / 1e6
        self.timings.add_all(timings)
        self.fx_counts[processed.fx.value] += 1
        self.frames_out += 1
        self._last_out_ns = ready_ns
        if self._error_burst:
            log.info("device thread recovered after %d failed frame(s)", self._error_burst)
            self._error_burst = 0
        return Output(
            frame.index,
            frame.capture_ns,
            frame.wall_ns,
            picture,
            frame.image,
            processed.aged,
            layout,
            processed.fx,
            len(processed.faces),
            processed.error,
            ready_ns,
            processed.look,
            processed.identity,
            processed.faces,
            frame.pts_s,
            frame.yuv,
        )

    # reporting -------------------------------------------------------------------------------
    def reset_stats(self) -> None:
        """Forget counts and timings so far (after a warm-up)."""
        self.timings.clear()
        self.frames_in = self.frames_out = 0
        self.fx_counts = dict.fromkeys(self.fx_counts, 0)
        self._in.dropped = self.out.dropped = 0
        self.copies.reset()
        self._started_ns = time.monotonic_ns()

    def stats(self) -> dict[str, Any]:
        elapsed = max(1e-9, (time.monotonic_ns() - self._started_ns) / 1e9)
        summary = self.timings.summary()
        total = summary.pop("total", percentiles([]))
        return {
            "source": {"uri": self.source.uri, "state": str(self.source.state)},
            "mode": self.mode,
            "seconds": round(elapsed, 3),
            "frames_in": self.frames_in,
            "frames_out": self.frames_out,
            "fps_in": round(self.frames_in / elapsed, 2),
            "fps_out": round(self.frames_out / elapsed, 2),
            "dropped": {"capture→device": self._in.dropped, "device→output": self.out.dropped},
            # uploads by the device thread; downloads by consumers that count through to_host
            "copies": self.copies.per_frame(self.frames_out),
            "fx": dict(self.fx_counts),
            "fx_errors": self.fx.errors,
            "device_errors": self.device_errors,
            "watchdog": {**self.watchdog.report(), "alive": self._device_alive()},
            "stages_ms": summary,
            "frame_to_output_ms": total,
        }
