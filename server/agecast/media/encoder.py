"""The live encoder: one H.264 encode serves every viewer (plus JPEG only while a viewer needs it).

libx264 ultrafast / zerolatency / baseline: no B-frames and no look-ahead, so a packet comes out
for every picture that goes in. Output is Annex-B with SPS/PPS in-band on every key frame, so a
viewer can join at any IDR. Colour is tagged BT.601 to match PyAV's RGB→YUV conversion.

Where CUDA is present (``codec="auto"``) the encoder first tries NVIDIA's ``h264_nvenc`` with
the same promises (p1 / ultra-low-latency, no B-frames, zero delay, IDR on request, headers
in-band) and takes the CPU off the encode; the picture still comes from host memory (PyAV hands
the encoder host frames), so a CUDA pipeline downloads each picture once — converted to 4:2:0 on
the GPU first (:mod:`agecast.media.device_yuv`), half the bytes of RGB and no CPU conversion.
If NVENC will not open (no NVIDIA driver, no free session) the reason is logged once and
libx264 is used.
"""

from __future__ import annotations

import io
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal, cast

import av
import torch
from PIL import Image

from agecast.media.avframe import BT601_X264, even_size, rgb_frame
from agecast.media.device_yuv import yuv420_frame, yuv420_planes

log = logging.getLogger(__name__)

EncoderName = Literal["auto", "nvenc", "libx264"]
_BT601 = 6  # AVCOL_*_SMPTE170M: PyAV converts RGB→YUV with BT.601 coefficients
_X264_PARAMS = f"{BT601_X264}:repeat-headers=1"


@dataclass(frozen=True, slots=True)
class EncodedPicture:
    data: bytes
    key: bool
    width: int
    height: int


def codec_string(sps_nal: bytes) -> str:
    """RFC 6381 ``avc1.PPCCLL`` from an SPS NAL unit (after the start code)."""
    return "avc1." + sps_nal[1:4].hex().upper()


def find_sps(annexb: bytes) -> bytes | None:
    """The first SPS NAL unit (type 7) in an Annex-B buffer, without its start code."""
    for chunk in annexb.split(b"\x00\x00\x01")[1:]:
        if chunk and chunk[0] & 0x1F == 7:
            return chunk.rstrip(b"\x00")
    return None


class H264Encoder:
    """Encodes HWC uint8 RGB pictures; reopens itself when the picture size changes."""

    def __init__(
        self, fps: float, *, keyint_s: float = 1.0, crf: int = 23, codec: EncoderName = "auto"
    ) -> None:
        """``codec``: ``auto`` (NVENC where CUDA is, else libx264), ``nvenc`` (tried first
        anywhere, libx264 if it will not open) or ``libx264``."""
        self.rate = Fraction(fps).limit_denominator(1001)
        self.keyint = max(1, round(fps * keyint_s))
        self.crf = crf
        self.codec: str | None = None  # RFC 6381 codec string, from the first key frame's SPS
        wants_nvenc = codec == "nvenc" or (codec == "auto" and torch.cuda.is_available())
        self._candidates = ["h264_nvenc", "libx264"] if wants_nvenc else ["libx264"]
        self.encoder_name = ""  # the FFmpeg encoder in use, once open
        self.fallback: str | None = None  # why NVENC was not used, when it was wanted
        self._ctx: av.VideoCodecContext | None = None
        self._size: tuple[int, int] = (0, 0)
        self._pts = 0
        self._force_key = threading.Event()

    @property
    def rate_fps(self) -> float:
        return float(self.rate)

    def request_key_frame(self) -> None:
        """Thread-safe: the next picture is encoded as an IDR (a viewer joined or lost sync)."""
        self._force_key.set()

    def _open(self, width: int, height: int) -> av.VideoCodecContext:
        while True:
            name = self._candidates[0]
            try:
                ctx = self._open_with(name, width, height)
            except (av.FFmpegError, ValueError) as exc:  # ValueError: unknown to this FFmpeg
                if len(self._candidates) == 1:
                    raise
                self.fallback = f"{name} did not open ({exc}); using libx264"
                log.warning("H.264 encoder: %s", self.fallback)
                self._candidates.pop(0)
                continue
            self.encoder_name = name
            log.info(
                "H.264 encoder open: %s %dx%d @ %s fps, key frame every %d",
                name, width, height, self.rate, self.keyint,
            )  # fmt: skip
            return ctx

    def _open_with(self, name: str, width: int, height: int) -> av.VideoCodecContext:
        ctx = cast(av.VideoCodecContext, av.CodecContext.create(name, "w"))
        ctx.width, ctx.height = width, height
        ctx.pix_fmt = "yuv420p"
        ctx.time_base = 1 / self.rate
        ctx.framerate = self.rate
        ctx.gop_size = self.keyint
        ctx.max_b_frames = 0
        if name == "h264_nvenc":
            ctx.options = {
                "preset": "p1",  # fastest
                "tune": "ull",  # ultra-low latency
                "zerolatency": "1",
                "delay": "0",  # a packet for every picture
                "bf": "0",
                "forced-idr": "1",  # a requested key frame is an IDR a viewer can join at
                "rc": "vbr",
                "cq": str(self.crf),
            }
            ctx.color_primaries = ctx.color_trc = ctx.colorspace = _BT601
        else:
            ctx.options = {
                "preset": "ultrafast",
                "tune": "zerolatency",
                "profile": "baseline",
                "crf": str(self.crf),
                "x264-params": f"{_X264_PARAMS}:keyint={self.keyint}:scenecut=0",
            }
        ctx.open()
        return ctx

    def encode(
        self, picture: torch.Tensor, *, on_download: Callable[[int], None] | None = None
    ) -> EncodedPicture:
        """Encode HWC uint8 RGB ``picture``. A GPU picture is converted to 4:2:0 on the GPU and
        comes down once as planes (``on_download`` is told the bytes); a host one is converted
        by swscale."""
        if picture.device.type != "cpu":
            height, width = picture.shape[0] // 2 * 2, picture.shape[1] // 2 * 2
            planes = yuv420_planes(picture).cpu()
            if on_download is not None:
                on_download(planes.numel())
            frame = yuv420_frame(planes.numpy(), width, height)
        else:
            array = picture.numpy()
            height, width = even_size(array)
            frame = None
        if (width, height) != self._size or self._ctx is None:
            self._ctx = self._open(width, height)
            self._size = (width, height)
            self._force_key.set()
        if frame is None:
            frame = rgb_frame(array).reformat(format="yuv420p")
        frame.pts = self._pts
        self._pts += 1
        if self._force_key.is_set():
            self._force_key.clear()
            frame.pict_type = av.video.frame.PictureType.I
        packets = self._ctx.encode(frame)
        data = b"".join(bytes(p) for p in packets)
        key = any(p.is_keyframe for p in packets)
        if key and self.codec is None:
            sps = find_sps(data)
            if sps is not None:
                self.codec = codec_string(sps)
        return EncodedPicture(data, key, width, height)


def encode_jpeg(picture: torch.Tensor, quality: int = 80) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(picture.cpu().numpy()).save(buffer, format="JPEG", quality=quality)
    return buffer.getvalue()
