"""Input transforms: a .cube 3D LUT or ARRI LogC3 turned into Rec.709 pictures, applied before
the faces and the model; bad LUT files named with their line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from agecast.compose.lut import camera_transform, load_transform
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
