"""Takes made for review tests: every picture carries its frame number as big binary blocks.

raw.mp4 is grey, v1 reddish, v2 bluish; all fragmented MP4 with B-frames and a key frame every
10 frames, so seeking by frame index meets reordering and mid-GOP targets.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from av.video.stream import VideoStream

from agecast.takes.recorder import tc_frames, timecode
from agecast.takes.store import Take, TakeStore

WIDTH, HEIGHT, FPS = 320, 180, 30
BITS = 8  # frame numbers up to 255
CELL = WIDTH // BITS  # 40 px wide, 36 px high: survives any sane compression
TINTS = {"raw": (110, 110, 110), "v1": (170, 80, 70), "v2": (70, 90, 170)}
FRAG = {"movflags": "frag_keyframe+empty_moov+default_base_moof"}


def coded_frame(index: int, tint: tuple[int, int, int]) -> np.ndarray:
    """A picture of ``tint`` with soft texture and ``index`` in binary along the top."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    texture = ((x * 3 + y * 2 + index * 4) % 64).astype(np.int16) - 32
    picture = np.clip(np.array(tint, np.int16) + texture[..., None], 0, 255).astype(np.uint8)
    for bit in range(BITS):
        on = (index >> (BITS - 1 - bit)) & 1
        picture[:36, bit * CELL : (bit + 1) * CELL] = 235 if on else 16
    return picture


def read_code(picture: np.ndarray) -> int:
    """The frame number :func:`coded_frame` painted (``picture`` scaled to any size)."""
    height, width = picture.shape[:2]
    cell = width / BITS
    row = int(18 * height / HEIGHT)
    value = 0
    for bit in range(BITS):
        x = int((bit + 0.5) * cell)
        value = value * 2 + int(picture[row, x].astype(int).mean() > 128)
    return value


def write_video(path: Path, frames: int, tint: tuple[int, int, int]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), mode="w", options=FRAG) as out:
        stream = out.add_stream("libx264", rate=FPS)
        assert isinstance(stream, VideoStream)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        stream.options = {"preset": "veryfast", "crf": "18", "g": "10", "bf": "2"}
        for i in range(frames):
            frame = av.VideoFrame.from_ndarray(coded_frame(i, tint), format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, FPS)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


def make_take(
    root: Path, scene: str = "12", take: str = "3", *, frames: int = 40, versions: int = 2
) -> Take:
    """A complete take under ``root`` (a takes folder) with raw and ``versions`` aged versions."""
    made = TakeStore(root).create(
        scene, take, source="generated", width=WIDTH, height=HEIGHT, fps=float(FPS),
        frames=frames, timecode_start="01:00:00:00", status="complete",
        identity={"id": "testpattern"},
    )  # fmt: skip
    write_video(made.raw_path, frames, TINTS["raw"])
    for _ in range(versions):
        version = made.new_version()
        write_video(made.aged_path(version), frames, TINTS.get(version, (90, 160, 90)))
        write_sidecar(made, version, frames)
    return made


def write_sidecar(take: Take, version: str, frames: int) -> None:
    """A sidecar as the recorder writes one: the live picture dropped 2 frames after frame 19,
    so the recorded timecode of frame i >= 20 is start + i + 2."""
    age = 70 if version == "v1" else 40
    start = {"type": "start", "identity": {"id": "testpattern"}, "settings": {"age": age}}
    lines = [json.dumps(start)]
    for i in range(frames):
        tc = timecode(tc_frames("01:00:00:00", FPS) + i + (2 if i >= 20 else 0), FPS)
        lines.append(json.dumps({"type": "frame", "i": i, "tc": tc, "faces": []}))
    take.sidecar_path(version).write_text("\n".join(lines) + "\n")


def decode_all(path: Path) -> list[np.ndarray]:
    """Every picture of a file in presentation order, decoded straight through."""
    with av.open(str(path)) as container:
        frames = [(f.pts, f.to_ndarray(format="rgb24")) for f in container.decode(video=0)]
    return [array for _, array in sorted(frames, key=lambda pair: pair[0])]
