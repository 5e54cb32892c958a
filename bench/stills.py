"""Before/after stills (not run in CI): one demo-clip frame through identities, side by side.

Each tile is the face region of the same frame, at the plate's own resolution (no scaling), as
the live path makes it: the raw plate, then each ``--show`` entry ``IDENTITY@AGE`` or
``IDENTITY@AGE@REGION:YEARS,…`` (local age offsets). Labels are drawn under each tile.

    python bench/stills.py --frame 120 --out bench/results/before-after-demo.png \
        --show demo-swap@75 --show demo-aged@75 --show demo-aged@75@eyes:-37
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from agecast.age_offsets import parse_offsets
from agecast.faces.detector import make_detector
from agecast.faces.tracker import FaceTracker
from agecast.frames import Frame
from agecast.identities import IdentityModel, resolve
from agecast.inference import get_backend
from agecast.pipeline.fx import FaceFX
from agecast.settings import REPO_MODELS_DIR
from agecast.sources.astronaut import FACE_LANDMARKS5
from agecast.sources.demo import DemoRenderer, demo_truth

log = logging.getLogger("bench.stills")


def face_box(index: int, height: int, width: int) -> tuple[slice, slice]:
    """The head (hair to chin) around the demo face in frame ``index``."""
    points = np.hstack([np.array(FACE_LANDMARKS5), np.ones((5, 1))]) @ demo_truth(index).T
    d = float(np.linalg.norm(points[1] - points[0]))
    cx, cy = points[:2].mean(0)
    y0, y1 = max(0, int(cy - 2.0 * d)), min(height, int(cy + 2.2 * d))
    x0, x1 = max(0, int(cx - 1.9 * d)), min(width, int(cx + 1.9 * d))
    return slice(y0, y1), slice(x0, x1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frame", type=int, default=120)
    parser.add_argument("--show", action="append", required=True, help="IDENTITY@AGE[@OFFSETS]")
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    backend = get_backend("onnxruntime")
    image = torch.from_numpy(DemoRenderer().render(args.frame)).contiguous()
    frame = Frame(args.frame, image, time.monotonic_ns(), time.time_ns())
    box = face_box(args.frame, image.shape[0], image.shape[1])
    tiles: list[tuple[str, np.ndarray]] = [("plate (raw)", image[box].numpy())]
    for entry in args.show:
        name, age, *rest = entry.split("@")
        identity = IdentityModel.load(resolve(name, [REPO_MODELS_DIR]), backend)
        fx = FaceFX(FaceTracker(make_detector(backend), detect_every=1), identity)
        offsets = parse_offsets(rest[0]) if rest else (0.0, 0.0, 0.0, 0.0)
        fx.set_look(age=float(age), age_offsets=offsets, color_transfer="auto")
        aged = fx.process(frame).aged
        label = f"{name} ({identity.manifest.family.removeprefix('agecast-')}) {age}"
        label += f" {rest[0]}" if rest else ""
        tiles.append((label, aged[box].numpy()))
        identity.close()
    h, w = tiles[0][1].shape[:2]
    sheet = Image.new("RGB", (w * len(tiles), h + 28), (16, 16, 18))
    draw = ImageDraw.Draw(sheet)
    for i, (label, tile) in enumerate(tiles):
        sheet.paste(Image.fromarray(tile), (i * w, 0))
        draw.text((i * w + 6, h + 8), label, fill=(230, 230, 230))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    log.info("wrote %s (%d×%d)", args.out, sheet.width, sheet.height)


if __name__ == "__main__":
    main()
