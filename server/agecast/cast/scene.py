"""``cast:demo``, a generated clip with three real, different people, and their reference photos.

Two leads stand left and right and move a little (a sway, a nod, a lean in, light drifting);
a passer-by crosses behind them in the middle of the clip. The faces are real: cut from the
group photo ``t1.jpg`` that the insightface 2.1 wheel ships (six people), so recognition is
tested on real faces without committing anyone's picture. Only the wheel *file* is needed (the
project's scripts fetch it, hash-checked, into ``.cache/samples``; it is never installed: its
dependencies clash with ours), or an installed insightface package.

:func:`reference_photos` writes each person's enrolment photos: the person cut from the group
photo at two framings and mirrored (a stand-in for the several angles a real enrolment uses).
The clip knows where each person's head is in every frame (:meth:`CastScene.heads`), so a test
can check which face each identity went to.
"""

from __future__ import annotations

import importlib.util
import io
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from agecast.errors import CastError

SAMPLE_WHEEL = "insightface-2.1-py3-none-any.whl"
SAMPLE_PHOTO = "insightface/data/images/t1.jpg"
REPO_ROOT = Path(__file__).resolve().parents[3]
WIDTH, HEIGHT, FPS, FRAMES = 1280, 720, 30, 150
# face boxes (x0, y0, x1, y1) of three of the six people in t1.jpg, found by YuNet
PEOPLE: dict[str, tuple[int, int, int, int]] = {
    "lead-a": (462, 265, 577, 418),
    "lead-b": (900, 57, 1006, 198),
    "passer-by": (1133, 274, 1228, 400),
}
LEADS = ("lead-a", "lead-b")
PASSER_BY = "passer-by"
PASSING = (30, 125)  # frames in which the passer-by is in the picture (first, last)
_BACKDROP = (96.0, 84.0, 70.0)
_FIX = (
    "run 'bash scripts/test.sh' once (it fetches the insightface 2.1 wheel, hash-checked, into "
    ".cache/samples), or set AGECAST_SAMPLES_DIR to a folder holding that wheel"
)


def samples_dir() -> Path:
    return Path(os.environ.get("AGECAST_SAMPLES_DIR", REPO_ROOT / ".cache" / "samples"))


def group_photo() -> NDArray[np.uint8]:
    """t1.jpg (HWC uint8 RGB), from the wheel file or an installed insightface."""
    wheel = samples_dir() / SAMPLE_WHEEL
    data: bytes | None = None
    if wheel.is_file():
        try:
            with zipfile.ZipFile(wheel) as archive:
                data = archive.read(SAMPLE_PHOTO)
        except (OSError, KeyError, zipfile.BadZipFile) as exc:
            raise CastError(f"cannot read {SAMPLE_PHOTO} from {wheel} ({exc}); {_FIX}") from exc
    else:
        spec = importlib.util.find_spec("insightface")
        if spec is not None and spec.submodule_search_locations:
            path = Path(next(iter(spec.submodule_search_locations))) / "data/images/t1.jpg"
            if path.is_file():
                data = path.read_bytes()
    if data is None:
        raise CastError(
            f"the sample group photo (t1.jpg of the insightface wheel) is missing; {_FIX}"
        )
    with Image.open(io.BytesIO(data)) as picture:
        return np.asarray(picture.convert("RGB"), dtype=np.uint8).copy()


def _head(photo: NDArray[np.uint8], box: tuple[int, int, int, int]) -> NDArray[np.float32]:
    """The head around face ``box``, cut out with a soft elliptical edge: (h, w, 4) RGBA 0–1."""
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2 - 0.08 * (y1 - y0)
    rx, ry = 0.85 * (x1 - x0), 0.8 * (y1 - y0)
    left, top = int(max(0, cx - rx)), int(max(0, cy - ry))
    right, bottom = int(min(photo.shape[1], cx + rx)), int(min(photo.shape[0], cy + ry))
    ys, xs = np.mgrid[top:bottom, left:right].astype(np.float32)
    d = np.sqrt(((xs - cx) / rx) ** 2 + ((ys - cy) / ry) ** 2)
    alpha = np.clip((1.0 - d) / 0.08, 0.0, 1.0)[..., None]
    rgb = photo[top:bottom, left:right].astype(np.float32) / 255.0
    return np.concatenate([rgb, alpha], axis=2)


@dataclass(frozen=True, slots=True)
class _Pose:
    x: float  # head centre in the frame
    y: float
    scale: float
    angle: float  # degrees
    gain: float  # light


class CastScene:
    """Draws frame ``i`` of ``cast:demo`` (HWC uint8 RGB) and says where each head is."""

    def __init__(self) -> None:
        photo = group_photo()
        self._heads = {name: _head(photo, box) for name, box in PEOPLE.items()}
        ys = np.linspace(0.0, 1.0, HEIGHT, dtype=np.float32)[:, None, None]
        top, bottom = np.array(_BACKDROP) / 255 * 1.15, np.array(_BACKDROP) / 255 * 0.8
        self._backdrop = np.broadcast_to(top + (bottom - top) * ys, (HEIGHT, WIDTH, 3)).astype(
            np.float32
        )

    def poses(self, index: int) -> dict[str, _Pose]:
        t = index / FPS
        poses = {
            "lead-a": _Pose(
                330 + 40 * math.sin(0.9 * t),
                330 + 12 * math.sin(2.1 * t),
                2.1 + 0.15 * math.sin(0.5 * t),
                6 * math.sin(1.3 * t),
                1.0 + 0.08 * math.sin(0.7 * t),
            ),
            "lead-b": _Pose(
                960 - 35 * math.sin(0.8 * t + 1.0),
                320 + 15 * math.sin(1.7 * t + 0.5),
                2.2 + 0.2 * math.sin(0.6 * t + 2.0),
                -5 * math.sin(1.1 * t + 0.3),
                1.0 - 0.08 * math.sin(0.9 * t),
            ),
        }
        first, last = PASSING
        if first <= index <= last:
            u = (index - first) / (last - first)
            poses[PASSER_BY] = _Pose(
                WIDTH + 120 - u * (WIDTH + 240), 520 + 10 * math.sin(6 * u), 1.6, 0.0, 0.95
            )
        return poses

    def heads(self, index: int) -> dict[str, tuple[float, float, float, float]]:
        """Each person's face box (x0, y0, x1, y1) in frame ``index`` (who is in it)."""
        out = {}
        for name, pose in self.poses(index).items():
            x0, y0, x1, y1 = PEOPLE[name]
            half_w, half_h = (x1 - x0) * pose.scale / 2, (y1 - y0) * pose.scale / 2
            cx, cy = pose.x, pose.y + 0.08 * (y1 - y0) * pose.scale
            out[name] = (cx - half_w, cy - half_h, cx + half_w, cy + half_h)
        return out

    def render(self, index: int) -> NDArray[np.uint8]:
        frame = self._backdrop.copy()
        poses = self.poses(index)
        order = [PASSER_BY, *LEADS]  # the passer-by walks behind the leads
        for name in order:
            if name in poses:
                self._paste(frame, self._heads[name], poses[name])
        return np.clip(frame * 255.0 + 0.5, 0, 255).astype(np.uint8)

    @staticmethod
    def _paste(frame: NDArray[np.float32], head: NDArray[np.float32], pose: _Pose) -> None:
        h, w = head.shape[:2]
        matrix = cv2.getRotationMatrix2D((w / 2, h / 2), pose.angle, pose.scale)
        matrix[:, 2] += (pose.x - w / 2, pose.y - h / 2)
        warped = cv2.warpAffine(
            head, matrix, (WIDTH, HEIGHT), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0, 0)
        )
        alpha = warped[..., 3:]
        frame *= 1.0 - alpha
        frame += warped[..., :3] * pose.gain * alpha


def reference_photos(
    out_dir: Path, names: tuple[str, ...] = (*LEADS, PASSER_BY)
) -> dict[str, Path]:
    """Enrolment photos of each person in ``names``: a folder per person under ``out_dir``."""
    photo = group_photo()
    folders = {}
    for name in names:
        x0, y0, x1, y1 = PEOPLE[name]
        w, h = x1 - x0, y1 - y0
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for tag, pad in (("wide", 1.2), ("close", 0.6)):
            left, top = max(0, int(x0 - pad * w)), max(0, int(y0 - pad * h))
            right = min(photo.shape[1], int(x1 + pad * w))
            bottom = min(photo.shape[0], int(y1 + pad * h))
            crop = photo[top:bottom, left:right]
            Image.fromarray(crop).save(folder / f"{name}-{tag}.png")
            Image.fromarray(np.ascontiguousarray(crop[:, ::-1])).save(
                folder / f"{name}-{tag}-mirrored.png"
            )
        folders[name] = folder
    return folders
