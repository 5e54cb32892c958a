"""RTP packetization of H.264 (RFC 6184 mode 1): what a depacketizer gets back is the picture."""

from __future__ import annotations

import os
import socket

import pytest

from agecast.media.rtsp import nal_units, rtp_clock, rtp_payloads


def _annexb(*nals: bytes) -> bytes:
    return b"".join(
        (b"\x00\x00\x00\x01" if k == 0 else b"\x00\x00\x01") + n for k, n in enumerate(nals)
    )


def _depacketize(payloads: list[bytes]) -> list[bytes]:
    """What a receiver rebuilds: single NAL units as they are, FU-A fragments joined."""
    nals: list[bytes] = []
    building: bytearray | None = None
    for p in payloads:
        if p[0] & 0x1F != 28:
            assert building is None, "a NAL unit inside a fragmented one"
            nals.append(p)
            continue
        start, end = bool(p[1] & 0x80), bool(p[1] & 0x40)
        if start:
            assert building is None
            building = bytearray([(p[0] & 0xE0) | (p[1] & 0x1F)])
        assert building is not None, "a fragment without its start"
        building += p[2:]
        if end:
            nals.append(bytes(building))
            building = None
    assert building is None, "a fragmented NAL unit never ended"
    return nals


def test_nal_units_of_annex_b_with_both_start_codes() -> None:
    sps, pps, idr = b"\x67\x42\xe0\x1f\xaa", b"\x68\xce\x3c\x80", b"\x65" + os.urandom(50)
    assert list(nal_units(_annexb(sps, pps, idr))) == [sps, pps, idr]


def test_large_units_are_fragmented_and_come_back_whole() -> None:
    small, big = b"\x41" + os.urandom(100), b"\x65" + os.urandom(5000)
    payloads = list(rtp_payloads([small, big], max_payload=1400))
    assert all(len(p) <= 1400 for p in payloads)
    assert len(payloads) == 1 + 4  # 4999 bytes of the big one in 1398-byte pieces
    assert payloads[1][0] & 0x60 == big[0] & 0x60  # the NRI kept
    assert _depacketize(payloads) == [small, big]


def test_the_clock_is_90_khz_of_capture_time() -> None:
    assert rtp_clock(1_000_000_000) == 90_000
    assert (rtp_clock(2_000_000_000) - rtp_clock(1_966_666_667)) == 3000  # a frame at 30 fps
    assert rtp_clock(10**20) < 2**32


def test_connections_are_capped_and_silent_ones_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    from agecast.media import rtsp

    monkeypatch.setattr(rtsp, "MAX_CONNECTIONS", 2)
    monkeypatch.setattr(rtsp, "HEAD_S", 1.5)

    class NoOne:
        def admit(self, token: str | None) -> rtsp.Admission | str:
            return "nobody may watch"

    server = rtsp.RtspServer(
        "127.0.0.1", 0, name="cam1", gate=NoOne(), fps=30, on_join=lambda: None
    )
    try:
        first, second = (socket.create_connection(("127.0.0.1", server.port)) for _ in range(2))
        # a refused token is answered, not hung up on
        second.sendall(b"DESCRIBE rtsp://127.0.0.1/cam1?token=x RTSP/1.0\r\nCSeq: 2\r\n\r\n")
        second.settimeout(5)
        reply = second.recv(4096).decode()
        assert reply.startswith("RTSP/1.0 403") and "nobody may watch" in reply
        third = socket.create_connection(("127.0.0.1", server.port))
        third.settimeout(2)
        assert third.recv(1) == b""  # closed as it was accepted: two are open
        first.settimeout(5)
        assert first.recv(1) == b""  # said nothing: closed after HEAD_S
        for s in (first, second, third):
            s.close()
    finally:
        server.close()
