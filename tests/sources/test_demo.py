"""The bundled demo clip: generated once, deterministic, 1280×720 × 300, and its truth holds."""

from __future__ import annotations

import math
import os
from pathlib import Path

import av
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from agecast.sources import DEMO_URI, SourceState, open_source
from agecast.sources.astronaut import FACE_BOX, FACE_LANDMARKS5, astronaut_rgb
from agecast.sources.demo import (
    DEMO_FRAMES,
    DEMO_HEIGHT,
    DEMO_VERSION,
    DEMO_WIDTH,
    demo_clip_path,
    demo_truth,
    write_demo_clip,
)


def decode(path: Path, indices: set[int]) -> dict[int, np.ndarray]:
    with av.open(str(path)) as container:
        frames = container.decode(container.streams.video[0])
        return {i: f.to_ndarray(format="rgb24") for i, f in enumerate(frames) if i in indices}


def sample(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Bilinear colours of ``frame`` at pixel ``points`` (N×2, x y)."""
    h, w = frame.shape[:2]
    grid = torch.from_numpy(points).float()
    grid = grid / torch.tensor([w - 1, h - 1]) * 2 - 1
    image = torch.from_numpy(frame).permute(2, 0, 1)[None].float()
    out = F.grid_sample(image, grid[None, None], align_corners=True)
    return out[0, :, 0].T.numpy()


def test_demo_clip_is_generated_in_the_cache(demo_clip: Path, demo_cache: Path) -> None:
    assert demo_clip.parent == demo_cache
    assert f"v{DEMO_VERSION}" in demo_clip.name
    assert not [p for p in demo_cache.iterdir() if p.name.startswith(".")]  # no temp left over
    with av.open(str(demo_clip)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.codec_context.width, stream.codec_context.height) == (1280, 720)
        assert stream.average_rate == 30
        assert stream.codec_context.pix_fmt == "yuv420p"
        assert stream.codec_context.color_primaries == 6  # smpte170m (BT.601)
        assert stream.codec_context.colorspace == 6
        count = sum(1 for _ in container.decode(stream))
    assert count == DEMO_FRAMES == 300


def test_demo_clip_is_reused_not_regenerated(demo_clip: Path) -> None:
    before = demo_clip.stat().st_mtime_ns
    assert demo_clip_path() == demo_clip
    assert demo_clip.stat().st_mtime_ns == before


@pytest.mark.slow
def test_demo_generation_is_deterministic(demo_clip: Path, tmp_path: Path) -> None:
    again = tmp_path / "again.mp4"
    write_demo_clip(again)
    assert again.read_bytes() == demo_clip.read_bytes()


def test_demo_source_plays_the_clip_once_in_render_mode(demo_clip: Path) -> None:
    with open_source(DEMO_URI, live=False) as source:
        assert source.fps == pytest.approx(30.0)
        count, last = 0, None
        while (frame := source.read()) is not None:
            count, last = count + 1, frame
    assert count == 300
    assert last is not None and last.index == 299
    assert tuple(last.image.shape) == (DEMO_HEIGHT, DEMO_WIDTH, 3)


def test_demo_loops_by_default_when_live(demo_clip: Path) -> None:
    source = open_source(DEMO_URI)
    assert getattr(source, "loop", None) is True
    source.open()
    assert source.state is SourceState.LIVE
    source.close()


def test_demo_truth_is_gentle_head_motion() -> None:
    rest_scale = 600 / 512
    angles, scales, shifts = [], [], []
    for index in range(DEMO_FRAMES):
        affine = demo_truth(index)
        assert affine.shape == (2, 3)
        angles.append(math.degrees(math.atan2(affine[1, 0], affine[0, 0])))
        scales.append(math.hypot(affine[0, 0], affine[1, 0]) / rest_scale)
        shifts.append(affine @ np.array([225.0, 126.0, 1.0]))  # the nose tip
    assert max(abs(a) for a in angles) <= 4.0
    assert max(angles) - min(angles) > 3.0  # it does move
    assert all(0.95 < s < 1.05 for s in scales)
    nose = np.array(shifts)
    assert 10 < np.ptp(nose[:, 0]) < 120 and 5 < np.ptp(nose[:, 1]) < 80
    steps = np.linalg.norm(np.diff(nose, axis=0), axis=1)
    assert steps.max() < 4.0  # smooth: a few pixels per frame at most
    np.testing.assert_allclose(demo_truth(DEMO_FRAMES + 7), demo_truth(7))
    np.testing.assert_allclose(demo_truth(DEMO_FRAMES), demo_truth(0), atol=1e-9)


def test_demo_truth_matches_the_pictures(demo_clip: Path) -> None:
    x0, y0, x1, y1 = FACE_BOX
    xs, ys = np.meshgrid(np.linspace(x0 + 5, x1 - 5, 24), np.linspace(y0 + 5, y1 - 5, 24))
    photo_points = np.stack([xs.ravel(), ys.ravel()], axis=1)
    photo = sample(astronaut_rgb().copy(), photo_points)
    homogeneous = np.hstack([photo_points, np.ones((len(photo_points), 1))])
    frames = decode(demo_clip, {0, 97, 211})
    for index, frame in frames.items():
        right = sample(frame, homogeneous @ demo_truth(index).T)
        wrong = sample(frame, homogeneous @ demo_truth(index + 40).T)
        right_error = float(np.abs(right - photo).mean())
        assert right_error < 6.0, (index, right_error)
        assert float(np.abs(wrong - photo).mean()) > 2 * right_error
    # The hand-labelled landmarks land inside the frame, on the face, near the centre.
    landmarks = np.hstack([np.array(FACE_LANDMARKS5), np.ones((5, 1))]) @ demo_truth(0).T
    assert (landmarks[:, 0] > 400).all() and (landmarks[:, 0] < 900).all()
    assert (landmarks[:, 1] > 50).all() and (landmarks[:, 1] < 400).all()


def test_cache_dir_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_clip: Path
) -> None:
    from agecast.sources.demo import cache_dir

    monkeypatch.setenv("AGECAST_CACHE_DIR", str(tmp_path / "elsewhere"))
    assert cache_dir() == tmp_path / "elsewhere"
    monkeypatch.delenv("AGECAST_CACHE_DIR")
    assert cache_dir() == Path(os.path.expanduser("~")) / ".cache" / "agecast"
