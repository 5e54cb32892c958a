"""Host↔device copies: counted where they happen, none on a CPU pipeline, one upload per frame."""

from __future__ import annotations

import pytest
import torch

from agecast.pipeline.transfer import Copies, Uploader, same_device, to_host
from agecast.settings import Settings

from .conftest import render_outputs


def test_a_cpu_pipeline_copies_nothing() -> None:
    settings = Settings.load(source="testpattern:160x120@30", identity="testpattern", loop=False)
    built, outputs = render_outputs(settings, limit=5)
    assert len(outputs) == 5
    copies = built.pipeline.stats()["copies"]
    assert copies["frames"] == 5
    assert copies["h2d_per_frame"] == copies["d2h_per_frame"] == 0.0
    assert to_host(outputs[0].picture, built.pipeline.copies) is outputs[0].picture


def test_copies_are_counted_per_direction_and_frame() -> None:
    copies = Copies()
    picture = torch.zeros((120, 160, 3), dtype=torch.uint8)
    upload = Uploader(torch.device("meta"), copies)  # another device, without a GPU
    for _ in range(4):
        moved = upload(picture)
        assert moved.device.type == "meta"
        assert upload(moved) is moved  # already there: no copy
    copies.add("d2h", picture.numel())
    report = copies.per_frame(4)
    assert report["h2d_per_frame"] == 1.0 and report["d2h_per_frame"] == 0.25
    assert report["h2d_mb_per_frame"] == round(120 * 160 * 3 / 2**20, 3)
    with pytest.raises(ValueError, match="h2d or d2h"):
        copies.add("sideways", 1)
    copies.reset()
    assert copies.per_frame(1)["h2d_per_frame"] == 0.0


def test_cuda_and_cuda0_are_one_device() -> None:
    assert same_device(torch.device("cuda"), torch.device("cuda:0"))
    assert same_device(torch.device("cpu"), torch.device("cpu"))
    assert not same_device(torch.device("cuda:0"), torch.device("cuda:1"))
    assert not same_device(torch.device("cpu"), torch.device("cuda"))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_pinned_uploads_arrive_intact_and_reuse_the_ring() -> None:
    copies = Copies()
    upload = Uploader(torch.device("cuda"), copies, ring=2)
    frames = [torch.full((64, 96, 3), i, dtype=torch.uint8) for i in range(6)]
    moved = [upload(f) for f in frames]  # more frames than buffers: each waits for its turn
    torch.cuda.synchronize()
    for i, m in enumerate(moved):
        assert m.is_cuda and int(m.float().mean()) == i
    assert len(upload._staging) == 2 and all(s.buffer.is_pinned() for s in upload._staging)
    assert copies.per_frame(6)["h2d_per_frame"] == 1.0
    assert to_host(moved[3], copies).device.type == "cpu"
    assert copies.downloads == 1
