"""A camera's input transform: log pictures to Rec.709 before faces are found and the model runs.

Set cameras send log (ARRI LogC, Sony S-Log3, RED Log3G10) unless the cart applies the show
LUT: faces are hard to find in it and the identity models were trained on display pictures.
The ``input_transform`` setting gives each camera either

* a ``.cube`` 3D LUT (the DIT's show LUT, or the maker's log→Rec.709 LUT: ARRI, Sony and RED
  publish them), or
* ``logc3``: ARRI LogC3 (EI 800) in ARRI Wide Gamut 3, decoded with ARRI's published curve
  and matrix to Rec.709 primaries, then the BT.709 transfer function (scene linear 1.0 clips;
  a show LUT rolls highlights off better).

Both become one lattice applied with trilinear interpolation on the pipeline's device (one
``grid_sample``), to the raw picture as it arrives. Everything after sees Rec.709, and both
sides of the monitor, NDI and the program stream carry the same transformed picture: the aged
side cannot go back to log exactly (a 3D LUT has no inverse in general, and what the model
paints was never in the log signal), so the DIT sees raw and aged through the same transform
and they always match. Takes keep the camera's own log picture on the raw side.

**Display LUTs** (``display_luts``) are the monitor's alone: the page views the raw side, the
aged side or both through one (a show LUT, or ``logc3`` for a log feed left as it is), on the
viewer's GPU; the picture, the takes and every output are unchanged. The server reads them here
and hands them to the page as 3D textures (:func:`texture_bytes`).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
import torch.nn.functional as F

from agecast.errors import SettingsError

NAMED = ("logc3",)
LATTICE = 33  # points per axis a named curve is sampled at (the size of most show LUTs)
MAX_CUBE = 129

# ARRI LogC3, EI 800 (ARRI, "ALEXA Log C Curve: Usage in VFX"): cut, a, b, c, d, e, f
LOGC3 = (0.010591, 5.555556, 0.052272, 0.247190, 0.385537, 5.367655, 0.092809)
_CUT, _A, _B, _C, _D, _E, _F = LOGC3
# ARRI Wide Gamut 3 → Rec.709 primaries (same white), from the same document
AWG3_TO_709 = (
    (1.617523, -0.537287, -0.080237),
    (-0.070573, 1.334613, -0.264040),
    (-0.021102, -0.226954, 1.248056),
)


def _logc3_to_linear(v: torch.Tensor) -> torch.Tensor:
    return torch.where(
        v > _E * _CUT + _F, (torch.pow(10.0, (v - _D) / _C) - _B) / _A, (v - _F) / _E
    )


def _bt709_oetf(linear: torch.Tensor) -> torch.Tensor:
    x = linear.clamp(0.0, 1.0)
    return torch.where(x < 0.018, 4.5 * x, 1.099 * x.pow(0.45) - 0.099)


def _lattice_points(n: int) -> torch.Tensor:
    """(n, n, n, 3) RGB inputs of an n³ lattice, indexed [b, g, r] as a .cube file lists them."""
    axis = torch.linspace(0.0, 1.0, n, dtype=torch.float64)
    b, g, r = torch.meshgrid(axis, axis, axis, indexing="ij")
    return torch.stack([r, g, b], dim=-1)


def logc3_lattice(n: int = LATTICE) -> torch.Tensor:
    rgb = _logc3_to_linear(_lattice_points(n))
    matrix = torch.tensor(AWG3_TO_709, dtype=torch.float64)
    return _bt709_oetf(rgb @ matrix.T).float()


def read_cube(path: Path, setting: str = "input_transform") -> torch.Tensor:
    """A ``.cube`` file's 3D LUT as (n, n, n, 3) outputs indexed [b, g, r], scaled so that the
    inputs run over 0–1; :class:`SettingsError` naming the ``setting``, the file and the line
    otherwise."""
    try:
        lines = path.read_text(encoding="utf-8", errors="strict").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise SettingsError(f"{setting} {path}: cannot read it ({exc})") from exc
    size = 0
    low, high = [0.0] * 3, [1.0] * 3
    rows: list[list[float]] = []
    for number, raw in enumerate(lines, 1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith(("TITLE", "LUT_1D_INPUT_RANGE")):
            continue
        word, *rest = line.split()
        try:
            if word == "LUT_3D_SIZE":
                size = int(rest[0])
            elif word == "LUT_1D_SIZE":
                raise SettingsError(
                    f"{setting} {path}: line {number} is a 1D LUT; give a 3D LUT "
                    "(LUT_3D_SIZE), as log→Rec.709 and show LUTs are"
                )
            elif word == "DOMAIN_MIN":
                low = [float(v) for v in rest[:3]]
            elif word == "DOMAIN_MAX":
                high = [float(v) for v in rest[:3]]
            elif word == "LUT_3D_INPUT_RANGE":
                low, high = [float(rest[0])] * 3, [float(rest[1])] * 3
            else:
                rows.append([float(v) for v in (word, *rest)][:3])
        except (ValueError, IndexError) as exc:
            raise SettingsError(f"{setting} {path}: line {number} {raw!r}: {exc}") from exc
    if not 2 <= size <= MAX_CUBE:
        raise SettingsError(
            f"{setting} {path}: LUT_3D_SIZE {size or 'missing'} (a .cube 3D LUT has "
            f"LUT_3D_SIZE 2–{MAX_CUBE})"
        )
    if len(rows) != size**3 or any(len(r) != 3 for r in rows):
        raise SettingsError(
            f"{setting} {path}: {len(rows)} entries for LUT_3D_SIZE {size} "
            f"(needs {size**3} lines of three numbers)"
        )
    if low != [0.0] * 3 or high != [1.0] * 3:
        raise SettingsError(f"{setting} {path}: DOMAIN {low}–{high}: only LUTs over 0–1 are taken")
    return torch.tensor(rows, dtype=torch.float32).reshape(size, size, size, 3)


class InputTransform:
    """Applies a lattice to HWC uint8 RGB pictures (trilinear, on the pictures' device)."""

    def __init__(self, name: str, lattice: torch.Tensor) -> None:
        self.name = name
        # grid_sample's volume: (1, 3, D=b, H=g, W=r); its grid's x, y, z are r, g, b
        self._volume = lattice.permute(3, 0, 1, 2).unsqueeze(0).contiguous()

    def apply(self, image: torch.Tensor) -> torch.Tensor:
        if self._volume.device != image.device:
            self._volume = self._volume.to(image.device)
        height, width = image.shape[0], image.shape[1]
        grid = image.to(torch.float32).mul_(2.0 / 255.0).sub_(1.0).view(1, 1, height, width, 3)
        out = F.grid_sample(
            self._volume, grid, mode="bilinear", padding_mode="border", align_corners=True
        )
        picture = out.view(3, height, width).permute(1, 2, 0)
        return picture.mul(255.0).round_().clamp_(0, 255).to(torch.uint8).contiguous()


def load_lattice(spec: str, setting: str = "input_transform") -> tuple[str, torch.Tensor]:
    """(name, lattice) of ``logc3`` or a ``.cube`` file; SettingsError naming ``setting``."""
    if spec.lower() in NAMED:
        return spec.lower(), logc3_lattice()
    path = Path(spec).expanduser()
    if path.suffix.lower() != ".cube":
        raise SettingsError(
            f"{setting} {spec!r}: give a .cube 3D LUT file or one of {', '.join(NAMED)}"
        )
    if not path.is_file():
        raise SettingsError(f"{setting} {path}: no such file")
    return path.name, read_cube(path, setting)


def load_transform(spec: str) -> InputTransform:
    """``logc3`` or a ``.cube`` file."""
    return InputTransform(*load_lattice(spec))


def camera_transform(setting: str | None, camera: str) -> str | None:
    """The transform ``setting`` gives ``camera``: one for every camera (``logc3``), or per
    camera (``A=logc3,B=/luts/show.cube``; a camera not named has none)."""
    if not setting:
        return None
    entries = [e.strip() for e in setting.split(",") if e.strip()]
    if not any("=" in e for e in entries):
        return setting.strip()
    named = dict(e.split("=", 1) for e in entries if "=" in e)
    return named.get(camera)


# --- display LUTs: the monitor's own view, not the picture ---------------------------------

_LUT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9 _.+-]{0,39}$")


def display_luts(entries: list[str]) -> dict[str, torch.Tensor]:
    """The ``display_luts`` setting read: ``NAME=FILE.cube``, ``FILE.cube`` (named after the
    file) or ``logc3``, each a lattice the monitor may view a side through. SettingsError
    naming the entry (a bad name, a name used twice) or the file and line."""
    luts: dict[str, torch.Tensor] = {}
    for entry in entries:
        name, sep, spec = entry.partition("=")
        if not sep:
            name, spec = "", entry
        spec = spec.strip()
        default, lattice = load_lattice(spec, "display_luts")
        name = name.strip() or default.removesuffix(".cube").removesuffix(".CUBE")
        if not _LUT_NAME.fullmatch(name):
            raise SettingsError(
                f"display_luts {entry!r}: name {name!r} must be 1–40 letters, digits, spaces "
                "or _.+- (NAME=FILE.cube)"
            )
        if name in luts:
            raise SettingsError(
                f"display_luts {entry!r}: the name {name!r} is used twice; give each its own "
                "(NAME=FILE.cube)"
            )
        luts[name] = lattice
    return luts


def texture_bytes(lattice: torch.Tensor) -> bytes:
    """A lattice as the page's 3D texture: n³ RGBA8 texels, red fastest, then green, then blue
    (the .cube order; WebGL's width, height and depth)."""
    rgb = lattice.clamp(0.0, 1.0).mul(255.0).round().to(torch.uint8)
    alpha = torch.full((*rgb.shape[:3], 1), 255, dtype=torch.uint8)
    return torch.cat([rgb, alpha], dim=-1).contiguous().numpy().tobytes()
