"""The bundled demo clip: a real face (the astronaut photo) swaying gently in front of a backdrop.

The clip is drawn and encoded on first use into the cache folder (``$AGECAST_CACHE_DIR`` or
``~/.cache/agecast``), atomically, under a versioned name: bump :data:`DEMO_VERSION` whenever the
pictures or the encoding change. :func:`demo_truth` gives, per frame, the affine that placed the
photo, so tests can carry hand-labelled astronaut landmarks into truth for any frame.
"""

from __future__ import annotations

import logging
import math
import os
import tempfile
import threading
import time
from pathlib import Path

import av
import numpy as np
import torch
import torch.nn.functional as F
from numpy.typing import NDArray

from agecast.errors import SourceError
from agecast.sources.astronaut import astronaut_rgb
from agecast.sources.av_source import FileSource

log = logging.getLogger(__name__)

DEMO_URI = "demo"
DEMO_VERSION = 1
DEMO_WIDTH = 1280
DEMO_HEIGHT = 720
DEMO_FPS = 30
DEMO_FRAMES = 300  # 10 s; every motion frequency is a multiple of 0.1 Hz, so the loop is seamless

_PHOTO_SIZE = 512
_REST_SCALE = 600.0 / _PHOTO_SIZE  # the photo is ~600 px tall in the frame
_REST_CENTRE = (650.0, 360.0)  # frame position of the photo's centre at rest
_PIVOT = (225.0, 215.0)  # photo point the head sways about: the base of the neck
_FEATHER_PX = 6.0  # soft edge of the photo over the backdrop

# AVCOL_PRI_SMPTE170M, AVCOL_TRC_SMPTE170M, AVCOL_SPC_SMPTE170M, AVCOL_RANGE_MPEG: BT.601 limited,
# what PyAV's RGB→YUV conversion produces.
_BT601 = 6
_LIMITED_RANGE = 1
_X264_OPTIONS = {"preset": "veryfast", "crf": "20", "tune": "film"}
_KEYINT = 30


def cache_dir() -> Path:
    """Where generated media is kept: ``$AGECAST_CACHE_DIR`` or ``~/.cache/agecast``."""
    configured = os.environ.get("AGECAST_CACHE_DIR")
    return Path(configured).expanduser() if configured else Path.home() / ".cache" / "agecast"


def _wave(t: float, *terms: tuple[float, float, float]) -> float:
    """Sum of ``amplitude · sin(2π · hz · t + phase)``."""
    return sum(a * math.sin(2.0 * math.pi * hz * t + phase) for a, hz, phase in terms)


def demo_truth(index: int) -> NDArray[np.float64]:
    """2×3 affine from astronaut-photo pixels to demo-frame pixels for frame ``index``.

    Pixel centres are integer coordinates in both. ``index`` may count past the clip's end (a
    looping source); the motion repeats every :data:`DEMO_FRAMES` frames.
    """
    t = (index % DEMO_FRAMES) / DEMO_FPS
    angle = math.radians(_wave(t, (2.6, 0.2, 0.0), (1.2, 0.5, 0.7)))  # sway, within ±4°
    scale = _REST_SCALE * (1.0 + _wave(t, (0.025, 0.1, 2.0)))  # leaning in and out
    dx = _wave(t, (14.0, 0.1, 0.3), (5.0, 0.4, 0.0))
    dy = _wave(t, (6.0, 0.3, 1.1), (3.0, 0.7, 0.0))  # nod
    linear = scale * np.array(
        [[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]]
    )
    centre = (_PHOTO_SIZE - 1) / 2.0
    pivot = np.array(_PIVOT)
    pivot_at_rest = np.array(_REST_CENTRE) + _REST_SCALE * (pivot - centre)
    offset = pivot_at_rest + np.array([dx, dy]) - linear @ pivot
    return np.hstack([linear, offset[:, None]])


def _backdrop() -> torch.Tensor:
    """A plain set-like backdrop: a warm wall darkening upwards, a floor, a soft vignette."""
    h, w = DEMO_HEIGHT, DEMO_WIDTH
    y = torch.linspace(0.0, 1.0, h)[:, None, None]
    x = torch.linspace(-1.0, 1.0, w)[None, :, None]
    wall_top = torch.tensor([78.0, 80.0, 86.0])
    wall_bottom = torch.tensor([150.0, 144.0, 134.0])
    picture = wall_top + (wall_bottom - wall_top) * y
    floor = y > 0.84
    picture = torch.where(floor, torch.tensor([96.0, 88.0, 80.0]) - 20.0 * (y - 0.84), picture)
    vignette = 1.0 - 0.18 * x**2
    return (picture * vignette).clamp(0.0, 255.0).expand(h, w, 3).contiguous()


def _photo_rgba() -> torch.Tensor:
    """The photo as 1×4×512×512 float with a feathered alpha edge."""
    rgb = torch.from_numpy(astronaut_rgb().astype(np.float32)).permute(2, 0, 1)
    ramp = torch.arange(_PHOTO_SIZE, dtype=torch.float32)
    edge = torch.minimum(ramp + 0.5, _PHOTO_SIZE - 0.5 - ramp) / _FEATHER_PX
    alpha = torch.minimum(edge[:, None], edge[None, :]).clamp(0.0, 1.0)
    return torch.cat([rgb, alpha[None]], dim=0)[None].contiguous()


class DemoRenderer:
    """Draws demo frames: the photo warped by :func:`demo_truth` over the backdrop."""

    def __init__(self) -> None:
        backdrop = _backdrop()
        self._backdrop_u8 = (backdrop + 0.5).to(torch.uint8)
        self._backdrop_chw = backdrop.permute(2, 0, 1).contiguous()
        self._photo = _photo_rgba()

    def render(self, index: int) -> NDArray[np.uint8]:
        """Frame ``index`` as HWC uint8 RGB."""
        affine = demo_truth(index)
        x0, y0, x1, y1 = self._footprint(affine)
        frame = self._backdrop_u8.clone()
        if x1 <= x0 or y1 <= y0:
            return frame.numpy()
        grid = F.affine_grid(
            self._roi_to_photo(affine, x0, y0, x1, y1), [1, 4, y1 - y0, x1 - x0], align_corners=True
        )
        warped = F.grid_sample(
            self._photo, grid, mode="bilinear", padding_mode="zeros", align_corners=True
        )[0]
        mixed = torch.lerp(self._backdrop_chw[:, y0:y1, x0:x1], warped[:3], warped[3:])
        frame[y0:y1, x0:x1] = (mixed.permute(1, 2, 0) + 0.5).clamp(0.0, 255.0).to(torch.uint8)
        return frame.numpy()

    @staticmethod
    def _roi_to_photo(
        affine: NDArray[np.float64], x0: int, y0: int, x1: int, y1: int
    ) -> torch.Tensor:
        """1×2×3 ``affine_grid`` theta: normalised region-of-interest → normalised photo."""
        w, h = x1 - x0, y1 - y0
        roi_pixels = np.array(
            [[(w - 1) / 2, 0, x0 + (w - 1) / 2], [0, (h - 1) / 2, y0 + (h - 1) / 2], [0, 0, 1]]
        )
        last = _PHOTO_SIZE - 1
        photo_normalised = np.array([[2 / last, 0, -1], [0, 2 / last, -1], [0, 0, 1]])
        frame_to_photo = np.linalg.inv(np.vstack([affine, [0.0, 0.0, 1.0]]))
        theta = (photo_normalised @ frame_to_photo @ roi_pixels)[:2]
        return torch.tensor(theta, dtype=torch.float32)[None]

    @staticmethod
    def _footprint(affine: NDArray[np.float64]) -> tuple[int, int, int, int]:
        """Frame pixels (x0, y0, x1, y1) the warped photo can touch, clipped to the frame."""
        last = _PHOTO_SIZE - 1
        corners = np.array([[0, 0, 1], [last, 0, 1], [0, last, 1], [last, last, 1]], dtype=float)
        placed = corners @ affine.T
        x0 = max(0, math.floor(placed[:, 0].min()) - 1)
        y0 = max(0, math.floor(placed[:, 1].min()) - 1)
        x1 = min(DEMO_WIDTH, math.ceil(placed[:, 0].max()) + 2)
        y1 = min(DEMO_HEIGHT, math.ceil(placed[:, 1].max()) + 2)
        return x0, y0, x1, y1


def write_demo_clip(path: Path) -> None:
    """Draw and encode the demo clip to ``path`` (written to a temporary name, then renamed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.stem}.", suffix=".mp4", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        _encode(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _encode(path: Path) -> None:
    # One torch thread: on a busy machine, torch's thread pool made drawing ten times slower
    # (140 ms vs 14 ms a frame on 2 shared cores). Process-wide, so restored right after.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        _encode_frames(path)
    finally:
        torch.set_num_threads(threads)


def _encode_frames(path: Path) -> None:
    renderer = DemoRenderer()
    # Single-threaded x264 with fixed settings: the same bytes on every run on this build.
    with av.open(str(path), mode="w", format="mp4", options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream("libx264", rate=DEMO_FPS, options=dict(_X264_OPTIONS))
        stream.width = DEMO_WIDTH
        stream.height = DEMO_HEIGHT
        stream.pix_fmt = "yuv420p"
        stream.gop_size = _KEYINT
        ctx = stream.codec_context
        ctx.thread_count = 1
        ctx.color_primaries = _BT601
        ctx.color_trc = _BT601
        ctx.colorspace = _BT601
        ctx.color_range = _LIMITED_RANGE
        for index in range(DEMO_FRAMES):
            picture = av.VideoFrame.from_ndarray(renderer.render(index), format="rgb24")
            picture = picture.reformat(format="yuv420p")
            picture.pts = index
            out.mux(stream.encode(picture))
        out.mux(stream.encode(None))


_generate_lock = threading.Lock()


def demo_clip_path() -> Path:
    """The demo clip in the cache folder, generated there first if it is not yet."""
    folder = cache_dir()
    path = folder / f"demo-v{DEMO_VERSION}-{DEMO_WIDTH}x{DEMO_HEIGHT}p{DEMO_FPS}.mp4"
    with _generate_lock:
        if path.is_file():
            return path
        log.info("generating the demo clip at %s (once; takes a few seconds)", path)
        started = time.monotonic()
        try:
            write_demo_clip(path)
        except OSError as exc:
            raise SourceError(
                f"cannot write the demo clip to {folder} ({exc}): set AGECAST_CACHE_DIR to a "
                "writable folder"
            ) from exc
        log.info("demo clip ready in %.1f s", time.monotonic() - started)
    return path


class DemoSource(FileSource):
    """The demo clip as a file source; it loops when live."""

    def __init__(self, *, live: bool, loop: bool) -> None:
        super().__init__(DEMO_URI, None, live=live, loop=loop)

    def _resolve_path(self) -> Path:
        return demo_clip_path()
