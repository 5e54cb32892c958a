"""Input transforms: a .cube 3D LUT or ARRI LogC3 turned into Rec.709 pictures, applied before
the faces and the model; bad LUT files named with their line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agecast.compose.lut import camera_transform, display_luts, load_transform, texture_bytes
from agecast.errors import SettingsError


def write_cube(path: Path, size: int, fn: object, header: str = "") -> Path:
    axis = np.linspace(0.0, 1.0, size)
    lines = [f'TITLE "test"\n{header}LUT_3D_SIZE {size}']
    for b in axis:  # red changes fastest, as .cube lists them
        for g in axis:
            for r in axis:
                out = fn(np.array([r, g, b]))  # type: ignore[operator]
                lines.append(" ".join(f"{v:.6f}" for v in out))
    path.write_text("\n".join(lines) + "\n")
    return path


def picture(seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (48, 64, 3), dtype=torch.uint8, generator=generator)


def test_an_identity_cube_changes_nothing(tmp_path: Path) -> None:
    transform = load_transform(str(write_cube(tmp_path / "id.cube", 17, lambda rgb: rgb)))
    image = picture()
    out = transform.apply(image)
    assert out.shape == image.shape and out.dtype == torch.uint8
    assert int((out.int() - image.int()).abs().max()) <= 1


def test_a_cube_maps_each_channel_where_it_says(tmp_path: Path) -> None:
    # a LUT that swaps red and blue and inverts green: its channel order must be kept
    cube = write_cube(tmp_path / "swap.cube", 9, lambda rgb: np.array([rgb[2], 1 - rgb[1], rgb[0]]))
    out = load_transform(str(cube)).apply(picture(1)).int()
    image = picture(1).int()
    assert int((out[..., 0] - image[..., 2]).abs().max()) <= 1
    assert int((out[..., 1] - (255 - image[..., 1])).abs().max()) <= 1
    assert int((out[..., 2] - image[..., 0]).abs().max()) <= 1


def test_logc3_puts_mid_grey_where_rec709_has_it() -> None:
    # LogC3 (EI 800) codes 18 % grey as 0.391007; Rec.709 shows it at 1.099 * 0.18^0.45 - 0.099
    grey = torch.full((4, 4, 3), round(0.391007 * 255), dtype=torch.uint8)
    out = load_transform("logc3").apply(grey)
    expected = (1.099 * 0.18**0.45 - 0.099) * 255
    assert abs(float(out.float().mean()) - expected) <= 1.5
    assert int(out.max()) - int(out.min()) <= 1  # grey stays grey (the matrix keeps white)
    black = load_transform("logc3").apply(torch.full((2, 2, 3), 24, dtype=torch.uint8))
    assert int(black.max()) <= 2  # LogC3's black (0.0928) is Rec.709 black


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("LUT_3D_SIZE 2\n0 0 0\n1 1 1\n", "2 entries for LUT_3D_SIZE 2"),
        ("LUT_1D_SIZE 2\n0 0 0\n1 1 1\n", "line 1 is a 1D LUT"),
        ("0 0 0\n", "LUT_3D_SIZE missing"),
        ("LUT_3D_SIZE 2\n" + "0 0 zero\n" * 8, "line 2"),
        ("DOMAIN_MAX 2 2 2\nLUT_3D_SIZE 2\n" + "0 0 0\n" * 8, "only LUTs over 0–1"),
    ],
)
def test_a_bad_cube_is_named_with_what_is_wrong(tmp_path: Path, text: str, needle: str) -> None:
    path = tmp_path / "bad.cube"
    path.write_text(text)
    with pytest.raises(SettingsError, match="bad.cube") as refused:
        load_transform(str(path))
    assert needle in str(refused.value)


def test_unknown_transforms_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="a .cube 3D LUT file or one of logc3"):
        load_transform("slog9")
    with pytest.raises(SettingsError, match="no such file"):
        load_transform(str(tmp_path / "missing.cube"))


def test_each_camera_gets_its_own() -> None:
    assert camera_transform("logc3", "A") == "logc3"
    assert camera_transform("A=logc3,B=/luts/show.cube", "B") == "/luts/show.cube"
    assert camera_transform("A=logc3,B=/luts/show.cube", "C") is None
    assert camera_transform(None, "A") is None


# --- display LUTs (the monitor's own view) -------------------------------------------------


def test_display_luts_are_named_after_the_entry_or_the_file(tmp_path: Path) -> None:
    show = write_cube(tmp_path / "show_v3.cube", 5, lambda rgb: rgb)
    luts = display_luts([f"Day look={show}", str(show), "logc3"])
    assert list(luts) == ["Day look", "show_v3", "logc3"]
    assert luts["logc3"].shape == (33, 33, 33, 3)


@pytest.mark.parametrize(
    ("entries", "needle"),
    [
        (["a=x.cube", "a=y.cube"], "no such file"),
        (["twice={cube}", "twice={cube}"], "used twice"),
        (["bad/name={cube}"], "must be 1–40 letters"),
        (["{cube}x"], ".cube 3D LUT file or one of logc3"),
    ],
)
def test_bad_display_luts_say_which_entry(tmp_path: Path, entries: list[str], needle: str) -> None:
    cube = write_cube(tmp_path / "c.cube", 3, lambda rgb: rgb)
    with pytest.raises(SettingsError, match="display_luts") as caught:
        display_luts([e.format(cube=cube) for e in entries])
    assert needle in str(caught.value)


def test_a_display_lut_goes_to_the_page_red_fastest(tmp_path: Path) -> None:
    # out = (1 - b, g, r): where each input channel lands shows the texel order the page uploads
    cube = write_cube(tmp_path / "t.cube", 3, lambda rgb: np.array([1 - rgb[2], rgb[1], rgb[0]]))
    data = np.frombuffer(texture_bytes(display_luts([str(cube)])["t"]), np.uint8)
    texels = data.reshape(3, 3, 3, 4)  # [b, g, r] as WebGL's depth, height, width
    assert (texels[..., 3] == 255).all()
    assert texels[0, 0, 2].tolist() == [255, 0, 255, 255]  # r=1, g=0, b=0 → (1, 0, 1)
    assert texels[2, 0, 0].tolist() == [0, 0, 0, 255]  # b=1 → (0, 0, 0)
    assert texels[0, 1, 0].tolist() == [255, 128, 0, 255]  # g=½ → (1, ½, 0)
