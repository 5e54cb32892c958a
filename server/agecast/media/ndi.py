"""NDI on the set LAN: find sources, receive one, publish pictures as a named source.

Through ``cyndilib``, whose wheel bundles the NDI runtime (nothing else to install); this is the
one module that imports it. NDI finds sources by mDNS; where the set LAN (or a container)
carries no multicast, :func:`configure` names the machines to ask directly (NDI's "extra IPs"),
which is also how the tests find a sender on 127.0.0.1.

Pictures are 8-bit RGB in and out (NDI's RGBA/RGBX with the alpha set opaque). A received
frame keeps the sender's timecode (NDI's 100 ns units, as POSIX seconds).

cyndilib's blocking calls hold Python's GIL while they wait: ``Receiver.receive(type,
timeout)`` and the thread ``Finder.open()`` starts (``wait_for_sources``) froze every other
thread of the process — the live pipeline stalled for a second at a time — and ``receive``
with no timeout returned nothing at all here. So nothing here waits inside cyndilib:
discovery polls the source list, and receiving polls NDI's frame sync (which answers at once
with the newest picture; a picture is new when its timestamp is), sleeping in Python, which
lets the GIL go, between polls. Sending releases the GIL itself.
"""

from __future__ import annotations

import ctypes
import functools
import json
import logging
import os
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from agecast.errors import SourceError, SourceLost

log = logging.getLogger(__name__)

INSTALL_HINT = "NDI needs the cyndilib package (pip install cyndilib: it bundles the NDI runtime)"
CONFIG_ENV = "NDI_CONFIG_DIR"
CONFIG_NAME = "ndi-config.v1.json"
# Between polls of a receiver with nothing new (s): at most this much latency is added.
RECEIVE_POLL_S = 0.002
# Between polls of the source list (s).
FIND_POLL_S = 0.1
SYNTHESIZE = 2**63 - 1  # NDIlib_send_timecode_synthesize: NDI makes up the frame's timecode


def _lib() -> Any:
    try:
        import cyndilib
        import cyndilib.finder
        import cyndilib.sender
    except ImportError as exc:
        raise SourceError(INSTALL_HINT) from exc
    return cyndilib


def missing() -> str | None:
    """Why NDI cannot run here (None: it can)."""
    try:
        _lib()
    except SourceError as exc:
        return str(exc)
    return None


def configure(extra_ips: list[str], folder: Path) -> Path | None:
    """Have the NDI runtime also look for sources on ``extra_ips`` (machines or 127.0.0.1),
    through a config written in ``folder``; returns its folder, or None when there is nothing
    to add or the user points ``NDI_CONFIG_DIR`` at their own config (theirs wins). Call it
    before anything else here: the runtime reads its config once, when it starts."""
    if not extra_ips:
        return None
    if os.environ.get(CONFIG_ENV) and Path(os.environ[CONFIG_ENV]) != folder:
        log.info("NDI: using the config in %s=%s", CONFIG_ENV, os.environ[CONFIG_ENV])
        return None
    folder.mkdir(parents=True, exist_ok=True)
    config = {"ndi": {"networks": {"ips": ",".join(extra_ips)}}}
    (folder / CONFIG_NAME).write_text(json.dumps(config, indent=1) + "\n")
    os.environ[CONFIG_ENV] = str(folder)
    log.info("NDI: looking for sources on %s too", ", ".join(extra_ips))
    return folder


def _sources(finder: Any, timeout_s: float, wanted: str | None = None) -> list[str]:
    """The source names ``finder`` knows after ``timeout_s`` (or as soon as ``wanted`` is one);
    polled, never waiting inside the library (module docstring)."""
    deadline = time.monotonic() + timeout_s
    while True:
        finder.update_sources()
        names: list[str] = finder.get_source_names()
        if wanted is not None and any(matches(wanted, n) for n in names):
            return names
        if time.monotonic() >= deadline:
            return names
        time.sleep(FIND_POLL_S)


def find(timeout_s: float = 2.0) -> list[str]:
    """The NDI sources seen within ``timeout_s`` ("MACHINE (NAME)"), sorted."""
    finder = _lib().finder.Finder()  # not opened: no thread of its own holding the GIL
    return sorted(_sources(finder, timeout_s))


def matches(wanted: str, seen: str) -> bool:
    """``wanted`` names ``seen``: the full "MACHINE (NAME)", or just NAME."""
    return seen == wanted or (seen.endswith(f"({wanted})") and " (" in seen)


@dataclass(frozen=True, slots=True)
class Received:
    rgb: np.ndarray  # HxWx3 uint8
    timecode_s: float  # the sender's timecode, POSIX seconds


class NdiReceiver:
    """One connection to the NDI source ``name``: raises :class:`SourceError` from the
    constructor when it is not found within ``open_timeout_s``, :class:`SourceLost` from
    :meth:`next` when no picture comes for ``read_timeout_s``."""

    def __init__(self, name: str, *, open_timeout_s: float, read_timeout_s: float) -> None:
        lib = _lib()
        from cyndilib.receiver import Receiver
        from cyndilib.video_frame import VideoFrameSync
        from cyndilib.wrapper.ndi_recv import RecvBandwidth, RecvColorFormat

        self.name = name
        self._read_timeout_s = read_timeout_s
        self._finder = lib.finder.Finder()  # not opened (module docstring)
        seen = _sources(self._finder, open_timeout_s, name)
        found = next((s for s in seen if matches(name, s)), None)
        if found is None:
            raise SourceError(
                f"NDI source {name!r} not found in {open_timeout_s:g} s (seen: "
                f"{', '.join(seen) or 'none'}): check the sender is on and on this network "
                "('agecast sources ndi' lists what this machine sees; across subnets name the "
                "sender's machine in the ndi_extra_ips setting)"
            )
        self._receiver = Receiver(
            color_format=RecvColorFormat.RGBX_RGBA,
            bandwidth=RecvBandwidth.highest,
            recv_name="agecast",
        )
        self._frame = VideoFrameSync()
        self._receiver.frame_sync.set_video_frame(self._frame)
        self._receiver.set_source(self._finder.get_source(found))
        self._last: tuple[float, float] | None = None
        self.fps = 0.0

    def next(self) -> Received:
        """The next picture; :class:`SourceLost` after ``read_timeout_s`` with none."""
        deadline = time.monotonic() + self._read_timeout_s
        sync, frame = self._receiver.frame_sync, self._frame
        while time.monotonic() < deadline:
            sync.capture_video()
            width, height = frame.get_resolution()
            stamp = (frame.get_timestamp_posix(), frame.get_timecode_posix())
            if width <= 0 or height <= 0 or stamp == self._last:
                time.sleep(RECEIVE_POLL_S)  # nothing new: the frame sync repeats its last
                continue
            self._last = stamp
            rate = frame.get_frame_rate()
            self.fps = float(rate) if rate else self.fps
            stride = frame.get_line_stride()
            rows = np.asarray(frame.get_array())[: stride * height].reshape(height, stride)
            rgb = rows[:, : width * 4].reshape(height, width, 4)[:, :, :3]
            return Received(np.ascontiguousarray(rgb), stamp[1])
        raise SourceLost(f"NDI source {self.name!r} sent no picture for {self._read_timeout_s:g} s")

    def performance(self) -> dict[str, int]:
        """NDI's own count of the video frames this connection received and dropped."""
        video = self._receiver.get_performance_data()["video"]
        return {"frames": int(video["frames_total"]), "dropped": int(video["frames_dropped"])}

    def close(self) -> None:
        self._receiver.disconnect()


_C_TYPES: dict[str, Any] = {
    "int": ctypes.c_int,
    "int64": ctypes.c_int64,
    "float": ctypes.c_float,
    "bool": ctypes.c_bool,
    "ptr": ctypes.c_void_p,
    "str": ctypes.c_char_p,
}


def _c_struct(name: str, fields: str) -> type[ctypes.Structure]:
    """A ctypes structure from ``"field:type …"`` in the C header's order."""
    pairs = [field.split(":") for field in fields.split()]
    return type(name, (ctypes.Structure,), {"_fields_": [(f, _C_TYPES[t]) for f, t in pairs]})


# the NDI SDK's structures, as Processing.NDI.Send.h and Processing.NDI.structs.h declare them
_SendCreate = _c_struct(
    "NDIlib_send_create_t", "p_ndi_name:str p_groups:str clock_video:bool clock_audio:bool"
)
_VideoFrame = _c_struct(
    "NDIlib_video_frame_v2_t",
    "xres:int yres:int FourCC:int frame_rate_N:int frame_rate_D:int picture_aspect_ratio:float "
    "frame_format_type:int timecode:int64 p_data:ptr line_stride_in_bytes:int p_metadata:str "
    "timestamp:int64",
)
FOURCC_RGBA = int.from_bytes(b"RGBA", "little")  # NDI_LIB_FOURCC('R', 'G', 'B', 'A')
PROGRESSIVE = 1  # NDIlib_frame_format_type_progressive


@functools.cache
def _runtime() -> ctypes.CDLL:
    """The NDI runtime library that cyndilib's wheel bundles, for the calls cyndilib does not
    offer (sending a frame with its own timecode); the same library its modules load."""
    lib = _lib()
    folder = Path(lib.__file__).parent.parent / "cyndilib.libs"
    found = sorted(folder.glob("libndi*.so*"))
    if not found:
        raise SourceError(f"the NDI runtime is not in {folder}: reinstall cyndilib")
    ndi = ctypes.CDLL(str(found[0]))
    ndi.NDIlib_initialize.restype = ctypes.c_bool
    ndi.NDIlib_send_create.argtypes = [ctypes.POINTER(_SendCreate)]
    ndi.NDIlib_send_create.restype = ctypes.c_void_p
    ndi.NDIlib_send_destroy.argtypes = [ctypes.c_void_p]
    ndi.NDIlib_send_send_video_v2.argtypes = [ctypes.c_void_p, ctypes.POINTER(_VideoFrame)]
    ndi.NDIlib_send_get_no_connections.argtypes = [ctypes.c_void_p, ctypes.c_uint32]
    ndi.NDIlib_send_get_no_connections.restype = ctypes.c_int
    if not ndi.NDIlib_initialize():
        raise SourceError("the NDI runtime would not start on this CPU (it needs SSE4.2)")
    return ndi


class NdiSender:
    """Publishes pictures as the NDI source ``name`` (HxWx3 uint8 RGB, any size). Each picture
    goes out with the timecode and metadata (XML) it is given: agecast gives every output of a
    camera the same ones for the same frame, so receivers can line them up.

    Through the NDI runtime's own C API (ctypes, which lets the GIL go during the call):
    cyndilib's sender cannot set a frame's timecode. The call returns once NDI has the picture.
    """

    def __init__(self, name: str, fps: float) -> None:
        self.name = name
        self._ndi = _runtime()
        rate = Fraction(round(fps * 1000), 1000).limit_denominator(1001)
        self._rate = (rate.numerator, rate.denominator)
        self._name = name.encode()  # kept alive: NDI reads it during create
        create = _SendCreate(self._name, None, False, False)  # not clocked: the source paces us
        self._instance = self._ndi.NDIlib_send_create(ctypes.byref(create))
        if not self._instance:
            raise SourceError(f"NDI could not create the source {name!r}")
        self._rgba: np.ndarray | None = None

    def send(
        self, rgb: np.ndarray, *, timecode_100ns: int | None = None, metadata: str | None = None
    ) -> None:
        """Send one picture (``timecode_100ns`` None: NDI makes one up from its clock)."""
        height, width = rgb.shape[0], rgb.shape[1]
        if self._rgba is None or self._rgba.shape[:2] != (height, width):
            self._rgba = np.empty((height, width, 4), np.uint8)
        # OpenCV's vectorised RGB → RGBA (alpha 255): 0.13 ms at 720p, where numpy's strided
        # copy took 2.7 ms, more than NDI's own work on the picture
        cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2RGBA, dst=self._rgba)
        frame = _VideoFrame(
            xres=width,
            yres=height,
            FourCC=FOURCC_RGBA,
            frame_rate_N=self._rate[0],
            frame_rate_D=self._rate[1],
            picture_aspect_ratio=0.0,
            frame_format_type=PROGRESSIVE,
            timecode=SYNTHESIZE if timecode_100ns is None else timecode_100ns,
            p_data=self._rgba.ctypes.data,
            line_stride_in_bytes=width * 4,
            p_metadata=metadata.encode() if metadata is not None else None,
            timestamp=0,
        )
        self._ndi.NDIlib_send_send_video_v2(self._instance, ctypes.byref(frame))

    def connections(self) -> int:
        """Receivers connected now."""
        return int(self._ndi.NDIlib_send_get_no_connections(self._instance, 0))

    def close(self) -> None:
        if self._instance:
            self._ndi.NDIlib_send_destroy(self._instance)
            self._instance = None
