"""The live H.264 encoder: NVENC where asked and present, else libx264 with the reason kept."""

from __future__ import annotations

import logging

import av
import pytest
import torch

from agecast.media.encoder import H264Encoder


def _picture(shade: int) -> torch.Tensor:
    picture = torch.full((96, 128, 3), shade, dtype=torch.uint8)
    picture[20:60, 30:90] = 255 - shade
    return picture


def _decodes(units: list[bytes]) -> int:
    """Pictures a decoder gets from these access units, each fed as one packet."""
    codec = av.CodecContext.create("h264", "r")
    return sum(len(codec.decode(av.Packet(u))) for u in units) + len(codec.decode(None))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the fallback where NVENC cannot open")
def test_nvenc_that_will_not_open_falls_back_to_libx264(caplog: pytest.LogCaptureFixture) -> None:
    encoder = H264Encoder(30.0, codec="nvenc")
    with caplog.at_level(logging.WARNING, logger="agecast.media.encoder"):
        first = encoder.encode(_picture(40))
    assert encoder.encoder_name == "libx264"
    assert encoder.fallback is not None and "h264_nvenc did not open" in encoder.fallback
    assert "h264_nvenc did not open" in caplog.text
    assert first.key and encoder.codec is not None and encoder.codec.startswith("avc1.")
    units = [first.data] + [encoder.encode(_picture(i)).data for i in range(50, 60)]
    assert _decodes(units) == 11  # a packet for every picture, all decodable


def test_auto_on_a_machine_without_cuda_uses_libx264_without_trying_nvenc() -> None:
    encoder = H264Encoder(30.0, codec="auto")
    encoder.encode(_picture(10))
    if torch.cuda.is_available():
        assert encoder.encoder_name in ("h264_nvenc", "libx264")
    else:
        assert encoder.encoder_name == "libx264" and encoder.fallback is None


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (and an NVENC GPU)")
def test_nvenc_on_a_gpu_gives_a_packet_per_picture_with_idr_on_request() -> None:
    encoder = H264Encoder(30.0, codec="nvenc")
    packets = [encoder.encode(_picture(i)) for i in range(10)]
    encoder.request_key_frame()
    packets.append(encoder.encode(_picture(99)))
    assert packets[0].key and packets[-1].key
    assert all(p.data for p in packets)
    assert _decodes([p.data for p in packets]) == 11
