"""The monitor wire protocol: binary picture messages and JSON control messages.

``/ws/monitor`` carries, server → viewer:

* binary messages: a 40-byte little-endian header, then the payload (one H.264 Annex-B access
  unit, or one JPEG picture for viewers without WebCodecs)::

      offset size field
      0      4    magic b"AGC1"
      4      1    version (1)
      5      1    flags: bit0 key frame, bit1 JPEG payload, bit2 FX error on this frame
      6      1    layout: 0 side-by-side, 1 aged, 2 raw
      7      1    fx state: 0 on, 1 no face, 2 bypass, 3 error, 4 no signal (FxState.code)
      8      4    frame index (u32, wraps)
      12     8    capture wall clock, ns since the epoch (u64) — the server's clock
      20     8    server send wall clock, ns (u64)
      28     2    picture width (u16)
      30     2    picture height (u16)
      32     4    payload length (u32)
      36     4    reserved (0)

* text messages: JSON objects with a ``type``: ``hello`` (codec string, size, server clock),
  ``status`` (the same document as ``/api/status``), ``error`` (a malformed message was sent).

viewer → server (text, JSON): ``{"type": "stats", "glass_ms": [...], "frame": N}`` (painted
latencies measured in the page), ``{"type": "ping", "t": ms}`` → ``{"type": "pong", ...}``,
``{"type": "keyframe"}`` (the decoder lost sync; ask for an IDR).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from enum import IntEnum, IntFlag

from agecast.frames import FxState

MAGIC = b"AGC1"
VERSION = 1
_HEADER = struct.Struct("<4sBBBBIQQHHII")
HEADER_SIZE = _HEADER.size  # 40


class Flags(IntFlag):
    KEY = 1
    JPEG = 2
    FX_ERROR = 4


class LayoutCode(IntEnum):
    SIDE_BY_SIDE = 0
    AGED = 1
    RAW = 2


LAYOUT_CODES = {
    "side-by-side": LayoutCode.SIDE_BY_SIDE,
    "aged": LayoutCode.AGED,
    "raw": LayoutCode.RAW,
}


@dataclass(frozen=True, slots=True)
class PictureHeader:
    flags: Flags
    layout: LayoutCode
    fx: FxState
    index: int
    capture_wall_ns: int
    send_wall_ns: int
    width: int
    height: int
    length: int

    def pack(self) -> bytes:
        return _HEADER.pack(
            MAGIC,
            VERSION,
            int(self.flags),
            int(self.layout),
            self.fx.code,
            self.index & 0xFFFFFFFF,
            self.capture_wall_ns,
            self.send_wall_ns,
            self.width,
            self.height,
            self.length,
            0,
        )

    @classmethod
    def unpack(cls, data: bytes) -> PictureHeader:
        if len(data) < HEADER_SIZE:
            raise ValueError(f"picture message shorter than its {HEADER_SIZE}-byte header")
        magic, version, flags, layout, fx, index, cap, sent, w, h, length, _ = _HEADER.unpack_from(
            data
        )
        if magic != MAGIC or version != VERSION:
            raise ValueError(f"not an agecast v{VERSION} picture message")
        fx_state = FxState.from_code(fx)
        return cls(Flags(flags), LayoutCode(layout), fx_state, index, cap, sent, w, h, length)
