"""The program stream for hardware decoders and recorders: H.264 in MPEG-TS over UDP.

A set monitor with an IP input, a hardware decoder feeding an SDI monitor, or a recorder takes
``udp://HOST:PORT`` (unicast) or ``udp://239.x.y.z:PORT`` (multicast; ``?ttl=N`` to cross
routers). The pictures are the monitor's own low-latency H.264 (:class:`H264Encoder`: NVENC
where CUDA is, else libx264 ultrafast/zerolatency, baseline, no B-frames, SPS/PPS at every key
frame, one key frame a second) muxed by FFmpeg with no muxing delay: a decoder can join at any
key frame and each picture leaves as soon as it is encoded. Packets are 1316 bytes (7 TS
packets), the usual size for TS over UDP.
"""

from __future__ import annotations

import logging
from fractions import Fraction

import av
import torch

from agecast.errors import AgecastError
from agecast.media.encoder import EncodedPicture, H264Encoder
from agecast.redact import SourceURI, reveal

log = logging.getLogger(__name__)

TS_PACKET_BYTES = 1316


def program_url(url: str) -> str:
    """``url`` with the UDP packet size set, unless it sets its own."""
    if "pkt_size=" in url:
        return url
    return f"{url}{'&' if '?' in url else '?'}pkt_size={TS_PACKET_BYTES}"


class TsOutput:
    """Sends HWC uint8 RGB pictures to ``url`` (udp://) as H.264 in MPEG-TS."""

    def __init__(self, url: str, fps: float, *, crf: int = 23) -> None:
        if not reveal(url).startswith("udp://"):
            raise AgecastError(
                f"program out {SourceURI(url)}: give a udp://HOST:PORT address (unicast, or "
                "multicast such as udp://239.1.1.1:5000)"
            )
        self.url = url
        self.rate = Fraction(fps).limit_denominator(1001)
        self.encoder = H264Encoder(fps, crf=crf)
        self.sent_bytes = 0
        self._container: av.container.OutputContainer | None = None
        self._stream: av.VideoStream | None = None
        self._pts = 0

    def _open(self, width: int, height: int) -> None:
        try:
            container = av.open(
                program_url(reveal(self.url)),
                mode="w",
                format="mpegts",
                options={"max_delay": "0", "flush_packets": "1"},
            )
        except (OSError, av.FFmpegError) as exc:
            raise AgecastError(f"program out {SourceURI(self.url)} did not open: {exc}") from exc
        stream = container.add_stream("h264", rate=self.rate)
        stream.width, stream.height = width, height
        stream.time_base = 1 / self.rate
        self._container, self._stream = container, stream
        log.info("program out: H.264 %dx%d MPEG-TS to %s", width, height, SourceURI(self.url))

    def send(self, picture: torch.Tensor) -> EncodedPicture:
        """Encode ``picture`` and send it; the encoded picture (others may send it too)."""
        encoded = self.encoder.encode(picture)
        if encoded.data:
            self._mux(encoded)
        return encoded

    def _mux(self, encoded: EncodedPicture) -> None:
        if self._stream is None or (self._stream.width, self._stream.height) != (
            encoded.width,
            encoded.height,
        ):
            self.close()
            self.encoder.request_key_frame()
            if not encoded.key:  # a receiver must start at a key frame: begin with the next
                return
            self._open(encoded.width, encoded.height)
        assert self._container is not None and self._stream is not None
        packet = av.Packet(encoded.data)
        packet.stream = self._stream
        packet.pts = packet.dts = self._pts
        packet.time_base = 1 / self.rate
        packet.is_keyframe = encoded.key
        self._pts += 1
        self._container.mux(packet)
        self.sent_bytes += len(encoded.data)

    def close(self) -> None:
        if self._container is not None:
            self._container.close()
        self._container = self._stream = None
