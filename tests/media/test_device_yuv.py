"""4:2:0 made in torch (for GPU pictures) gives the planes swscale gives, and the viewer sees the
same picture whichever path encoded it."""

from __future__ import annotations

import av
import numpy as np
import pytest
import skimage.data
import torch

from agecast.media.avframe import rgb_frame
from agecast.media.device_yuv import yuv420_frame, yuv420_planes
from agecast.media.encoder import H264Encoder


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """A real photo with an odd size (cut to even by both paths)."""
    return torch.from_numpy(np.ascontiguousarray(skimage.data.astronaut()[:301, :403]))  # type: ignore[no-untyped-call]


def _swscale_planes(picture: torch.Tensor) -> list[np.ndarray]:
    frame = rgb_frame(picture.numpy()).reformat(format="yuv420p")
    return [frame.to_ndarray()[: frame.height], *_chroma(frame)]


def _chroma(frame: av.VideoFrame) -> list[np.ndarray]:
    whole = frame.to_ndarray()  # (h·3/2, w): Y, then U and V rows of w/2 packed two per row
    h, w = frame.height, frame.width
    rest = whole[h:].reshape(-1)
    quarter = (h // 2) * (w // 2)
    return [rest[:quarter].reshape(h // 2, w // 2), rest[quarter:].reshape(h // 2, w // 2)]


def _ours(picture: torch.Tensor) -> list[np.ndarray]:
    h, w = picture.shape[0] // 2 * 2, picture.shape[1] // 2 * 2
    flat = yuv420_planes(picture).numpy()
    y = flat[: h * w].reshape(h, w)
    q = (h // 2) * (w // 2)
    return [
        y,
        flat[h * w : h * w + q].reshape(h // 2, w // 2),
        flat[h * w + q :].reshape(h // 2, w // 2),
    ]


def test_luma_matches_swscale_within_one_level(photo: torch.Tensor) -> None:
    ours, theirs = _ours(photo), _swscale_planes(photo)
    assert ours[0].shape == theirs[0].shape == (300, 402)
    assert int(np.abs(ours[0].astype(int) - theirs[0]).max()) <= 1


def test_chroma_matches_swscale_closely(photo: torch.Tensor) -> None:
    ours, theirs = _ours(photo), _swscale_planes(photo)
    for a, b in zip(ours[1:], theirs[1:], strict=True):
        diff = np.abs(a.astype(int) - b)
        assert diff.mean() < 0.5 and diff.max() <= 8  # chroma siting differs at sharp edges


def test_planes_become_a_frame_that_converts_back_to_the_photo(photo: torch.Tensor) -> None:
    frame = yuv420_frame(yuv420_planes(photo).numpy(), 402, 300)
    back = frame.reformat(format="rgb24").to_ndarray().astype(float)
    error = back - photo[:300, :402].numpy()
    psnr = 10 * np.log10(255**2 / float((error**2).mean()))
    assert psnr > 30  # 4:2:0 loses chroma detail; a wrong matrix or range would be far below
    with pytest.raises(ValueError, match="4:2:0"):
        yuv420_frame(np.zeros(10, np.uint8), 402, 300)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_gpu_picture_comes_down_once_as_planes_and_decodes_like_the_host_one(
    photo: torch.Tensor,
) -> None:
    downloads: list[int] = []
    gpu = H264Encoder(30.0, codec="libx264").encode(photo.cuda(), on_download=downloads.append)
    host = H264Encoder(30.0, codec="libx264").encode(photo)
    assert downloads == [300 * 402 * 3 // 2]
    decoded = []
    for data in (gpu.data, host.data):
        codec = av.CodecContext.create("h264", "r")
        frames = codec.decode(av.Packet(data)) + codec.decode(None)
        decoded.append(frames[0].reformat(format="rgb24").to_ndarray().astype(float))
    error = decoded[0] - decoded[1]
    assert 10 * np.log10(255**2 / max(1e-9, float((error**2).mean()))) > 40
