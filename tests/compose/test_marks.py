"""Burnt-in labels: only their rectangle changes, they read, they render once, regions hold."""

import time

import pytest
import torch

from agecast.compose.marks import CORNERS, Marker, Rect


def _grey(height: int = 720, width: int = 1280, value: int = 128) -> torch.Tensor:
    return torch.full((height, width, 3), value, dtype=torch.uint8)


def _changed(before: torch.Tensor, after: torch.Tensor) -> torch.Tensor:
    return (before != after).any(dim=2)


def _outside(mask: torch.Tensor, rect: Rect) -> torch.Tensor:
    outside = mask.clone()
    outside[rect.y0 : rect.y1, rect.x0 : rect.x1] = False
    return outside


@pytest.mark.parametrize("corner", CORNERS)
def test_only_the_tile_rectangle_changes(corner: str) -> None:
    marker = Marker()
    picture = torch.randint(0, 256, (720, 1280, 3), dtype=torch.uint8)
    before = picture.clone()
    rect = marker.burn(picture, "AI", corner)  # type: ignore[arg-type]
    changed = _changed(before, picture)
    assert changed.any() and not _outside(changed, rect).any()
    tile = marker.tile("AI", marker.size_for(720))
    assert (rect.y1 - rect.y0, rect.x1 - rect.x0) == tile.shape[:2]
    assert 0.02 * 720 <= tile.shape[0] <= 0.03 * 720  # readable but unobtrusive
    # in its corner, a small margin from the edges
    near_top, near_left = rect.y0 < 20, rect.x0 < 20
    assert near_top == corner.startswith("top") and near_left == corner.endswith("left")
    assert (720 - rect.y1 < 20) != near_top and (1280 - rect.x1 < 20) != near_left


def test_the_label_is_legible_on_light_and_dark_pictures() -> None:
    marker = Marker()
    tile = marker.tile("agecast 3F2A", 14)
    rgb, alpha = tile[:, :, :3].astype(int), tile[:, :, 3].astype(int)
    assert (rgb.min(axis=2) > 230).sum() > 20  # white glyph pixels
    assert ((rgb.max(axis=2) < 30) & (alpha > 100)).sum() > 100  # dark box around them
    for value in (0, 255):
        picture = _grey(value=value)
        rect = marker.burn(picture, "agecast 3F2A", "bottom-left")
        inside = picture[rect.y0 : rect.y1, rect.x0 : rect.x1].int()
        assert int(inside.max()) > 220 and int(inside.min()) < 130
        assert int(inside.max()) - int(inside.min()) > 100


def test_each_text_and_size_renders_once() -> None:
    marker = Marker()
    picture = _grey()
    first = picture.clone()
    marker.burn(first, "AI", "top-right")
    for _ in range(5):
        again = picture.clone()
        marker.burn(again, "AI", "top-right")
        assert torch.equal(again, first)
    assert marker.renders == 1
    marker.burn(picture, "FX OFF", "top-left")
    marker.burn(_grey(1080, 1920), "AI", "top-right")  # another size
    marker.burn(picture, "FX OFF", "bottom-left")
    assert marker.renders == 3


def test_region_holds_the_label_to_one_side() -> None:
    marker = Marker()
    picture = _grey(width=2560)  # raw | aged, side by side
    before = picture.clone()
    left = marker.burn(picture, "AI", "top-left", region=(1280, 2560))
    right = marker.burn(picture, "AI", "bottom-right", region=(1280, 2560))
    changed = _changed(before, picture)
    assert not changed[:, :1280].any()
    assert 1280 <= left.x0 < 1300 and 2540 < right.x1 <= 2560
    assert not _outside(_outside(changed, left), right).any()


def test_a_label_wider_than_its_region_is_clipped_to_it() -> None:
    marker = Marker()
    picture = _grey(64, 96)
    before = picture.clone()
    rect = marker.burn(picture, "a label far wider than this picture", "top-right", region=(40, 80))
    changed = _changed(before, picture)
    assert changed.any() and not changed[:, :40].any() and not changed[:, 80:].any()
    assert 40 <= rect.x0 < rect.x1 <= 80


def test_a_view_is_written_in_place() -> None:
    marker = Marker()
    picture = _grey(width=2560)
    aged = picture[:, 1280:]  # the aged canvas view the layout hands out
    marker.burn(aged, "AI", "top-left")
    assert _changed(_grey(width=2560), picture)[:, 1280:1320].any()


@pytest.mark.parametrize(
    ("picture", "kwargs", "needle"),
    [
        (torch.zeros(10, 10, 3), {}, "uint8"),
        (torch.zeros(10, 10, 4, dtype=torch.uint8), {}, "HWC"),
        (_grey(), {"region": (500, 400)}, "region"),
        (_grey(), {"region": (0, 2000)}, "region"),
        (_grey(), {"corner": "middle"}, "unknown corner"),
    ],
)
def test_bad_arguments_say_what_is_wrong(
    picture: torch.Tensor, kwargs: dict[str, object], needle: str
) -> None:
    args: dict[str, object] = {"corner": "top-left", **kwargs}
    with pytest.raises(ValueError, match=needle):
        Marker().burn(picture, "AI", **args)  # type: ignore[arg-type]


def test_burning_is_fast_on_one_core() -> None:
    marker = Marker()
    picture = _grey()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        marker.burn(picture, "agecast · take 12 · 3F2A-91C0", "bottom-left")
        times = []
        for _ in range(200):
            start = time.perf_counter()
            marker.burn(picture, "agecast · take 12 · 3F2A-91C0", "bottom-left")
            times.append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(threads)
    assert sorted(times)[len(times) // 2] < 0.3e-3


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    marker = Marker()
    cpu = torch.randint(0, 256, (720, 2560, 3), dtype=torch.uint8)
    gpu = cpu.cuda()
    for picture in (cpu, gpu):
        marker.burn(picture, "AI", "top-right", region=(1280, 2560))
        marker.burn(picture, "agecast 3F2A", "bottom-left")
    assert torch.equal(gpu.cpu(), cpu)
    assert marker.renders == 2
