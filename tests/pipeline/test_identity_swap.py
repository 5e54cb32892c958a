"""Swapping identities live, all day: each swap loads a model session; the replaced one must be
released (once no frame is using it), not kept until the process ends."""

from __future__ import annotations

import gc
import os
import threading
import time
from pathlib import Path

import onnxruntime

from agecast.frames import Frame
from agecast.identities import IdentityModel, resolve
from agecast.inference.base import Backend
from agecast.pipeline.fx import FaceFX, FxState
from agecast.settings import REPO_MODELS_DIR

from .conftest import astronaut_frame

SWAPS = 200
NAMES = ("demo-aged", "testpattern")  # a re-ageing and a face-swap package, both shipped


def _live_sessions() -> int:
    gc.collect()
    return sum(type(o) is onnxruntime.InferenceSession for o in gc.get_objects())


def _rss_mb() -> float:
    fields = Path("/proc/self/statm").read_text().split()
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE") / 1e6


class _FxThread(threading.Thread):
    """The pipeline's FX thread, reduced: one frame after another until stopped."""

    def __init__(self, fx: FaceFX) -> None:
        super().__init__(name="test-fx", daemon=True)
        self.fx = fx
        self.frames = 0
        self.states: set[FxState] = set()
        self.halt = threading.Event()
        self._image = astronaut_frame()

    def run(self) -> None:
        while not self.halt.is_set():
            frame = Frame(self.frames, self._image, time.monotonic_ns(), time.time_ns())
            self.states.add(self.fx.process(frame).fx)
            self.frames += 1

    def next_frame(self) -> None:
        """Wait until a frame started after this call has been processed."""
        start = self.frames
        deadline = time.monotonic() + 60
        while self.frames < start + 2 and self.is_alive() and time.monotonic() < deadline:
            time.sleep(0.001)
        assert self.is_alive() and self.frames >= start + 2, "the FX thread stopped"


def _load(name: str, backend: Backend) -> IdentityModel:
    return IdentityModel.load(resolve(name, [REPO_MODELS_DIR]), backend)


def test_swapping_identities_200_times_keeps_sessions_and_memory_flat(
    fx: FaceFX,
    backend: Backend,
) -> None:
    thread = _FxThread(fx)
    thread.start()
    # Outputs, a take being recorded or a status reader may still hold a replaced identity:
    # its session must be released anyway. Kept here for the whole run to show it is.
    replaced: list[IdentityModel] = []
    try:
        thread.next_frame()
        for i in range(20):  # warm-up: allocator arenas and caches reach their working size
            replaced.append(fx.identity)
            fx.set_identity(_load(NAMES[i % 2], backend))
        thread.next_frame()
        sessions, rss = _live_sessions(), _rss_mb()
        for i in range(SWAPS):
            replaced.append(fx.identity)
            fx.set_identity(_load(NAMES[i % 2], backend))  # lands mid-frame or between
            if i % 10 == 0:
                thread.next_frame()  # and frames run with each identity in turn
        thread.next_frame()
        grown_sessions, grown_mb = _live_sessions() - sessions, _rss_mb() - rss
    finally:
        thread.halt.set()
        thread.join(timeout=60)
    assert fx.errors == 0 and FxState.ERROR not in thread.states  # none closed mid-frame
    assert FxState.ON in thread.states  # the face was replaced: the identities did run
    # the detector's session and the current identity's: as before the swaps
    assert grown_sessions == 0, f"{grown_sessions} more onnxruntime sessions after {SWAPS} swaps"
    # a leaked session of these packages holds ≥ 2 MB: 200 of them would be ≥ 400 MB
    assert grown_mb < 80, f"RSS grew {grown_mb:.0f} MB over {SWAPS} swaps"
    fx.identity.close()


def test_an_identity_kept_by_its_caller_stays_open(fx: FaceFX, backend: Backend) -> None:
    """A re-render keeps every identity a take used and may switch back to one."""
    first, other = fx.identity, _load("demo-aged", backend)
    fx.set_identity(other, close_old=False)
    fx.set_identity(first, close_old=False)
    frame = Frame(0, astronaut_frame(), time.monotonic_ns(), time.time_ns())
    assert fx.process(frame).fx is FxState.ON
    fx.set_identity(other, close_old=False)
    assert fx.process(frame).fx is FxState.ON and fx.errors == 0
    other.close()
    first.close()


def test_a_replaced_identity_is_closed_at_once_when_no_frame_runs(
    fx: FaceFX, backend: Backend
) -> None:
    old = fx.identity
    before = _live_sessions()
    fx.set_identity(_load("demo-aged", backend))
    assert _live_sessions() == before  # one loaded, the replaced one released at once
    frame = Frame(0, astronaut_frame(), time.monotonic_ns(), time.time_ns())
    assert fx.process(frame).fx is FxState.ON
    assert old.manifest.id == "testpattern"  # what a take or the status still reads of it
    fx.identity.close()
